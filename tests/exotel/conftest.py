"""Fixtures for the exotel tests: the simulator as a real subprocess, an echo bot, a webhook receiver.

Everything listens on 127.0.0.1 only. The simulator is started once per session with a config that
covers every number plan the tests need; tests that need other settings start their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiohttp import web

from exotel import protocol
from exotel.audio import Chunker
from exotel.client import Account
from tests.processes import free_port

Handler = Callable[[websockets.ServerConnection], Awaitable[None]]

SID, KEY, TOKEN = "ACtest", "key-1", "token-1"
SID_LIMITED = "AClimited"

NUMBERS = {
    "answer": "+919800000001",        # answers at once, speaks, hangs up after 0.7 s
    "busy": "+919800000002",
    "no_answer": "+919800000003",
    "failed": "+919800000004",
    "silent": "+919800000005",        # answers, says nothing, never hangs up: the bot ends the call
    "dtmf": "+919800000006",          # presses 5 then 7
    "slow_ring": "+919800000007",     # rings 3 s (a shorter ring timeout makes it no-answer)
    "talk": "+919800000008",          # answers at once, speaks, hangs up after 3 s: a late stream still carries audio
    "then_busy": "+919800000009",     # answers its first dial, is busy for the second, does not answer after
    "machine": "+919800000010",       # an answering machine; Exotel's AMD says so 0.3 s after the answer
}

CONFIG = {
    "default": {"outcome": "answer", "ring_seconds": 0.1, "hangup_after": 0.7},
    "numbers": {
        NUMBERS["busy"]: {"outcome": "busy", "ring_seconds": 0.1},
        NUMBERS["no_answer"]: {"outcome": "no-answer", "ring_seconds": 0.2},
        NUMBERS["failed"]: {"outcome": "failed", "ring_seconds": 0.1},
        NUMBERS["silent"]: {"hangup_after": None, "script": []},
        NUMBERS["dtmf"]: {"hangup_after": 1.2, "script": [{"at": 0.3, "dtmf": "5"}, {"at": 0.6, "dtmf": "7"},
                                                         {"at": 0.1, "speech": 0.5}]},
        NUMBERS["slow_ring"]: {"ring_seconds": 3},
        NUMBERS["talk"]: {"hangup_after": 3},
        NUMBERS["then_busy"]: {"then": [{"outcome": "busy"}, {"outcome": "no-answer"}]},
        NUMBERS["machine"]: {"hangup_after": 1.5, "machine": {"greeting_seconds": 1.0, "amd_delay": 0.3}},
    },
    "max_allowed_streams": {SID_LIMITED: 1},
    "callback_retry_delay": 0.2,
}


@dataclass
class RunningSimulator:
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def account(self, sid: str = SID, **overrides: Any) -> Account:
        return Account(sid, overrides.pop("api_key", KEY), overrides.pop("api_token", TOKEN),
                       base_url_override=self.base_url, **overrides)

    def log_position(self) -> int:
        return len(self.log_path.read_text().splitlines()) if self.log_path.exists() else 0

    def records(self, kind: str | None = None, since: int = 0, **match: Any) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()[since:] if self.log_path.exists() else []
        found = [json.loads(line) for line in lines]
        return [r for r in found if (kind is None or r["kind"] == kind)
                and all(r.get(k) == v for k, v in match.items())]

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        httpx.put(f"{self.base_url}/_sim/faults", json=faults).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.base_url}/_sim/calls").json()

    def call(self, sid: str) -> dict[str, Any]:
        return next(c for c in self.calls() if c["sid"] == sid)

    def wait_for_call(self, sid: str, status: tuple[str, ...], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            call = self.call(sid)
            if call["status"] in status:
                return call
            time.sleep(0.05)
        raise AssertionError(f"call {sid} never reached {status}: {self.call(sid)}")


async def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `predicate` (or await it, if it is a coroutine function) without blocking the loop (bots and
    receivers run in it) until truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_for_end(sim: RunningSimulator, sid: str, timeout: float = 10.0) -> dict[str, Any]:
    async def ended():
        # Asked from a thread: the bots in this loop must go on answering while the request waits.
        call = await asyncio.to_thread(sim.call, sid)
        return call["status"] in ("completed", "busy", "no-answer", "failed") and call

    return await until(ended, timeout, f"call {sid} to end")


def launch_simulator(tmp: Path, config: dict[str, Any], *extra: str) -> RunningSimulator:
    port = free_port()
    config_path, log_path, err_path = tmp / "sim.json", tmp / "sim.jsonl", tmp / "sim.err"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "exotel.simulator", "--host", "127.0.0.1", "--port", str(port),
         "--account", f"{SID}:{KEY}:{TOKEN}", "--account", f"{SID_LIMITED}:{KEY}:{TOKEN}",
         "--config", str(config_path), "--log", str(log_path), "--seed", "7", *extra],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL, stderr=err_path.open("wb"))
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # as tests/processes.py: imports alone take seconds on a loaded machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"simulator exited: {err_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/_sim/health", timeout=0.5).status_code == 200:
                return RunningSimulator(base_url, log_path, process)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("simulator did not become healthy")


def stop_simulator(sim: RunningSimulator) -> None:
    sim.process.terminate()
    try:
        sim.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sim.process.kill()


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    sim = launch_simulator(tmp_path_factory.mktemp("sim"), CONFIG)
    yield sim
    stop_simulator(sim)


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    """The shared simulator, with no faults left over from another test."""
    simulator.set_faults([])
    return simulator


@pytest.fixture(scope="session")
def strict_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    sim = launch_simulator(tmp_path_factory.mktemp("strict"), CONFIG, "--strict")
    yield sim
    stop_simulator(sim)


# --- a bot and a webhook receiver in the test's own event loop -------------------------------


@dataclass
class BotLog:
    """What a test bot saw: every parsed event with its arrival time."""

    events: list[tuple[float, protocol.Event]] = field(default_factory=list)
    close_code: int | None = None

    def of(self, kind: type) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]


def echo_handler(log: BotLog, *, close_after: float | None = None) -> Handler:
    """The reference echo bot, re-chunking 100 ms frames into legal 3200-byte chunks.

    Echoing Exotel's 1600-byte frames verbatim would break the 3200-byte minimum.
    `close_after` makes the bot hang up (close the socket) that long after `start`.
    """

    async def handle(ws: websockets.ServerConnection) -> None:
        stream_sid, chunker, started = "", Chunker(3200), 0.0
        async for message in ws:
            event = protocol.parse_frame(message)
            log.events.append((time.monotonic(), event))
            if isinstance(event, protocol.Start):
                stream_sid, started = event.stream_sid, time.monotonic()
            elif isinstance(event, protocol.Media):
                # An echo may cross the caller's hang-up: the `stop` already received is still read.
                with contextlib.suppress(websockets.ConnectionClosed):
                    for chunk in chunker.feed(event.payload):
                        await ws.send(protocol.media_frame(stream_sid, chunk))
            if close_after is not None and started and time.monotonic() - started > close_after:
                await ws.close()

    return handle


@pytest.fixture
async def bot_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start WebSocket bots on loopback: `url = await bot_server(handler)`."""
    servers: list[websockets.Server] = []

    async def start(handler: Handler) -> str:
        server = await websockets.serve(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@dataclass
class Receiver:
    """Records every request it receives; answers with the next queued status (default 200)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    replies: dict[str, Any] = field(default_factory=dict)   # path -> JSON to answer with

    def at(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@contextlib.asynccontextmanager
async def serve_receiver(port: int | None = None) -> AsyncIterator[Receiver]:
    """A `Receiver` on loopback (on `port` when a config had to name it before it started)."""
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        ctype = request.content_type
        if ctype == "application/json":
            body: Any = await request.json()
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            body = dict((await request.post()).items())
        else:
            body = (await request.read()).decode()
        rec.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                             "content_type": ctype, "headers": dict(request.headers), "body": body})
        if request.path in rec.replies:
            return web.json_response(rec.replies[request.path])
        return web.Response(status=rec.statuses.pop(0) if rec.statuses else 200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as rec:
        yield rec
