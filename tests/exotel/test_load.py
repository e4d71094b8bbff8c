"""Load mode against echo bots: sane figures, and latency that ignores a bot's re-chunk buffering."""

from __future__ import annotations

import asyncio
import base64
import json
import sys

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
    report = await run_load(url, calls=3, seconds=2, sample_rate=8000)
    assert report.errors == 0
    assert report.frames_sent == 60 and report.frames_received == 60 == report.chunks_measured
    latency = report.latency_ms
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"] < 100
    assert 40 < report.frames_per_second < 70  # 3 calls x 10 frames/s each way, over ~3 s with the drain


async def test_latency_excludes_re_chunk_buffering(bot_server):
    url = await bot_server(echo_handler(BotLog()))  # two 100 ms frames become one 200 ms chunk
    report = await run_load(url, calls=2, seconds=1, sample_rate=8000)
    assert report.errors == 0 and (report.frames_sent, report.frames_received) == (20, 10)
    assert report.latency_ms["p50"] < 50  # not ~100 ms: waiting for the second frame is not counted


async def test_the_load_command_prints_text_and_json(bot_server):
    url = await bot_server(plain_echo)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exotel.simulator.load", "--url", url, "--calls", "1", "--seconds", "0.5",
        stdout=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    text, json_line = stdout.decode().strip().splitlines()
    assert "echo latency" in text and json.loads(json_line)["frames_sent"] == 5
