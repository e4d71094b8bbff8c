"""WebSocket routes: Exotel's streams and the dashboard's live feeds.

Stream paths are fixed by `campaigns.links` (the URLs Exotel is given). Exotel sends no Origin and
no session, so only the browsers' sockets (live feeds, supervision, a test call in the browser) sit
behind the session and origin checks.
"""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from streams.consumers import (
    BrowserTestCallConsumer,
    EchoTestConsumer,
    ListenConsumer,
    LiveConsumer,
    StreamConsumer,
    SuperviseConsumer,
    TestCallConsumer,
)

websocket_urlpatterns = [
    path("streams/test/<str:token>", EchoTestConsumer.as_asgi()),
    path("streams/test-call/<str:token>", TestCallConsumer.as_asgi()),
    path("streams/<str:token>/listen", ListenConsumer.as_asgi()),
    path("streams/<str:token>", StreamConsumer.as_asgi()),
    path("live/campaigns/<int:campaign_id>", AllowedHostsOriginValidator(AuthMiddlewareStack(LiveConsumer.as_asgi()))),
    path("live/calls/<int:call_id>", AllowedHostsOriginValidator(AuthMiddlewareStack(SuperviseConsumer.as_asgi()))),
    path("live/campaigns/<int:campaign_id>/test-call",
         AllowedHostsOriginValidator(AuthMiddlewareStack(BrowserTestCallConsumer.as_asgi()))),
]
