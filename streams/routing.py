"""WebSocket routes: Exotel's streams and the dashboard's live feeds."""

websocket_urlpatterns: list = []
