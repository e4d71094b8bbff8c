"""End to end: SIGTERM on the real web server (config.server) drains the live calls before it exits."""

import asyncio
import contextlib
import signal

import pytest
import websockets

from exotel import protocol
from exotel.protocol import CloseCode
from streams.models import StreamServer, StreamSession
from tests import processes
from tests.conftest import make_call, make_campaign
from tests.streams.exotel_side import tone

pytestmark = pytest.mark.e2e

DRAIN_SECONDS = 3
EXIT_SECONDS = DRAIN_SECONDS + 10  # the drain, then at most the grace for the calls it ended


class Caller:
    """Exotel's side of one call: streams 100 ms of audio every 100 ms and counts the echoes."""

    def __init__(self, ws, sid: str) -> None:
        self.ws, self.sid = ws, sid
        self.sent = self.echoes = 0
        self._sending = asyncio.ensure_future(self._send_audio())
        self._receiving = asyncio.ensure_future(self._receive())

    @classmethod
    async def dial(cls, url: str, sid: str) -> "Caller":
        ws = await websockets.connect(url)
        await ws.send(protocol.exotel_connected_frame())
        await ws.send(protocol.exotel_start_frame(1, stream_sid=sid, call_sid=f"CA{sid}", account_sid="acme1",
                                                  from_="+919800000001", to="+918047491899",
                                                  custom_parameters={}, sample_rate=8000))
        return cls(ws, sid)

    async def _send_audio(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                self.sent += 1
                await self.ws.send(protocol.exotel_media_frame(self.sent + 1, self.sid, self.sent,
                                                               (self.sent - 1) * 100, tone(100)))
                await asyncio.sleep(0.1)

    async def _receive(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self.ws:
                self.echoes += isinstance(protocol.parse_bot_frame(text), protocol.BotMedia)

    async def hears_echoes(self, more_than: int = 0) -> None:
        while self.echoes <= more_than:
            await asyncio.sleep(0.05)

    async def hang_up(self) -> int:
        self._sending.cancel()
        await self.ws.send(protocol.exotel_stop_frame(self.sent + 2, self.sid, call_sid=f"CA{self.sid}",
                                                      account_sid="acme1", reason="callended"))
        return await self.closed()

    async def closed(self) -> int:
        await self.ws.wait_closed()
        self._sending.cancel()
        return self.ws.close_code


def stream_url(daphne, call) -> str:
    return "ws" + daphne.url.removeprefix("http") + f"/streams/{call.token}"


def test_sigterm_stops_listening_lets_live_calls_end_then_ends_the_rest(transactional_db, tmp_path, settings,
                                                                        acme):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    daphne = processes.start_daphne(tmp_path, STREAM_DRAIN_SECONDS=str(DRAIN_SECONDS))
    campaign = make_campaign(acme, bot_kind="echo")
    short, long, late = (make_call(campaign) for _ in range(3))

    async def restart() -> tuple[int, int, int]:
        ending, outliving = await Caller.dial(stream_url(daphne, short), "S1"), await Caller.dial(
            stream_url(daphne, long), "S2")
        await asyncio.wait_for(asyncio.gather(ending.hears_echoes(), outliving.hears_echoes()), 10)
        daphne.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(processes.wait_until, lambda: "draining" in daphne.output(), timeout=5,
                                what="daphne to start draining")
        with pytest.raises(ConnectionRefusedError):  # no longer listening: a proxy tries another server
            await websockets.connect(stream_url(daphne, late))
        await asyncio.to_thread(processes.wait_until, lambda: not StreamServer.objects.exists(), timeout=10,
                                what="the heartbeat to be withdrawn")  # while calls are still live
        await asyncio.wait_for(ending.hears_echoes(more_than=ending.echoes), 5)  # still a working call
        ended_code = await ending.hang_up()
        return ended_code, ending.sent, await asyncio.wait_for(outliving.closed(), EXIT_SECONDS)

    try:
        ended_code, frames_sent, outlived_code = asyncio.run(restart())
        assert daphne.process.wait(EXIT_SECONDS) == 0
    finally:
        daphne.stop()
    assert ended_code == CloseCode.NORMAL
    ended = StreamSession.objects.get(call=short)
    assert (ended.stop_reason, ended.close_code) == ("callended", CloseCode.NORMAL)
    assert ended.ended_at is not None and ended.caller_recording and ended.bot_recording
    assert frames_sent - 1 <= ended.frames_in <= frames_sent  # all its audio (the last frame may have been cut)
    assert outlived_code == protocol.wire_code(CloseCode.GOING_AWAY)
    outlived = StreamSession.objects.get(call=long)
    assert (outlived.stop_reason, outlived.close_code) == ("server_shutdown", outlived_code)
    assert outlived.ended_at is not None and outlived.caller_recording
    assert not StreamSession.objects.filter(call=late).exists()


def test_sigterm_with_no_live_call_exits_at_once(transactional_db, tmp_path):
    daphne = processes.start_daphne(tmp_path)  # the default drain time: minutes
    try:
        daphne.process.send_signal(signal.SIGTERM)
        assert daphne.process.wait(EXIT_SECONDS) == 0
    finally:
        daphne.stop()
