"""Bots shaped like Exotel's published echo bot (github.com/exotel/Agent-Stream-echobot).

That bot was run by hand, unchanged, against the simulator; these tests keep what it showed with a
client of our own sending the same frame shapes: each `media` frame echoed at once with its `media`
object verbatim (chunk, timestamp, payload) under the `stream_sid` remembered from `start`. At
16 kHz those echoes are 3200-byte chunks, legal; at 8 kHz they are 1600 bytes, under the minimum,
which Exotel plays degraded: chunk warnings, not a closed socket, unless the simulator is strict.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import wave
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from exotel.client import AsyncExotelClient, BotCall

from .conftest import NUMBERS, until, wait_for_end


class EchoBotShapes:
    """The frames Exotel's echo bot sends, and everything it received."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None

    async def __call__(self, ws: websockets.ServerConnection) -> None:
        stream_sid = None
        try:
            async for message in ws:
                data = json.loads(message)
                self.frames.append(data)
                if data["event"] == "start":
                    stream_sid = data["start"].get("stream_sid", data.get("stream_sid"))
                elif data["event"] == "media":  # its echo task logs a failed send and reading goes on
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(json.dumps({"event": "media", "stream_sid": stream_sid,
                                                  "media": data["media"]}))
        except websockets.ConnectionClosed:
            pass
        self.close_code = ws.close_code


async def dial(sim, url: str, number: str = NUMBERS["answer"], **fields: Any) -> str:
    async with AsyncExotelClient(sim.account()) as client:
        return (await client.connect_to_bot(BotCall(number=number, caller_id="08047491899", stream_url=url,
                                                    **fields))).sid


@pytest.mark.parametrize(("rate", "echo_bytes"), [(16000, 3200), (8000, 1600)])
async def test_the_echo_bot_runs_with_no_violations_and_short_echoes_are_chunk_warnings(
        sim, bot_server, rate, echo_bytes):
    bot = EchoBotShapes()
    sid = await dial(sim, await bot_server(bot) + f"?sample-rate={rate}", number=NUMBERS["talk"])
    call = await wait_for_end(sim, sid)
    echoed = sim.records("frame", call_sid=sid, dir="received", event="media")
    assert echoed and {frame["bytes"] for frame in echoed} == {echo_bytes}
    warnings = sim.records("chunk_warning", call_sid=sid)
    expected = ["chunk of 1600 bytes is under 3200"] * len(echoed) if rate == 8000 else []
    assert [w["reason"] for w in warnings] == expected
    assert (call["violations"], call["chunk_warnings"], call["ended_by"]) == (0, len(warnings), "caller")
    assert await until(lambda: bot.close_code, what="close") == 1000 and bot.frames[-1]["event"] == "stop"


async def test_strict_mode_closes_the_8khz_echo_over_its_first_short_chunk(strict_simulator, bot_server):
    bot = EchoBotShapes()
    # A caller who never hangs up: however late the stream opens, an echo reaches the simulator.
    sid = await dial(strict_simulator, await bot_server(bot) + "?sample-rate=8000", number=NUMBERS["silent"])
    call = await wait_for_end(strict_simulator, sid)
    assert await until(lambda: bot.close_code, what="close") == 1007
    violations = strict_simulator.records("violation", call_sid=sid)  # echoes in flight may add more
    assert {v["reason"] for v in violations} == {"chunk of 1600 bytes is under 3200"}
    assert call["ended_by"] == "system"


async def test_frames_without_a_stream_sid_or_spelt_streamsid_are_played(sim, bot_server):
    sound = np.full(1600, 1000, dtype="<i2").tobytes()
    marks: list[str] = []

    async def handle(ws: websockets.ServerConnection) -> None:
        async for message in ws:
            data = json.loads(message)
            if data["event"] == "start":
                await ws.send(json.dumps({"event": "media", "media": {"payload": base64.b64encode(sound).decode()}}))
                await ws.send(json.dumps({"event": "mark", "streamSid": data["stream_sid"], "mark": {"name": "m"}}))
            elif data["event"] == "mark":
                marks.append(data["mark"]["name"])
                await ws.close()

    sid = await dial(sim, await bot_server(handle), number=NUMBERS["silent"], record=True,
                     recording_channels="dual")
    call = await wait_for_end(sim, sid)
    assert marks == ["m"] and call["violations"] == 0
    with wave.open(io.BytesIO(httpx.get(f"{sim.base_url}/_sim/recordings/{sid}.wav").content)) as wav:
        bot_track = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)[:, 1]
    assert np.count_nonzero(bot_track) == 1600  # the whole chunk was heard
