"""Webhook and call tokens never reach a log: not daphne's access log, not Django's request log."""

import io
import logging

import httpx
import pytest
import websockets.sync.client
from django.test import Client

from config.redaction import redact
from tests import processes
from tests.callbacks.conftest import dialled


@pytest.mark.parametrize(("line", "expected"), [
    ('"POST /hooks/Tok_en-1/status?call=CallTok1 HTTP/1.1" 200', '"POST /hooks/[redacted]/status?[redacted] HTTP/1.1" 200'),
    ("GET /hooks/Tok/passthru?streamurl=wss%3A%2F%2Fh%2Fstreams%2FCallTok", "GET /hooks/[redacted]/passthru?[redacted]"),
    ("WSCONNECT /streams/CallTok?sample-rate=8000", "WSCONNECT /streams/[redacted]?sample-rate=8000"),
    ("WSCONNECT /streams/test/Tok", "WSCONNECT /streams/test/[redacted]"),
    ("WSCONNECT /streams/test-call/7:1tX:Sig", "WSCONNECT /streams/test-call/[redacted]"),
    ("WSCONNECT /streams/CallTok/listen", "WSCONNECT /streams/[redacted]/listen"),
    ("GET /streams/recordings/7/caller.wav", "GET /streams/recordings/7/caller.wav"),
])
def test_tokens_in_paths_are_redacted(line, expected):
    assert redact(line) == expected


@pytest.fixture
def console():
    """What the console handler of our LOGGING writes."""
    handler = next(handler for handler in logging.getLogger().handlers if handler.name == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_djangos_request_log_names_no_token(acme, call_for_logs, console):
    Client().post(f"/hooks/{acme.webhook_token}/nowhere")  # 404: "Not Found: <path>"
    Client().get(f"/hooks/{acme.webhook_token}/status?call={call_for_logs.token}")  # 400: "Bad Request: <path>"
    written = console.getvalue()
    assert "/hooks/[redacted]/nowhere" in written
    assert acme.webhook_token not in written and call_for_logs.token not in written


@pytest.fixture
def call_for_logs(campaign):
    return dialled(campaign)


@pytest.mark.e2e
def test_daphnes_access_log_names_no_token(transactional_db, tmp_path, acme, campaign):
    call = dialled(campaign)
    daphne = processes.start_daphne(tmp_path)
    try:
        base = daphne.url
        httpx.post(f"{base}/hooks/{acme.webhook_token}/status?call={call.token}",
                   data={"CallSid": call.exotel_sid, "Status": "ringing"})
        stream = f"ws{base.removeprefix('http')}/streams/test/{acme.webhook_token}x"
        with pytest.raises(websockets.exceptions.WebSocketException), \
                websockets.sync.client.connect(stream, open_timeout=5) as ws:
            ws.recv(timeout=5)
        processes.wait_until(lambda: "WSREJECT" in daphne.output() or "WSDISCONNECT" in daphne.output(),
                             timeout=10, what="the stream in the access log")
    finally:
        daphne.stop()
    log = daphne.output()
    assert '"POST /hooks/[redacted]/status?[redacted]" 200' in log
    assert acme.webhook_token not in log and call.token not in log
