"""Call Details and Get Leg against the simulator: what Exotel knows of a call, live and after it ended."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from exotel import wire
from exotel.client import AsyncExotelClient, BotCall, ExotelClient, NewLeg, RetryPolicy
from exotel.errors import RejectedError, TransientError, ValidationError

from .conftest import NUMBERS, wait_for_end

EXOPHONE = "08047491899"


def dial(client: ExotelClient, number: str, **fields) -> str:
    return client.connect_to_bot(BotCall(number=number, caller_id=EXOPHONE, stream_url="ws://127.0.0.1:9/s",
                                         **fields)).sid


def test_call_details_follow_a_call_from_ringing_to_its_end(sim):
    with ExotelClient(sim.account()) as client:
        sid = dial(client, NUMBERS["slow_ring"], time_limit=5)
        sim.wait_for_call(sid, ("ringing",))
        ringing = client.call_details(sid)
        assert (ringing.sid, ringing.status, ringing.end_time, ringing.duration) == (sid, "ringing", "", None)
        assert ringing.start_time and ringing.answered_by == ""

        busy = dial(client, NUMBERS["busy"])
        sim.wait_for_call(busy, ("busy",))
        ended = client.call_details(busy)
    assert (ended.status, ended.answered_by, ended.duration) == ("busy", "", None) and ended.end_time


async def test_call_details_of_an_answered_call_give_its_duration_and_recording(sim, bot_server):
    from .conftest import BotLog, echo_handler

    bot_url = await bot_server(echo_handler(BotLog()))
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_bot(BotCall(number=NUMBERS["answer"], caller_id=EXOPHONE, stream_url=bot_url,
                                                   record=True))
        await wait_for_end(sim, info.sid)
        details = await client.call_details(info.sid)
    assert (details.status, details.answered_by) == ("completed", "human")
    assert details.duration is not None and details.recording_url.endswith(f"/{info.sid}.wav")


def test_get_leg_reads_the_leg_as_a_call_status(sim, tmp_path):
    with ExotelClient(sim.account()) as client:
        leg = client.create_leg(NewLeg(number=NUMBERS["no_answer"], exophone=EXOPHONE,
                                       leg_event_endpoint="http://127.0.0.1:9/legs"))
        sim.wait_for_call(leg.leg_sid, ("no-answer",))
        details = client.leg_details(leg.leg_sid)
    assert (details.sid, details.status, details.duration) == (leg.leg_sid, "no-answer", 0)


def test_an_unknown_call_or_leg_is_refused_with_404(sim):
    with ExotelClient(sim.account()) as client:
        with pytest.raises(RejectedError) as call:
            client.call_details("nosuchcall")
        with pytest.raises(RejectedError) as leg:
            client.leg_details("nosuchleg")
    assert call.value.status == leg.value.status == 404


def test_a_sid_that_is_not_one_is_refused_before_sending():
    with ExotelClient(wire.Account("AC1", "k", "t")) as client, pytest.raises(ValidationError, match="CallSid"):
        client.call_details("../connect")


def test_call_details_are_retried_like_every_get():
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, json={"Call": {"Sid": "C1", "Status": "completed",
                                                                                      "Duration": "12"}})])
    client = ExotelClient(wire.Account("AC1", "k", "t"), transport=httpx.MockTransport(lambda request: next(answers)),
                          retry=RetryPolicy(attempts=2, base_delay=0.01))
    assert client.call_details("C1") == wire.CallDetails(sid="C1", status="completed", duration=12)
    single = ExotelClient(wire.Account("AC1", "k", "t"), retry=RetryPolicy(attempts=1),
                          transport=httpx.MockTransport(lambda request: httpx.Response(503, text="busy")))
    with pytest.raises(TransientError):
        single.call_details("C1")


@pytest.mark.parametrize(("data", "status"), [
    ({"state": "connecting"}, "queued"),
    ({"state": "connected"}, "in-progress"),
    ({"state": "terminated", "terminal_status": "busy"}, "busy"),
    ({"state": "terminated", "terminal_status": "hungup", "on_call_duration_ms": 4000}, "completed"),
    ({"state": "terminated"}, "failed"),
    ({"state": "parked"}, ""),
])
def test_leg_states_read_as_call_statuses(data, status):
    body = {"request_id": "r", "http_code": 200, "response": {"data": {"leg_sid": "L1", **data}}}
    reply = wire.Reply(status=200, body=httpx.Response(200, json=body).content)
    assert wire.parse_leg_details(reply).status == status


def set_price(sim, **pricing) -> None:
    httpx.put(f"{sim.base_url}/_sim/price", json=pricing).raise_for_status()


async def test_the_price_is_empty_until_exotel_has_rated_the_ended_call(sim, bot_server):
    from .conftest import BotLog, echo_handler

    bot_url = await bot_server(echo_handler(BotLog()))
    try:
        set_price(sim, per_minute="0.75", delay=3600)
        async with AsyncExotelClient(sim.account()) as client:
            answered = await client.connect_to_bot(BotCall(number=NUMBERS["answer"], caller_id=EXOPHONE,
                                                           stream_url=bot_url))
            busy = await client.connect_to_bot(BotCall(number=NUMBERS["busy"], caller_id=EXOPHONE,
                                                       stream_url=bot_url))
            await wait_for_end(sim, answered.sid)
            await wait_for_end(sim, busy.sid)
            assert (await client.call_details(answered.sid)).price is None  # rated minutes after the end

            set_price(sim, per_minute="0.75", delay=0)
            assert (await client.call_details(answered.sid)).price == Decimal("0.75")  # one started minute
            assert (await client.call_details(busy.sid)).price == Decimal(0)
    finally:
        set_price(sim, per_minute="0.60", delay=120)


@pytest.mark.parametrize(("price", "read"), [
    ("1.2500", Decimal("1.25")), (0.5, Decimal("0.5")), ("", None), (None, None), ("n/a", None), ("-1", None),
    ("NaN", None),
])
def test_a_price_that_is_not_a_non_negative_decimal_reads_as_not_rated_yet(price, read):
    body = {"Call": {"Sid": "C1", "Status": "completed", "Price": price}}
    reply = wire.Reply(status=200, body=httpx.Response(200, json=body).content)
    assert wire.parse_call_details(reply).price == read


def test_the_simulators_price_setting_is_checked(sim):
    for bad in ({"per_minute": "lots"}, {"per_minute": "-1"}, {"delay": -5}, ["0.5"]):
        response = httpx.put(f"{sim.base_url}/_sim/price", json=bad)
        assert response.status_code == 400 and response.json()["error"], bad
