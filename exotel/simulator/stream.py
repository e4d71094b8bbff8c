"""Exotel's side of one AgentStream WebSocket, played against the bot at `url`.

Sends `connected`, `start` (sample rate and custom parameters from the URL query, at most 3
pairs and 256 characters, or the stream URL is refused), then the caller's audio as `media` frames
paced in real time (`frame_ms`, 100 ms by default: 1600 bytes at 8 kHz), `dtmf` at the script's
times, and `stop` when the caller hangs up (`callended`) or the time limit, the 60-minute session
limit or an API hang-up ends the stream (`stopped`). The bot's audio is played back in real time:
a chunk starts when the previous one ends, a `mark` goes back only once all audio queued before it
has played, `clear` drops queued chunks (and their marks) but not the one playing.

A unidirectional stream (Stream applet, `StreamType=unidirectional`, Legs `direction`) is
receive-only: no `dtmf`, no marks back, and any `media`, `mark` or `clear` from the bot is a
violation. A μ-law stream (Legs `content_type: audio/x-mulaw`) carries one byte a sample both ways;
its chunk rules are applied to the same audio as 16-bit PCM (the same durations).

Violations are logged with a reason and a close code; in strict mode the socket is then closed
with that code: not JSON (1003), unknown event or missing field (1002), bad payload (1007), wrong
stream SID, bot audio on a receive-only stream or more than `ahead_limit_seconds` of audio queued
ahead of real time (1008). Outside strict mode frames with a wrong stream SID are ignored; a frame
without a stream SID belongs to this stream (Exotel's own samples omit or misspell it).

Chunk-size problems are chunk warnings, as the field notes describe them: degraded audio, not a
closed socket. A chunk that is not a multiple of 320 bytes is followed by a 20 ms gap; one under
3200 bytes that finds less than a legal chunk's worth of audio buffered starts up to 20 ms late
(jitter, seeded; the backlog this builds is bounded by that one chunk's worth); one over 100000
bytes times out and is not played. Only strict mode treats them as violations and
closes: under the minimum or not a multiple 1007, over the maximum 1009.

Choices where the reference is silent: `media.timestamp` is milliseconds since the stream opened
at the end of the chunk (chunk 2 -> "200"); sequence numbers count every frame after `connected`;
a failed handshake is retried once (field notes) and then the stream counts as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import websockets

from exotel import protocol
from exotel.audio import bytes_per_ms, mulaw_to_pcm, pcm_to_mulaw
from exotel.errors import ValidationError
from exotel.protocol import CHUNK_MAX, CHUNK_MIN, CHUNK_MULTIPLE, CloseCode
from exotel.simulator.caller import render
from exotel.simulator.config import ScriptStep, SimConfig
from exotel.simulator.log import WireLog
from exotel.simulator.recording import Recording
from exotel.wire.requests import check_custom_parameters

HANDSHAKE_TIMEOUT = 10.0  # field notes: a bot that does not answer the handshake in 10 s fails
GAP_SECONDS = 0.02        # field notes: chunks not a multiple of 320 bytes leave 20 ms gaps
JITTER_MAX_SECONDS = 0.02  # our choice for "under the minimum, jitter": up to one 20 ms frame late
MULAW = "audio/x-mulaw"


@dataclass(frozen=True)
class StreamSpec:
    url: str
    call_sid: str
    account_sid: str
    stream_sid: str
    from_: str
    to: str
    answered_at: float            # loop time of the answer: the caller's script is timed from it
    script: tuple[ScriptStep, ...]
    hangup_at: float | None       # loop time the caller hangs up, if it does
    time_limit_at: float | None
    seed: int
    sample_rate: int | None = None  # Legs set it in start_stream; otherwise the URL's `sample-rate`
    encoding: str = "audio/x-raw"   # or "audio/x-mulaw" (Legs start_stream content_type)
    bidirectional: bool = True      # False: Stream applet / unidirectional, receive-only


@dataclass(frozen=True)
class StreamOutcome:
    ended_by: str                 # "caller" | "bot" | "system" | "failed"
    reason: str
    duration: float
    violations: int = 0
    chunk_warnings: int = 0


def stream_parameters(url: str) -> tuple[int, dict[str, str]]:
    """(sample rate, custom parameters) from the URL query, as the Voicebot applet reads them."""
    params = dict(parse_qsl(urlsplit(url).query))
    rate = params.pop("sample-rate", "8000")
    return (int(rate) if rate in ("8000", "16000", "24000") else 8000), params


class StreamSession:
    def __init__(self, spec: StreamSpec, config: SimConfig, log: WireLog, *, strict: bool,
                 on_open: Callable[[], Awaitable[None]] | None = None,
                 on_bot_audio: Callable[[], None] | None = None) -> None:
        self.spec, self.config, self.log, self.strict = spec, config, log, strict
        url_rate, self.custom_parameters = stream_parameters(spec.url)
        self.rate = spec.sample_rate or url_rate
        self.width = 1 if spec.encoding == MULAW else 2  # bytes per sample on the wire
        self.recording = Recording(self.rate)
        self.violations = self.chunk_warnings = 0
        self._jitter = random.Random(f"{spec.seed}:{spec.stream_sid}")
        self._on_open, self._on_bot_audio = on_open, on_bot_audio
        self._loop = asyncio.get_running_loop()
        self._ws: websockets.ClientConnection | None = None
        self._t0 = 0.0
        self._seq = 0
        # (kind, item, arrival): audio, a mark, or a gap (seconds of silence)
        self._queue: deque[tuple[str, bytes | str | float, float]] = deque()
        self._queued = asyncio.Event()
        self._playing_until = 0.0
        self._stop_reason: tuple[str, str] | None = None
        self._sender: asyncio.Task[str] | None = None
        self._closed_by_us = False  # strict mode closed the socket over a violation

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> StreamOutcome:
        try:
            check_custom_parameters(self.custom_parameters)
        except ValidationError as exc:
            self._event("ws", action="refused", url=self.spec.url, reason=str(exc))
            return StreamOutcome("failed", f"stream URL refused: {exc}", 0.0)
        try:
            self._ws = await self._connect()
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            return StreamOutcome("failed", f"handshake failed: {exc!r}", 0.0)
        self._t0 = self._playing_until = self._loop.time()
        self._event("ws", action="open", url=self.spec.url)
        if self._on_open:
            await self._on_open()
        await self._send(protocol.exotel_connected_frame(), "connected")
        await self._send(self._start_frame(), "start")
        self._sender = asyncio.create_task(self._send_caller())
        receiver = asyncio.create_task(self._receive())
        player = asyncio.create_task(self._play())
        await asyncio.wait({self._sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        outcome = await self._finish(receiver)
        player.cancel()
        return outcome

    def request_stop(self, reason: str, by: str) -> None:
        """End the stream from outside (an API hang-up): sends `stop`, then closes the socket."""
        self._stop_reason = (reason, by)
        if self._sender:
            self._sender.cancel()

    async def _connect(self) -> websockets.ClientConnection:
        error: Exception | None = None
        for attempt in (1, 2):  # field notes: Exotel retries a failed handshake once
            try:
                return await websockets.connect(self.spec.url, open_timeout=HANDSHAKE_TIMEOUT,
                                                close_timeout=2, max_size=2**22)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self._event("ws", action="connect_failed", url=self.spec.url, attempt=attempt, error=repr(exc))
                error = exc
        assert error is not None
        raise error

    async def _finish(self, receiver: asyncio.Task[None]) -> StreamOutcome:
        assert self._sender and self._ws
        sender, duration = self._sender, self._loop.time() - self._t0
        closed_under_sender = sender.done() and not sender.cancelled() and sender.result() == ""
        if receiver.done() or closed_under_sender:  # the bot (or strict mode) closed the socket first
            sender.cancel()
            await receiver  # ends as soon as the closing handshake has
            code = self._ws.close_code
            by = "system" if self._closed_by_us else "bot"
            self._event("ws", action="close", code=code, by=by)
            return StreamOutcome(by, f"closed with {code}", duration, self.violations, self.chunk_warnings)
        reason = "callended" if sender.cancelled() else sender.result()
        reason, by = self._stop_reason or (reason, "caller")
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(protocol.exotel_stop_frame(self._next_seq(), self.spec.stream_sid,
                             call_sid=self.spec.call_sid, account_sid=self.spec.account_sid,
                             reason=reason), "stop", reason=reason)
        await self._ws.close(CloseCode.NORMAL)
        receiver.cancel()
        self._event("ws", action="close", code=int(CloseCode.NORMAL), by=by)
        return StreamOutcome(by, reason, duration, self.violations, self.chunk_warnings)

    # --- Exotel -> bot -----------------------------------------------------------------------

    def _start_frame(self) -> str:
        spec = self.spec
        return protocol.exotel_start_frame(self._next_seq(), stream_sid=spec.stream_sid,
                                           call_sid=spec.call_sid, account_sid=spec.account_sid,
                                           from_=spec.from_, to=spec.to,
                                           custom_parameters=self.custom_parameters, sample_rate=self.rate,
                                           encoding=spec.encoding)

    async def _send_caller(self) -> str:
        """Stream the caller; the stop reason when the caller is done, "" if the socket closed first."""
        with contextlib.suppress(websockets.ConnectionClosed):
            return await self._stream_caller()
        return ""

    async def _stream_caller(self) -> str:
        """Caller audio, one frame per `frame_ms`, and DTMF at the script's times."""
        spec, frame_s = self.spec, self.config.frame_ms / 1000
        frame_bytes = int(bytes_per_ms(self.rate) * self.config.frame_ms)
        audio = render(spec.script, self.rate, spec.seed, self.config.speech_dbfs)
        lead = int((self._t0 - spec.answered_at) * self.rate) * 2  # caller audio before the stream opened
        # Reference: dtmf reaches the bot on the VoiceBot (bidirectional) applet only.
        dtmf = deque(sorted((s for s in spec.script if s.dtmf and spec.bidirectional), key=lambda s: s.at))
        session_end = self._t0 + self.config.max_session_seconds
        chunk = 0
        while True:
            now = self._loop.time()
            if spec.hangup_at is not None and now >= spec.hangup_at:
                return "callended"
            if now >= session_end:
                self._event("limit", limit="session", seconds=self.config.max_session_seconds)
            if now >= session_end or (spec.time_limit_at is not None and now >= spec.time_limit_at):
                self._stop_reason = ("stopped", "system")
                return "stopped"
            while dtmf and spec.answered_at + dtmf[0].at <= now:
                step = dtmf.popleft()
                await self._send(protocol.exotel_dtmf_frame(self._next_seq(), spec.stream_sid, step.dtmf,
                                                            step.duration_ms), "dtmf", digit=step.dtmf)
            due = self._t0 + (chunk + 1) * frame_s  # a frame is sent once its 100 ms have been heard
            if due > now:
                await asyncio.sleep(due - now)
                continue
            offset = lead + chunk * frame_bytes
            pcm = audio[offset:offset + frame_bytes].ljust(frame_bytes, b"\0")
            chunk += 1
            self.recording.write("caller", (chunk - 1) * frame_s, pcm)
            payload = pcm_to_mulaw(pcm) if self.width == 1 else pcm
            await self._send(protocol.exotel_media_frame(self._next_seq(), spec.stream_sid, chunk,
                                                         chunk * self.config.frame_ms, payload),
                             "media", bytes=len(payload), chunk=chunk)

    # --- bot -> Exotel -----------------------------------------------------------------------

    async def _receive(self) -> None:
        assert self._ws
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self._ws:
                await self._handle(message)

    async def _handle(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._frame_in("binary", len(message))
            return await self._violation("binary frame; frames are JSON text", CloseCode.UNSUPPORTED_DATA)
        try:
            event = protocol.parse_bot_frame(message, self.width)
        except protocol.ProtocolError as exc:
            self._frame_in("invalid", len(message))
            return await self._violation(str(exc), exc.close_code)
        if isinstance(event, protocol.Unknown):
            self._frame_in(event.event, len(message))
            return await self._violation(f"unknown event {event.event!r}", CloseCode.PROTOCOL_ERROR)
        if isinstance(event, protocol.BotMedia):
            self._frame_in("media", len(message), bytes=len(event.payload))
        elif isinstance(event, protocol.BotMark):
            self._frame_in("mark", len(message), name=event.name)
        else:
            self._frame_in("clear", len(message))
        if event.stream_sid and event.stream_sid != self.spec.stream_sid:
            return await self._violation(f"stream_sid {event.stream_sid!r} is not {self.spec.stream_sid!r}",
                                         CloseCode.POLICY_VIOLATION)
        if not self.spec.bidirectional:
            name = type(event).__name__.removeprefix("Bot").lower()
            return await self._violation(f"{name} on a unidirectional stream, which is receive-only",
                                         CloseCode.POLICY_VIOLATION)
        if isinstance(event, protocol.BotMedia):
            await self._accept_media(mulaw_to_pcm(event.payload) if self.width == 1 else event.payload)
        elif isinstance(event, protocol.BotMark):
            self._enqueue("mark", event.name)
        else:
            dropped = [item for kind, item, _ in self._queue if kind == "mark"]
            chunks = sum(1 for kind, _, _ in self._queue if kind == "audio")
            self._event("clear", dropped_chunks=chunks, dropped_marks=dropped)
            self._queue.clear()

    async def _accept_media(self, pcm: bytes) -> None:
        problem = protocol.chunk_problem(len(pcm))
        if problem and self.strict:
            return await self._violation(*problem)
        ahead = self.queued_seconds()
        if ahead > self.config.ahead_limit_seconds:
            await self._violation(f"audio {ahead:.2f}s ahead of real time (limit "
                                  f"{self.config.ahead_limit_seconds}s)", CloseCode.POLICY_VIOLATION)
        if problem:
            self._play_degraded(pcm, problem[0])
        else:
            self._enqueue("audio", pcm)

    def _play_degraded(self, pcm: bytes, reason: str) -> None:
        """Queue a chunk that breaks the size rules with the effects the field notes describe."""
        self.chunk_warnings += 1
        effects = []
        if len(pcm) > CHUNK_MAX:
            effects.append("timed out, not played")
        else:
            # Less buffered than one legal chunk holds: nothing absorbs network jitter.
            if len(pcm) < CHUNK_MIN and self.queued_seconds() < CHUNK_MIN / (self.rate * 2):
                late = round(self._jitter.uniform(0, JITTER_MAX_SECONDS), 4)
                self._enqueue("gap", late)
                effects.append(f"jitter: started {late * 1000:.1f} ms late")
            self._enqueue("audio", pcm)
            if len(pcm) % CHUNK_MULTIPLE:
                self._enqueue("gap", GAP_SECONDS)
                effects.append(f"{GAP_SECONDS * 1000:.0f} ms gap after it")
        if self.width == 1:
            reason += " (μ-law, counted as 16-bit PCM)"
        self._event("chunk_warning", reason=reason, effects=effects)

    def queued_seconds(self) -> float:
        """Audio received but not yet played: the part still playing plus everything queued."""
        playing = max(0.0, self._playing_until - self._loop.time())
        return playing + sum(self._duration(kind, item) for kind, item, _ in self._queue)

    def _duration(self, kind: str, item: bytes | str | float) -> float:
        if kind == "audio":
            assert isinstance(item, bytes)
            return len(item) / (self.rate * 2)
        return float(item) if kind == "gap" else 0.0

    def _enqueue(self, kind: str, item: bytes | str | float) -> None:
        self._queue.append((kind, item, self._loop.time()))
        self._queued.set()

    async def _play(self) -> None:
        """Play queued audio in real time; return each mark when everything before it has played."""
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._play_queue()

    async def _play_queue(self) -> None:
        while True:
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            wait = self._playing_until - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # the chunk playing now cannot be cleared; look again after
                continue
            kind, item, arrived = self._queue.popleft()
            if kind == "mark":
                await self._send(protocol.exotel_mark_frame(self._next_seq(), self.spec.stream_sid, str(item)),
                                 "mark", name=item)
                continue
            # Back to back with what played before, unless it arrived after that ended (timer
            # lateness in waking up here is not a gap the caller hears).
            start = max(arrived, self._playing_until)
            if kind == "gap":
                self._playing_until = start + self._duration(kind, item)
                continue
            assert isinstance(item, bytes)
            self.recording.write("bot", start - self._t0, item)
            self._playing_until = start + len(item) / (self.rate * 2)
            if self._on_bot_audio:
                self._on_bot_audio()

    # --- logging -----------------------------------------------------------------------------

    async def _violation(self, reason: str, code: CloseCode) -> None:
        self.violations += 1
        self._event("violation", reason=reason, code=int(code), strict=self.strict)
        if self.strict and self._ws:
            self._closed_by_us = True
            await self._ws.close(code, reason[:120])

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _send(self, frame: str, event: str, **details: object) -> None:
        assert self._ws
        await self._ws.send(frame)
        self._event("frame", dir="sent", event=event, t=round(self._loop.time() - self._t0, 4),
                    size=len(frame), **details)

    def _frame_in(self, event: str, size: int, **details: object) -> None:
        self._event("frame", dir="received", event=event, t=round(self._loop.time() - self._t0, 4),
                    size=size, **details)

    def _event(self, kind: str, **fields: object) -> None:
        self.log.write(kind, call_sid=self.spec.call_sid, stream_sid=self.spec.stream_sid, **fields)
