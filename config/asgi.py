"""ASGI entry point: Django for HTTP, Channels consumers for WebSockets (served by daphne)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()  # before importing consumers, so the app registry is ready

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from streams.heartbeat import Heartbeat  # noqa: E402
from streams.routing import websocket_urlpatterns  # noqa: E402

# Heartbeat: this process tells the dispatcher it serves streams (streams/heartbeat.py).
application = Heartbeat(
    ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)})
)
