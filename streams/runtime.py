"""The bot runtime: one `Stream` per socket turns Exotel's frames into bot callbacks and bot actions
into frames, and keeps everything the session row records.

A bot (`streams.bots`) receives `on_start` (once the session is recorded and the prompts loaded;
audio and DTMF may come before it), `on_audio(pcm)`, `on_dtmf(digit)`, `on_mark(name)` and
`on_stop()`, and, when a supervisor steps in (`streams.supervision`), `on_whisper(text, step)`,
`on_take_over()` and `on_hand_back()`; it acts through its stream: `play(pcm, rate)` or `play_prompt(name)` (whole pieces),
`stream_audio(pcm)` (continuous audio), `mark(name)`, `clear()`, `hang_up()` (closing the socket:
the protocol has no hang-up event) and `opt_out(source, reason)` (the caller asked never to be
called again). Chunking, pacing and marks are `streams.playback`'s job,
recording `streams.recorder`'s, the live view `streams.live`'s, supervision `streams.supervision`'s:
while a supervisor holds the line the bot's audio, marks and clears are dropped and its hang-up
waits for the hand-back; answering machines `streams.machine`'s (which may `mute()` the bot: it then
hears and says nothing more, and its hang-up is dropped: the machine watch ends the call).

The media path touches neither the ORM nor a thread: the database is reached only through the
`started` and `opted_out` hooks (run beside the media path) and by the consumer after `finish()`.

Bad input: every bad frame is logged (the first few per stream) and counted. Single bad frames are
dropped and the stream goes on; the stream closes with the frame's code from the close-code table
when it cannot continue: a broken `start`, a `start` from an account the binding refuses (1008), or
more than `MAX_BAD_FRAMES` bad frames. Unknown events are counted but never close a stream (field
notes). A message over the server's size limit never gets here: the server closes it
(`config.server`) and `finish` records it as "frame_too_big".

Closing: `end(reason, code)` takes a code of the reference's table and sends its wire code
(`exotel.protocol.wire_code`: 1000, or 4000 + the last three digits); `close_code` is always the code
that went on the wire, ours or the peer's. A bug in a bot or here ends that call only ("server_error",
4011); the peer hanging up as we send is the consumer's to absorb, not an error.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from exotel import protocol
from exotel.audio import resample
from exotel.protocol import CloseCode, ProtocolError, wire_code
from streams.live import Feed
from streams.machine import MachineWatch
from streams.playback import STREAM_LEAD_MS, UNPACED, Outbox
from streams.recorder import Recorder
from streams.supervision import CALLER, LINE, Supervision

log = logging.getLogger(__name__)

MAX_BAD_FRAMES = 20
LOGGED_BAD_FRAMES = 5
MAX_MARKS_KEPT = 200


@dataclass
class Binding:
    """What a socket is bound to, loaded once at the handshake (plain data, no ORM objects)."""

    workspace_id: int
    bot_kind: str  # echo, script, relay; "" on a receive-only stream
    call_id: int | None = None  # None on a workspace's test endpoint
    campaign_id: int | None = None
    phone: str = ""
    bot_settings: dict = field(default_factory=dict)
    relay_token: str = ""  # sent to the relay bot as a bearer token
    variables: dict = field(default_factory=dict)  # the contact's, with name and phone
    receive_only: bool = False
    machine_detection: bool = False  # listen for answering machines (streams.machine)
    answered_at: datetime.datetime | None = None  # as the call's row had it at the handshake
    on_machine: str = ""  # Campaign.OnMachine
    voicemail_prompt: str = ""
    account_sids: frozenset[str] = frozenset()  # the workspace's Exotel accounts
    other_account_sids: frozenset[str] = frozenset()  # other workspaces' accounts (test endpoint only)

    @property
    def record(self) -> bool:
        return self.call_id is not None

    def may_start(self, account_sid: str) -> bool:
        """A call's stream starts only from its workspace's accounts; the test endpoint from any
        account but another workspace's (any AgentStream client may use it to check a tunnel)."""
        if account_sid in self.account_sids:
            return True
        return self.call_id is None and account_sid not in self.other_account_sids


@dataclass(frozen=True)
class OptOut:
    """The caller asked never to be called again: where the wish came from (a DoNotCall.Source) and how."""

    source: str
    reason: str


@dataclass
class Started:
    """What the `started` hook returns: the session row and the prompts the bot may play."""

    session_id: int
    started_at: datetime.datetime
    prompts: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # name -> (pcm, rate)


class Bot:
    """The bot interface; every callback may be left as is."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.disposition = ""
        self.variables: dict[str, Any] = {}
        self.transcript: list[list[str]] = []  # [speaker, text], as the relay's bot reports them
        self.summary = ""

    async def on_start(self) -> None: ...
    async def on_audio(self, pcm: bytes) -> None: ...
    async def on_dtmf(self, digit: str) -> None: ...
    async def on_mark(self, name: str) -> None: ...
    async def on_stop(self) -> None: ...
    async def on_whisper(self, text: str, step: str) -> None:
        """A supervisor's hint; raise ValueError (its text shown to them) for one this bot cannot take."""
        if step:
            raise ValueError("This bot has no steps to jump to.")

    async def on_take_over(self) -> None: ...
    async def on_hand_back(self) -> None: ...


StartedHook = Callable[[protocol.Start], Awaitable[Started]]
OptedOutHook = Callable[[int, OptOut], Awaitable[None]]  # (call id, the opt-out): records it

# How a close we did not ask for reads, by its code: a lost connection, or the server refusing a message
# over its size limit (config.server closes it with this code).
CLOSED_BY_PEER_OR_SERVER = {CloseCode.ABNORMAL: "dropped", wire_code(CloseCode.MESSAGE_TOO_BIG): "frame_too_big"}


class Stream:
    def __init__(self, binding: Binding, *, send: Callable[[str], Awaitable[None]],
                 close: Callable[[int], Awaitable[None]], started: StartedHook, opted_out: OptedOutHook,
                 make_bot: Callable[[Stream], Bot | None]) -> None:
        self.binding = binding
        self._send, self._close, self._started, self._opted_out = send, close, started, opted_out
        self.bot = make_bot(self)
        self.feed = Feed(campaign_id=binding.campaign_id, call_id=binding.call_id, phone=binding.phone,
                         bot=binding.bot_kind)
        self.start: protocol.Start | None = None
        self.sid = ""
        self.rate = 8000
        self.session_id: int | None = None
        self.started_at: datetime.datetime | None = None
        self.prompts: dict[str, tuple[bytes, int]] = {}
        self.outbox: Outbox | None = None
        self.recorder: Recorder | None = None
        self.frames_in = self.bytes_in = self.bad_frames = 0
        self.dtmf = ""
        self.marks: list[dict] = []
        self.barge_in_ms: list[int] = []
        # Time to first audio: from the `start` (our clock) to the first audio frame sent to the caller,
        # and from the answer (the call's, if it came before the start) to that frame.
        self.first_audio_ms: int | None = None
        self.answer_to_first_audio_ms: int | None = None
        self._start_clock = (0.0, datetime.datetime.min)  # (monotonic, wall) at `start`
        self.opted_out: OptOut | None = None
        self.machine: MachineWatch | None = None
        self.muted = False  # the bot neither hears nor speaks (a machine answered)
        self.stop_reason = ""
        self.close_code: int | None = None
        self.closed = self.finished = False
        # The reference's 60-minute session limit (a setting, so tests can make it short).
        self._limit = asyncio.get_running_loop().call_later(settings.STREAM_MAX_SECONDS, self._time_up)
        self._tasks: set[asyncio.Task] = set()
        self._opening: asyncio.Task | None = None
        self.supervision = Supervision(self)

    # --- frames in ------------------------------------------------------------------------------

    async def receive(self, text: str | None) -> None:
        """One WebSocket message: its text, or None for a binary one."""
        if self.closed:
            return
        try:
            if text is None:
                await self._bad("binary frame; AgentStream frames are JSON text", CloseCode.UNSUPPORTED_DATA)
            else:
                await self._handle(text)
        except Exception:
            # A bug in a bot or here ends this call only, with the reference's "server error".
            log.exception("stream %s failed", self.sid or self.binding.call_id)
            await self.end("server_error", CloseCode.INTERNAL_ERROR)

    async def _handle(self, text: str) -> None:
        try:
            event = protocol.parse_frame(text)
        except ProtocolError as exc:
            await self._bad(str(exc), exc.close_code, fatal=self.start is None and _event_of(text) == "start")
            return
        if isinstance(event, protocol.Media):  # the hot path: about ten frames a second per call
            if self.start is None:
                await self._bad("media before start", CloseCode.PROTOCOL_ERROR)
            elif event.stream_sid and event.stream_sid != self.sid:
                await self._bad(f"media for stream {event.stream_sid!r}", CloseCode.POLICY_VIOLATION)
            else:
                self.frames_in += 1
                self.bytes_in += len(event.payload)
                if self.recorder:
                    self.recorder.caller_audio(event.payload)
                self.supervision.tap(CALLER, event.payload)
                await self.feed.level(event.payload)
                if self.machine and self.machine.listening:
                    self.machine.hear(event.payload)
                if self.bot and not self.muted:
                    await self.bot.on_audio(event.payload)
            return
        if isinstance(event, protocol.Start):
            await self._on_start(event)
        elif isinstance(event, protocol.Connected):
            await self.feed.state("connected")
        elif isinstance(event, protocol.Unknown):
            self.bad_frames += 1
            log.info("stream %s: ignored unknown event %r", self.sid, event.event)
        elif self.start is None:
            await self._bad(f"{type(event).__name__.lower()} before start", CloseCode.PROTOCOL_ERROR)
        elif event.stream_sid and event.stream_sid != self.sid:
            await self._bad(f"{type(event).__name__.lower()} for stream {event.stream_sid!r}",
                            CloseCode.POLICY_VIOLATION)
        elif isinstance(event, protocol.Dtmf):
            await self._on_dtmf(event.digit)
        elif isinstance(event, protocol.Mark):
            await self._on_mark(event.name)
        elif isinstance(event, protocol.Stop):
            await self.end(event.reason or "stopped", CloseCode.NORMAL)

    async def _on_start(self, start: protocol.Start) -> None:
        if self.start is not None:
            await self._bad("a second start", CloseCode.PROTOCOL_ERROR)
            return
        if not self.binding.may_start(start.account_sid):
            # A token alone must not let a stream of one tenant's account land in another's workspace.
            log.warning("stream %s refused: account %r may not start it", start.stream_sid, start.account_sid)
            await self.end("wrong_account", CloseCode.POLICY_VIOLATION)
            return
        self.start, self.sid, self.rate = start, start.stream_sid, start.sample_rate
        self._start_clock = (time.monotonic(), datetime.datetime.now(datetime.UTC))
        if not self.binding.receive_only:
            self.outbox = Outbox(self._send, self.sid, self.rate, on_audio_sent=self._bot_audio_sent)
            if self.binding.machine_detection and self.binding.call_id is not None:
                self.machine = MachineWatch(self)
        if self.binding.record:
            self.recorder = Recorder(self.rate, bot_track=not self.binding.receive_only)
        # The session row and the prompts are database and disk work: done beside the media path, so
        # frames arriving meanwhile are recorded and echoed at once instead of queueing behind it.
        self._opening = self.spawn(self._open(start))

    async def _open(self, start: protocol.Start) -> None:
        started = await self._started(start)
        self.session_id, self.started_at, self.prompts = started.session_id, started.started_at, started.prompts
        self.feed.stream_id = started.session_id
        await self.feed.state("started")
        if not self.finished:
            await self.supervision.open()
        if self.bot and not self.finished:  # the socket may have gone while the row was written
            await self.bot.on_start()

    async def _on_dtmf(self, digit: str) -> None:
        self.dtmf = (self.dtmf + digit)[-200:]
        await self.feed.event("dtmf", digit)
        if self.bot and not self.muted:
            await self.bot.on_dtmf(digit)

    async def _on_mark(self, name: str) -> None:
        if self.outbox is None or not self.outbox.mark_returned(name):
            log.info("stream %s: mark %r was not sent by us (or was cleared)", self.sid, name)
            return
        if len(self.marks) < MAX_MARKS_KEPT:
            self.marks.append({"name": name, "heard_ms": self.outbox.heard_ms})
        await self.feed.event("mark", name)
        if self.machine and self.machine.mark_returned(name):
            return
        if self.bot and not self.muted:
            await self.bot.on_mark(name)

    async def _bad(self, reason: str, code: int, *, fatal: bool = False) -> None:
        self.bad_frames += 1
        if self.bad_frames <= LOGGED_BAD_FRAMES or fatal:
            log.warning("stream %s (call %s): bad frame: %s", self.sid, self.binding.call_id, reason)
        await self.feed.event("bad_frame", reason)
        if fatal:
            await self.end("protocol_error", code)
        elif self.bad_frames > MAX_BAD_FRAMES:
            await self.end("bad_frames", code)

    # --- actions for bots -----------------------------------------------------------------------

    def _outbox(self) -> Outbox:
        if self.outbox is None:
            raise RuntimeError("this stream cannot send: it is receive-only or has not started")
        return self.outbox

    @property
    def heard_ms(self) -> int:
        """Bot audio the caller has certainly heard (up to the last returned mark)."""
        return self.outbox.heard_ms if self.outbox else 0

    async def play(self, pcm: bytes, rate: int | None = None) -> None:
        if self.supervision.holds_line or self.muted:
            return
        await self._outbox().play(resample(pcm, rate or self.rate, self.rate))

    async def play_prompt(self, name: str) -> None:
        pcm, rate = self.prompts[name]
        if self.supervision.holds_line or self.muted:
            return
        await self.feed.event("say", name)
        await self.play(pcm, rate)

    async def stream_audio(self, pcm: bytes, *, paced: bool = True) -> None:
        """Continuous audio; `paced=False` only for audio Exotel already paced (see streams.playback)."""
        if self.supervision.holds_line or self.muted:
            return
        await self._outbox().stream(pcm, lead_ms=STREAM_LEAD_MS if paced else UNPACED)

    async def mark(self, name: str) -> None:
        if self.supervision.holds_line or self.muted:
            return
        await self._outbox().mark(name)

    async def mute(self) -> None:
        """Silence the bot for good: its pending audio is cleared, and it hears and says nothing more."""
        self.muted = True
        if self.outbox:
            await self.outbox.clear()
        await self.feed.event("mute")

    async def clear(self) -> None:
        if self.supervision.holds_line:
            return  # cleared at the take-over; what goes out now is the supervisor's
        await self._outbox().clear()
        await self.feed.event("clear")

    async def hang_up(self) -> None:
        if self.muted:
            return  # a machine answered: streams.machine ends the call, once its message is left if one is due
        await self.supervision.handed_back()  # a muted bot does not cut the supervisor off
        await self.feed.event("hangup")
        await self.end("hung_up", CloseCode.NORMAL)

    async def opt_out(self, source: str, reason: str) -> None:
        """Record at once, beside the media path, that the caller asked never to be called again: every
        campaign of the workspace skips the number from its next dial. The consumer records it again
        at the close (idempotent), so a write that fails here is not lost."""
        if self.opted_out is not None:
            return
        self.opted_out = OptOut(source, reason)
        await self.feed.event("opt_out", source)
        if self.binding.call_id is not None:
            self.spawn(self._record_opt_out(self.binding.call_id, self.opted_out))

    async def _record_opt_out(self, call_id: int, opted_out: OptOut) -> None:
        try:
            await self._opted_out(call_id, opted_out)
        except Exception:  # the database's trouble must not end the call; the close tries again
            log.exception("stream %s: the opt-out could not be recorded yet", self.sid)

    def _bot_audio_sent(self, pcm: bytes) -> None:
        if self.first_audio_ms is None:
            self._first_audio_sent()
        if self.recorder:
            self.recorder.bot_audio(pcm)
        self.supervision.tap(LINE, pcm, self.outbox.plays_in_ms(pcm))

    def _first_audio_sent(self) -> None:
        started, started_at = self._start_clock
        since_start = time.monotonic() - started
        answered_at = self.binding.answered_at
        # The answer as the call's row had it at the handshake (Legs: `leg_answered`); none yet: the start.
        before_start = max(0.0, (started_at - answered_at).total_seconds()) if answered_at else 0.0
        self.first_audio_ms = round(since_start * 1000)
        self.answer_to_first_audio_ms = round((before_start + since_start) * 1000)

    # --- the end --------------------------------------------------------------------------------

    def spawn(self, work: Awaitable[None]) -> asyncio.Task:
        """Run a bot's background work; it is cancelled when the stream finishes, and a failure in it
        ends this call ("server_error") instead of vanishing."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stream %s: bot task failed", self.sid, exc_info=task.exception())
            self.spawn(self.end("server_error", CloseCode.INTERNAL_ERROR))

    def _time_up(self) -> None:
        self.spawn(self.end("time_limit", CloseCode.NORMAL))

    async def end(self, reason: str, code: CloseCode) -> None:
        """Close the socket from our side with `code`'s wire code; `finish` follows when the server
        reports the close (within a second: the server drops a peer that does not answer)."""
        if self.closed:
            return
        self.closed = True
        self.stop_reason, self.close_code = reason, wire_code(code)
        await self._close(self.close_code)

    async def finish(self, code: int) -> None:
        """The socket is gone: stop the bot, close the recordings. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self._limit.cancel()
        if self._opening and not self._opening.done():
            # Let the session row be written (never cancel a thread mid-write), so the close can update it.
            await asyncio.wait([self._opening], timeout=30)
        for task in list(self._tasks):
            task.cancel()
        if not self.stop_reason:
            self.stop_reason = CLOSED_BY_PEER_OR_SERVER.get(code, "closed")
        if self.close_code is None:
            self.close_code = code
        if self.outbox:
            self.outbox.close()
        try:
            if self.bot and self.start is not None:
                await self.bot.on_stop()
        except Exception:
            log.exception("stream %s: the bot failed at its stop", self.sid)  # the record is kept all the same
        finally:
            if self.recorder:
                await self.recorder.finish()
            await self.supervision.close()
            await self.feed.state("stopped", reason=self.stop_reason)


def _event_of(text: str) -> str:
    """The event name of a frame that failed to parse (the rare path), or ""."""
    try:
        obj = json.loads(text)
    except ValueError:
        return ""
    return obj.get("event", "") if isinstance(obj, dict) else ""
