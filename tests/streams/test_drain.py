"""The drain at shutdown (streams.drain; on the real server: tests/e2e/test_shutdown.py)."""

import asyncio

import pytest

from streams import drain
from streams.models import StreamSession
from tests.conftest import make_call
from tests.streams.exotel_side import Exotel


@pytest.fixture
def live(monkeypatch):
    """This test's own registry, so that its drain leaves other tests' streams welcome."""
    registry = drain.LiveStreams()
    monkeypatch.setattr(drain, "live_streams", registry)
    return registry


async def started(call) -> None:
    """Until the stream's session row exists: the call is fully up."""
    while not await StreamSession.objects.filter(call=call).aexists():
        await asyncio.sleep(0.05)


async def test_a_drain_refuses_new_streams_and_ends_those_outliving_it(live, call, campaign):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await asyncio.wait_for(started(call), 10)
    assert len(live) == 1
    draining = asyncio.ensure_future(live.drain(0.3))
    await asyncio.sleep(0)
    late = Exotel(f"/streams/{(await asyncio.to_thread(make_call, campaign)).token}")
    assert not await late.connect()
    closed = await exotel.frame(timeout=5)
    await exotel.hang_up()
    await asyncio.wait_for(draining, 15)
    assert len(live) == 0  # its session saved before the drain ended
    session = await StreamSession.objects.aget(call=call)
    assert closed == ("close", session.close_code) and session.stop_reason == "server_shutdown"
    assert session.ended_at is not None


async def test_a_call_ending_within_the_drain_time_is_not_cut(live, call):
    exotel = Exotel(f"/streams/{call.token}")
    assert await exotel.connect()
    await exotel.start()
    await asyncio.wait_for(started(call), 10)
    draining = asyncio.ensure_future(live.drain(30))
    await exotel.stop()
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    await asyncio.wait_for(draining, 15)  # over as soon as the last call is saved, not after 30 s
    session = await StreamSession.objects.aget(call=call)
    assert (session.stop_reason, session.close_code) == ("callended", 1000)
