"""Replaying recorded Exotel deliveries (tests/callbacks/fixtures/*.json), Zulip style.

A fixture holds `method`, `content_type`, optional `headers` and `fields`; `$SID`, `$TOKEN` and
`$LEG` stand for the call's Exotel sid, our token and the leg sid, filled in at replay. Each replay
is then applied as the applier process would right after (`apply=False` leaves it pending).
"""

import json
from pathlib import Path
from urllib.parse import urlencode

from django.test import Client
from django.urls import reverse

from callbacks import applier

FIXTURES = Path(__file__).parent / "fixtures"
KIND_OF = {"status": "status", "passthru": "passthru", "leg": "leg_event", "say": "leg_event",
           "stream": "leg_event"}


def load(name: str, *, sid: str = "", token: str = "", leg: str = "") -> dict:
    text = (FIXTURES / f"{name}.json").read_text()
    return json.loads(text.replace("$SID", sid).replace("$TOKEN", token).replace("$LEG", leg))


def replay(workspace, name: str, *, kind: str = "", call=None, url_token: str | None = None, apply: bool = True,
           **values):
    """POST or GET the fixture to the workspace's webhook URL (or `url_token`'s), apply what is pending,
    and return the response."""
    if call is not None:
        values = {"sid": call.exotel_sid, "token": call.token, "leg": call.leg_sid, **values}
    spec = load(name, **values)
    kind = kind or ("stream_url" if name.startswith("stream_url") else KIND_OF[name.split("_")[0]])
    url = reverse(f"callbacks:{kind}", args=[url_token or workspace.webhook_token])
    headers = {f"HTTP_{key.upper().replace('-', '_')}": value for key, value in spec.get("headers", {}).items()}
    response = _send(spec, url, headers)
    if apply:
        applier.apply_pending()
    return response


def _send(spec: dict, url: str, headers: dict):
    client = Client()
    if spec["method"] == "GET":
        return client.get(url, spec["fields"], **headers)
    content_type = spec["content_type"]
    if content_type == "application/json":
        return client.post(url, json.dumps(spec["fields"]), content_type=content_type, **headers)
    if content_type == "multipart/form-data":
        return client.post(url, spec["fields"], **headers)  # the test client's default encoding
    return client.post(url, urlencode(spec["fields"]), content_type=content_type, **headers)
