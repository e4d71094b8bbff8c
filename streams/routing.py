"""WebSocket routes: Exotel's streams and the dashboard's live feeds.

Stream paths are fixed by `campaigns.links` (the URLs Exotel is given). Exotel sends no Origin and
no session, so only the live feed sits behind the session and origin checks.
"""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from streams.consumers import (
    EchoTestConsumer,
    ListenConsumer,
    LiveConsumer,
    StreamConsumer,
    SuperviseConsumer,
)

websocket_urlpatterns = [
    path("streams/test/<str:token>", EchoTestConsumer.as_asgi()),
    path("streams/<str:token>/listen", ListenConsumer.as_asgi()),
    path("streams/<str:token>", StreamConsumer.as_asgi()),
    path("live/campaigns/<int:campaign_id>", AllowedHostsOriginValidator(AuthMiddlewareStack(LiveConsumer.as_asgi()))),
    path("live/calls/<int:call_id>", AllowedHostsOriginValidator(AuthMiddlewareStack(SuperviseConsumer.as_asgi()))),
]
