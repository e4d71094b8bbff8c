"""Exotel's side of the stream: real-time playback, marks, clear, pacing and violation detection."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable

import pytest
import websockets

from exotel import protocol
from exotel.client import AsyncExotelClient, BotCall

from .conftest import NUMBERS, BotLog, echo_handler, until, wait_for_end

CHUNK = bytes(3200)          # 200 ms at 8 kHz
CHUNK_SECONDS = 0.2
Act = Callable[[websockets.ServerConnection, protocol.Start, BotLog], Awaitable[None]]


def scripted(log: BotLog, act: Act) -> Callable[[websockets.ServerConnection], Awaitable[None]]:
    """A bot that records every frame and runs `act` once the stream has started, then hangs up."""

    async def handle(ws: websockets.ServerConnection) -> None:
        tasks = []
        try:
            async for message in ws:
                event = protocol.parse_frame(message)
                log.events.append((time.monotonic(), event))
                if isinstance(event, protocol.Start):
                    tasks.append(asyncio.create_task(act(ws, event, log)))
        except websockets.ConnectionClosed:
            pass
        log.close_code = ws.close_code

    return handle


def mark_times(log: BotLog) -> dict[str, float]:
    return {e.name: t for t, e in log.events if isinstance(e, protocol.Mark)}


async def call_bot(sim, bot_server, act: Act, number: str = NUMBERS["silent"]) -> tuple[str, BotLog]:
    log = BotLog()
    url = await bot_server(scripted(log, act))
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_bot(BotCall(number=number, caller_id="080", stream_url=url))
    return info.sid, log


async def test_a_mark_returns_only_after_the_audio_before_it_has_played(sim, bot_server):
    sent_at = {}

    async def act(ws, start, log):
        sent_at["t"] = time.monotonic()
        for _ in range(2):
            await ws.send(protocol.media_frame(start.stream_sid, CHUNK))
        await ws.send(protocol.mark_frame(start.stream_sid, "first"))
        await ws.send(protocol.media_frame(start.stream_sid, CHUNK))
        await ws.send(protocol.mark_frame(start.stream_sid, "second"))
        await until(lambda: len(mark_times(log)) == 2, what="marks")
        await ws.close()

    sid, log = await call_bot(sim, bot_server, act)
    await wait_for_end(sim, sid)
    marks = mark_times(log)
    assert list(marks) == ["first", "second"]
    assert 2 * CHUNK_SECONDS - 0.02 <= marks["first"] - sent_at["t"] < 2 * CHUNK_SECONDS + 0.25
    assert 3 * CHUNK_SECONDS - 0.02 <= marks["second"] - sent_at["t"] < 3 * CHUNK_SECONDS + 0.25


async def test_clear_drops_unplayed_audio_and_its_marks(sim, bot_server):
    times = {}

    async def act(ws, start, log):
        for _ in range(8):  # 1.6 s of audio
            await ws.send(protocol.media_frame(start.stream_sid, CHUNK))
        await ws.send(protocol.mark_frame(start.stream_sid, "dropped"))
        await asyncio.sleep(0.3)  # the second chunk is playing now
        times["clear"] = time.monotonic()
        await ws.send(protocol.clear_frame(start.stream_sid))
        await ws.send(protocol.mark_frame(start.stream_sid, "after-clear"))
        await asyncio.sleep(1.6)  # long enough for "dropped" to have come back, had it survived
        await ws.close()

    position = sim.log_position()
    sid, log = await call_bot(sim, bot_server, act)
    await wait_for_end(sim, sid)
    marks = mark_times(log)
    assert list(marks) == ["after-clear"]
    assert marks["after-clear"] - times["clear"] < CHUNK_SECONDS + 0.1  # only the playing chunk finished
    (cleared,) = sim.records("clear", since=position, call_sid=sid)
    # Six chunks were queued behind the one playing; five if the bot's 0.3 s sleep overran the
    # second chunk's end (the simulator keeps its playback clock, the bot's lateness is its own).
    assert cleared["dropped_marks"] == ["dropped"] and cleared["dropped_chunks"] in (5, 6)


async def test_caller_media_is_paced_in_real_time(sim, bot_server):
    log = BotLog()
    url = await bot_server(echo_handler(log))
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_bot(BotCall(number=NUMBERS["answer"], caller_id="080", stream_url=url))
    await wait_for_end(sim, info.sid)
    media = [(t, e) for t, e in log.events if isinstance(e, protocol.Media)]
    assert 5 <= len(media) <= 8  # 0.7 s of 100 ms frames
    assert [e.chunk for _, e in media] == list(range(1, len(media) + 1))
    assert [e.timestamp for _, e in media] == [100 * e.chunk for _, e in media]
    assert all(len(e.payload) == 1600 for _, e in media)
    span = media[-1][0] - media[0][0]
    assert abs(span - 0.1 * (len(media) - 1)) < 0.08
    seqs = [e.sequence_number for _, e in log.events if getattr(e, "sequence_number", None)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert not sim.records("violation", call_sid=info.sid)  # the re-chunking echo bot is well behaved


def raw_media(stream_sid: str, pcm: bytes) -> str:
    """A media frame that skips the builder's own size check, to break the rules on purpose."""
    return json.dumps({"event": "media", "stream_sid": stream_sid,
                       "media": {"payload": base64.b64encode(pcm).decode()}})


def bad_frame(name: str, stream_sid: str) -> str:
    return {
        "not json": "{nope",
        "under the minimum": raw_media(stream_sid, bytes(1600)),
        "not a multiple of 320": raw_media(stream_sid, bytes(3330)),
        "over the maximum": raw_media(stream_sid, bytes(100160)),
        "wrong stream sid": raw_media("MZ-someone-else", CHUNK),
        "unknown event": json.dumps({"event": "dance", "stream_sid": stream_sid}),
    }[name]


EXPECTED = {"not json": ("not JSON", 1003), "under the minimum": ("under 3200", 1007),
            "not a multiple of 320": ("multiple of 320", 1007), "over the maximum": ("over 100000", 1009),
            "wrong stream sid": ("stream_sid", 1008), "unknown event": ("unknown event", 1002)}
CHUNK_RULES = ("under the minimum", "not a multiple of 320", "over the maximum")


async def test_violations_are_logged_with_a_reason_and_the_socket_stays_open(sim, bot_server):
    async def act(ws, start, log):
        for name in EXPECTED:
            await ws.send(bad_frame(name, start.stream_sid))
        for _ in range(12):  # 2.4 s at once, on top of what is queued: far ahead of real time
            await ws.send(protocol.media_frame(start.stream_sid, CHUNK))
        await asyncio.sleep(0.5)
        await ws.close()

    sid, log = await call_bot(sim, bot_server, act)
    call = await wait_for_end(sim, sid)
    violations = sim.records("violation", call_sid=sid)
    expected = [EXPECTED[name] for name in EXPECTED if name not in CHUNK_RULES]
    for reason, code in [*expected, ("ahead of real time", 1008)]:
        assert any(reason in v["reason"] and v["code"] == code for v in violations), (reason, violations)
    warnings = sim.records("chunk_warning", call_sid=sid)
    assert [w["reason"] for w in warnings] == ["chunk of 1600 bytes is under 3200",
                                               "chunk of 3330 bytes is not a multiple of 320",
                                               "chunk of 100160 bytes is over 100000"]
    assert not any("chunk of" in v["reason"] for v in violations)  # chunk sizes degrade audio, no more
    assert call["ended_by"] == "bot"
    assert await until(lambda: log.close_code, what="close") == 1000  # nothing closed the socket on us
    assert (call["violations"], call["chunk_warnings"]) == (len(violations), 3)


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_strict_mode_closes_with_the_fitting_code(strict_simulator, bot_server, name):
    async def act(ws, start, log):
        await ws.send(bad_frame(name, start.stream_sid))

    sid, log = await call_bot(strict_simulator, bot_server, act)
    call = await wait_for_end(strict_simulator, sid)
    assert await until(lambda: log.close_code, what="the bot to see the close") == EXPECTED[name][1]
    assert call["ended_by"] == "system" and call["status"] == "completed"


async def test_strict_mode_lets_a_well_behaved_bot_finish(strict_simulator, bot_server):
    log = BotLog()
    url = await bot_server(echo_handler(log))
    async with AsyncExotelClient(strict_simulator.account()) as client:
        info = await client.connect_to_bot(BotCall(number=NUMBERS["answer"], caller_id="080", stream_url=url))
    call = await wait_for_end(strict_simulator, info.sid)
    assert (call["ended_by"], call["violations"]) == ("caller", 0)
    assert log.of(protocol.Stop)[0].reason == "callended"


async def test_the_wire_log_records_frames_without_payloads(sim, bot_server):
    log = BotLog()
    url = await bot_server(echo_handler(log))
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_bot(BotCall(number=NUMBERS["answer"], caller_id="080", stream_url=url))
    await wait_for_end(sim, info.sid)
    frames = sim.records("frame", call_sid=info.sid)
    sent = [f["event"] for f in frames if f["dir"] == "sent"]
    assert sent[:2] == ["connected", "start"] and sent[-1] == "stop"
    received = [f for f in frames if f["dir"] == "received"]
    assert received and all(f["event"] == "media" and f["bytes"] == 3200 for f in received)
    assert all("payload" not in f for f in frames)
