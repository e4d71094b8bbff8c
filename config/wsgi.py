"""WSGI entry point: the web processes behind the proxy (pages, webhooks, the admin), under gunicorn.

No WebSocket and no stream server heartbeat here: streams and live feeds go to the stream servers
(`config.server` with `config.asgi`), and only those tell the dispatcher that calls can be streamed.

Behind the proxy (`BEHIND_PROXY`) the client's address is the one the proxy saw, as daphne's
`--proxy-headers` makes it for the stream servers: sign-in lockouts (django-axes) and logs count
clients, not the proxy. deploy/nginx sets X-Forwarded-For to that one address, never appends to it.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()


def application(environ, start_response):
    if settings.BEHIND_PROXY and "HTTP_X_FORWARDED_FOR" in environ:
        environ["REMOTE_ADDR"] = environ["HTTP_X_FORWARDED_FOR"]
    return django_application(environ, start_response)
