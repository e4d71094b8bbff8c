"""Load mode against echo bots: sane figures, and latency that ignores a bot's re-chunk buffering."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time

import websockets

from exotel import protocol
from exotel.simulator.load import run_load

from .conftest import BotLog, echo_handler


async def plain_echo(ws: websockets.ServerConnection) -> None:
    """Sends each payload straight back, as the provider's reference bot does (chunk rules aside)."""
    stream_sid = ""
    async for message in ws:
        event = protocol.parse_frame(message)
        if isinstance(event, protocol.Start):
            stream_sid = event.stream_sid
        elif isinstance(event, protocol.Media):
            await ws.send(json.dumps({"event": "media", "stream_sid": stream_sid,
                                      "media": {"payload": base64.b64encode(event.payload).decode()}}))


async def test_load_mode_reports_sane_numbers(bot_server):
    url = await bot_server(plain_echo)
    started = time.perf_counter()
    report = await run_load(url, calls=3, seconds=2, sample_rate=8000)
    wall = time.perf_counter() - started
    assert report.errors == 0
    assert report.frames_sent == 60 and report.frames_received == 60 == report.chunks_measured
    latency = report.latency_ms
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    # An echo timed from an earlier frame than its own would take a frame (100 ms) more, every echo; a
    # loaded machine holds up only some of them, so the median tells the two apart, not the maximum.
    assert latency["p50"] < 100
    # 3 calls x 10 frames/s each way: at most 60 a second, as they are sent in real time, and at least
    # what this run's own time allows (the report's run is inside it).
    assert round(120 / wall, 1) <= report.frames_per_second <= 60


async def test_latency_excludes_re_chunk_buffering(bot_server):
    rechunking = await bot_server(echo_handler(BotLog()))  # two 100 ms frames become one 200 ms chunk
    plain = await bot_server(plain_echo)
    # Side by side, so that a loaded machine holds both up alike: counted, the re-chunking bot's wait for
    # each second frame would put its median ~100 ms above the plain echo's.
    report, baseline = await asyncio.gather(run_load(rechunking, calls=2, seconds=1, sample_rate=8000),
                                            run_load(plain, calls=2, seconds=1, sample_rate=8000))
    assert report.errors == 0 and (report.frames_sent, report.frames_received) == (20, 10)
    assert baseline.errors == 0
    assert report.latency_ms["p50"] < baseline.latency_ms["p50"] + 50


async def test_the_load_command_prints_text_and_json(bot_server):
    url = await bot_server(plain_echo)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exotel.simulator.load", "--url", url, "--calls", "1", "--seconds", "0.5",
        stdout=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    text, json_line = stdout.decode().strip().splitlines()
    assert "echo latency" in text and json.loads(json_line)["frames_sent"] == 5
