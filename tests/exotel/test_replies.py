"""Answer shapes the simulator does not emit, injected with httpx.MockTransport."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from exotel import wire
from exotel.client import AsyncExotelClient, ExotelClient, NewLeg, RetryPolicy
from exotel.errors import OutcomeUnknownError, RateLimitedError, RejectedError, TransientError

ACCOUNT = wire.Account("AC1", "k", "t")


def client_answering(handler, **kwargs) -> ExotelClient:
    return ExotelClient(ACCOUNT, transport=httpx.MockTransport(handler), **kwargs)


def test_a_rest_exception_with_an_integer_code():
    body = {"RestException": {"Status": 409, "Message": "Duplicate", "Code": 20409}}
    client = client_answering(lambda request: httpx.Response(409, json=body))
    with pytest.raises(RejectedError) as caught:
        client.active_streams()
    assert caught.value.code == "20409"


def test_a_v2_error_envelope_inside_a_2xx():
    body = {"request_id": "r1", "http_code": 404, "response": {"error": {"code": 1404, "message": "No leg"}}}
    client = client_answering(lambda request: httpx.Response(202, json=body))
    with pytest.raises(RejectedError, match="No leg") as caught:
        client.stop_say("leg1")
    assert caught.value.status == 404


def test_a_leg_answer_with_sid_and_status_spelling():
    body = {"request_id": "r2", "http_code": 202, "response": {"data": {"sid": "L1", "status": "created"}}}
    client = client_answering(lambda request: httpx.Response(202, json=body))
    leg = client.create_leg(NewLeg(number="+919800000001", exophone="080", leg_event_endpoint="https://a/e"))
    assert leg == wire.LegInfo("L1", "created", "r2")


def test_retry_after_as_an_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    client = client_answering(lambda request: httpx.Response(429, headers={"Retry-After": when}, text="slow down"),
                              retry=RetryPolicy(max_retry_after=1))
    with pytest.raises(RateLimitedError) as caught:
        client.active_streams()  # 30 s is beyond max_retry_after: raised, not waited out
    assert 25 < caught.value.retry_after <= 30


def test_an_html_5xx_is_transient():
    client = client_answering(lambda request: httpx.Response(502, text="<html>bad gateway"),
                              retry=RetryPolicy(attempts=1))
    with pytest.raises(TransientError):
        client.active_streams()


async def test_a_dropped_connection_after_a_post_is_outcome_unknown():
    def drop(request):
        raise httpx.ReadError("connection reset", request=request)

    async with AsyncExotelClient(ACCOUNT, transport=httpx.MockTransport(drop)) as client:
        with pytest.raises(OutcomeUnknownError):
            await client.start_say("leg1", "hello")


def test_an_unreadable_success_is_an_error():
    client = client_answering(lambda request: httpx.Response(200, text="{not json"))
    with pytest.raises(wire.replies.ExotelError, match="unreadable"):
        client.active_streams()


def test_requests_carry_basic_auth_and_json_accept():
    seen = []

    def answer(request):
        seen.append(request)
        return httpx.Response(200, json={"active_streams": "3", "max_allowed_streams": "10"})

    assert client_answering(answer).active_streams() == wire.ActiveStreams(3, 10)
    assert seen[0].headers["authorization"].startswith("Basic ")
    assert seen[0].url == "https://api.in.exotel.com/v1/Accounts/AC1/ActiveStreams"
    assert json.loads(seen[0].content or b"null") is None


def test_backoff_grows_is_capped_and_jittered():
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=2.0)
    error = TransientError("boom")
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 2.0)]:
        delays = {policy.delay(attempt, error) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1
    assert policy.delay(6, error) is None


def test_retry_after_wins_over_backoff_unless_it_is_too_long():
    policy = RetryPolicy(max_retry_after=10)
    assert policy.delay(1, RateLimitedError("slow", retry_after=3)) == 3
    assert policy.delay(1, RateLimitedError("slow", retry_after=11)) is None
