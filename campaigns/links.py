"""The public URLs Exotel is given: built in one place from PUBLIC_BASE_URL.

Stream URLs carry the call's token in the path and webhook URLs the workspace's secret token:
Exotel's callbacks carry no signature, so the unguessable URL is the authentication.
"""

from django.conf import settings
from django.urls import reverse


def public_url(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def websocket_url(path: str) -> str:
    """PUBLIC_BASE_URL's scheme turned into its WebSocket twin: https → wss, http → ws."""
    return "ws" + public_url(path).removeprefix("http")


def stream_url(call) -> str:
    """The bidirectional (VoiceBot) endpoint for one call, without the query Exotel appends."""
    return websocket_url(f"/streams/{call.token}")


def webhook_url(workspace, kind: str) -> str:
    """kind: status, passthru, leg_event or stream_url (the flow applet's dynamic endpoint)."""
    return public_url(reverse(f"callbacks:{kind}", args=[workspace.webhook_token]))
