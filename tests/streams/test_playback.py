"""The outbox: a source of continuous audio faster than real time meets backpressure, not a growing queue."""

import asyncio

from exotel import protocol
from streams import playback
from streams.playback import Outbox
from tests.streams.exotel_side import tone


async def test_a_source_faster_than_real_time_waits_for_room_and_a_clear_lets_it_on(monkeypatch):
    monkeypatch.setattr(playback, "BACKLOG_MS", 1000)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    outbox = Outbox(send, "S1", 8000)
    fed = 0

    async def relayed_bot() -> None:  # ten seconds of audio, sent as fast as it can
        nonlocal fed
        for _ in range(10):
            await outbox.stream(tone(1000))
            fed += 1

    feeding = asyncio.ensure_future(relayed_bot())
    await asyncio.sleep(0.5)
    # About 1 s of lead went out; what waits is at most the backlog plus the piece that filled it.
    assert not feeding.done() and fed < 5
    assert 0 < sum(len(chunk) for kind, chunk, _ in outbox._queue if kind == "audio") <= 2000 * 16
    before_clear = fed
    await outbox.clear()  # barge-in: the queue is dropped, so the source gets room at once
    await asyncio.sleep(0)
    assert fed > before_clear and protocol.clear_frame("S1") in sent
    feeding.cancel()
    outbox.close()
