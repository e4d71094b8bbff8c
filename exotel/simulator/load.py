"""Load mode: N concurrent answered calls against one stream URL, measuring echo latency.

    python -m exotel.simulator.load --url ws://127.0.0.1:8000/stream --calls 50 --seconds 10

Each simulated call opens the WebSocket directly (no HTTP dial), sends `connected` and `start`,
then real-time paced `media` (100 ms frames: 1600 bytes at 8 kHz) for `seconds`, then `stop`.

Latency is measured by byte offset, so it stays right when the bot re-chunks: the bot cannot echo
a byte before receiving it, so a returned chunk covering inbound bytes [a, b) is timed from the
send time of the frame holding byte b-1 (capped at the last byte sent, for padding) to its
arrival. Buffering the bot must do to build a legal chunk is therefore not counted.
Prints a human summary and then the report as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import secrets
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import websockets

from exotel import protocol
from exotel.audio import bytes_per_ms

DRAIN_SECONDS = 1.0  # after the last frame, wait this long for the last echoes


@dataclass(frozen=True)
class LoadReport:
    calls: int
    seconds: float
    sample_rate: int
    frames_sent: int
    frames_received: int
    frames_per_second: float          # media frames sent and received per second, all calls
    chunks_measured: int
    latency_ms: dict[str, float]      # p50, p95, p99, max
    errors: int
    error_samples: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def to_text(self) -> str:
        lat = self.latency_ms
        return (f"{self.calls} calls x {self.seconds:g}s at {self.sample_rate} Hz: "
                f"{self.frames_sent} frames sent, {self.frames_received} received "
                f"({self.frames_per_second:.0f} frames/s); echo latency ms p50 {lat['p50']:.1f} "
                f"p95 {lat['p95']:.1f} p99 {lat['p99']:.1f} max {lat['max']:.1f}; errors {self.errors}")


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    errors: list[str] = field(default_factory=list)


def _frame_audio(rate: int, frame_ms: int) -> bytes:
    """A 440 Hz tone at about -20 dBFS: real audio, so a bot's level meters behave."""
    t = np.arange(int(rate * frame_ms / 1000)) / rate
    return (3276 * math.sqrt(2) * np.sin(2 * math.pi * 440 * t)).astype("<i2").tobytes()


class _Call:
    def __init__(self, index: int, tally: _Tally) -> None:
        self.stream_sid, self.call_sid = f"MZload{index:05d}{secrets.token_hex(4)}", f"CAload{index:05d}"
        self.tally = tally
        self.sent_ends: list[int] = []      # cumulative bytes sent after each frame
        self.sent_times: list[float] = []
        self.received_bytes = 0

    async def run(self, url: str, seconds: float, rate: int, frame_ms: int) -> None:
        async with websockets.connect(url, open_timeout=10, close_timeout=2, max_size=2**22) as ws:
            await ws.send(protocol.exotel_connected_frame())
            await ws.send(protocol.exotel_start_frame(1, stream_sid=self.stream_sid, call_sid=self.call_sid,
                                                      account_sid="ACload", from_="+919800000000",
                                                      to="08000000000", custom_parameters={}, sample_rate=rate))
            receiver = asyncio.create_task(self._receive(ws))
            try:
                await self._send_media(ws, seconds, rate, frame_ms)
                deadline = time.perf_counter() + DRAIN_SECONDS
                while self.received_bytes < self.sent_ends[-1] and time.perf_counter() < deadline:
                    await asyncio.sleep(0.02)
                await ws.send(protocol.exotel_stop_frame(len(self.sent_ends) + 2, self.stream_sid,
                                                         call_sid=self.call_sid, account_sid="ACload",
                                                         reason="callended"))
            finally:
                receiver.cancel()

    async def _send_media(self, ws: websockets.ClientConnection, seconds: float, rate: int, frame_ms: int) -> None:
        pcm, total = _frame_audio(rate, frame_ms), 0
        start = time.perf_counter()
        for chunk in range(1, int(seconds * 1000 / frame_ms) + 1):
            delay = start + chunk * frame_ms / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(protocol.exotel_media_frame(chunk + 1, self.stream_sid, chunk, chunk * frame_ms, pcm))
            total += len(pcm)
            self.sent_ends.append(total)
            self.sent_times.append(time.perf_counter())
            self.tally.sent += 1

    async def _receive(self, ws: websockets.ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._count_echoes(ws)

    async def _count_echoes(self, ws: websockets.ClientConnection) -> None:
        async for message in ws:
            arrived = time.perf_counter()
            try:
                event = protocol.parse_bot_frame(message)
            except protocol.ProtocolError as exc:
                self.tally.errors.append(f"{self.call_sid}: {exc}")
                continue
            if not isinstance(event, protocol.BotMedia) or not self.sent_ends:
                continue
            self.received_bytes += len(event.payload)
            latest = min(self.received_bytes, self.sent_ends[-1]) - 1
            frame = bisect.bisect_right(self.sent_ends, latest)
            self.tally.latencies.append((arrived - self.sent_times[frame]) * 1000)
            self.tally.received += 1


async def run_load(url: str, calls: int, seconds: float, sample_rate: int = 8000,
                   frame_ms: int = 100) -> LoadReport:
    """Run `calls` concurrent calls for `seconds` against `url` and report what came back."""
    if sample_rate not in protocol.SAMPLE_RATES or bytes_per_ms(sample_rate) * frame_ms % 2:
        raise ValueError(f"unsupported sample rate {sample_rate}")
    tally = _Tally()

    async def one(index: int) -> None:
        try:
            await _Call(index, tally).run(url, seconds, sample_rate, frame_ms)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            tally.errors.append(f"call {index}: {exc!r}")

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    wall = time.perf_counter() - started
    values = np.array(tally.latencies) if tally.latencies else np.zeros(1)
    latency = {f"p{p}": round(float(np.percentile(values, p)), 2) for p in (50, 95, 99)}
    latency["max"] = round(float(values.max()), 2)
    return LoadReport(calls=calls, seconds=seconds, sample_rate=sample_rate, frames_sent=tally.sent,
                      frames_received=tally.received,
                      frames_per_second=round((tally.sent + tally.received) / wall, 1),
                      chunks_measured=len(tally.latencies), latency_ms=latency, errors=len(tally.errors),
                      error_samples=tally.errors[:10])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m exotel.simulator.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the bot's WebSocket URL")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sample-rate", type=int, default=8000, choices=protocol.SAMPLE_RATES)
    parser.add_argument("--frame-ms", type=int, default=100)
    args = parser.parse_args(argv)
    report = asyncio.run(run_load(args.url, args.calls, args.seconds, args.sample_rate, args.frame_ms))
    print(report.to_text())
    print(report.to_json())


if __name__ == "__main__":
    main()
