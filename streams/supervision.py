"""Live supervision of a call from the dashboard: listen, whisper to the bot, take over, hand back.

A supervisor's browser talks to `SuperviseConsumer` (`/live/calls/<call id>`), which may run in any
stream-server process; the call's stream runs in one of them. Everything between the two crosses
the channel layer (Redis in production), so no process needs another's memory:

- Control, consumer -> stream: each process has one channel (`Switchboard`), added to the group
  `supervise.call.<call id>` of every call it streams; a message to that group reaches the one
  process that holds the call, which hands it to that stream's `Supervision`.
- Audio and state, stream -> consumers: the group `supervise.listen.<call id>`, which every consumer
  of the call joins. A stream sends audio only while the call has listeners (counted in the cache,
  `supervise.listeners.<call id>`, looked at most once a second), so unwatched calls pay nothing.
- A supervisor may arrive before the stream is ready to hear them (its join then reaches no one): a
  stream that opens on a call with listeners says so ({"type": "supervise.opened"}) and each of
  them joins again. A stream counts a consumer's joins once.

Control messages ({"type": "supervise.control", "call": id, "action": …, "channel": the consumer's
channel, "by": the supervisor's e-mail, "user": their id}): `join` (a supervisor listens), `whisper`
(`text`, and `step`: a script step to jump to), `take_over`, `audio` (`pcm`: the supervisor's
microphone, at the stream's rate, from the one who took over), `hand_back`, `leave` (the consumer
closed; a take-over it held is handed back).

To the browser: binary frames of audio, `[track u8][0][plays_in_ms u16 LE][16-bit LE PCM…]`, track 0
the caller and 1 the line to the caller (the bot, or the supervisor who took over); `plays_in_ms` is
how far ahead of the caller hearing it the line's audio was sent. And JSON state messages:
    {"type": "state", "rate": 8000, "bot": "script", "holder": "ann@…" or "", "stream": 41}
    {"type": "done", "action": "whisper"} or {"type": "refused", "action": "take_over", "reason": "…"}
    {"type": "ended"}: the stream stopped

Every join, whisper, take-over and hand-back is stored as an `Intervention` (with where it falls in
the recording) and published on the campaign's live feed. A take-over clears the bot's pending audio
(Exotel's `clear`) and mutes it: the runtime drops the bot's audio, marks and clears and holds its
hang-up until the hand-back; the supervisor's audio goes out as the bot's would and is recorded on
the same track.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache

from exotel.audio import bytes_per_ms
from streams.playback import UNPACED

if TYPE_CHECKING:
    from streams.runtime import Stream

log = logging.getLogger(__name__)

CALLER, LINE = 0, 1  # audio tracks sent to listeners
CHECK_EVERY = 1.0  # seconds between looks at a call's listener count
MAX_QUEUED = 50  # audio messages waiting for the channel layer (a few seconds); more are dropped
WRITES_WAIT = 10  # seconds a closing stream waits for its interventions to be stored
WHISPER_MAX = 500
ACTIONS = {"join", "whisper", "take_over", "audio", "hand_back", "leave"}


def control_group(call_id: int) -> str:
    return f"supervise.call.{call_id}"


def audience_group(call_id: int) -> str:
    return f"supervise.listen.{call_id}"


def listeners_key(call_id: int) -> str:
    return f"supervise.listeners.{call_id}"


def audio_frame(track: int, pcm: bytes, plays_in_ms: int = 0) -> bytes:
    return struct.pack("<BBH", track, 0, max(0, min(plays_in_ms, 65535))) + pcm


async def count_listener(call_id: int, delta: int) -> None:
    key = listeners_key(call_id)
    try:
        if delta > 0:
            await cache.aadd(key, 0, timeout=None)
            await cache.aincr(key)
        else:
            with contextlib.suppress(ValueError):  # the cache lost the key: nothing to undo
                await cache.adecr(key)
    except Exception as exc:
        log.warning("supervision of call %s: could not count a listener (%s)", call_id, exc)


class Switchboard:
    """This process's one channel for the control of every call it streams (one receive loop, not
    one per call)."""

    def __init__(self) -> None:
        self._streams: dict[int, Stream] = {}
        self._channel = ""
        self._task: asyncio.Task | None = None

    async def attach(self, stream: Stream) -> None:
        call_id = stream.binding.call_id
        self._streams[call_id] = stream
        await get_channel_layer().group_add(control_group(call_id), await self._listening())

    async def detach(self, stream: Stream) -> None:
        call_id = stream.binding.call_id
        if self._streams.get(call_id) is stream:
            del self._streams[call_id]
            await get_channel_layer().group_discard(control_group(call_id), self._channel)

    async def _listening(self) -> str:
        # Started on this loop at the first call (a test suite runs many loops: one board each time).
        if self._task is None or self._task.done() or self._task.get_loop() is not asyncio.get_running_loop():
            # The layer's default prefix: channels_redis receives all of a process's channels of one
            # prefix in one loop, and channels of two prefixes take turns (seconds each).
            self._channel = await get_channel_layer().new_channel()
            self._task = asyncio.ensure_future(self._receive(self._channel))
        return self._channel

    async def _receive(self, channel: str) -> None:
        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: supervision pauses, the calls go on
                log.warning("supervision: cannot receive control messages (%s); retrying", exc)
                await asyncio.sleep(1)
                continue
            stream = self._streams.get(message.get("call"))
            if stream is not None and not stream.finished:
                try:
                    await stream.supervision.handle(message)
                except Exception:
                    log.exception("supervision of call %s: %s failed", message.get("call"), message.get("action"))


switchboard = Switchboard()


class Supervision:
    """One stream's side of supervision: its listeners' audio, and who holds the line."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.call_id = stream.binding.call_id
        self.holder = ""  # the channel of the supervisor who took over, or ""
        self.holder_by = ""
        self._handed_back = asyncio.Event()
        self._handed_back.set()
        self._listened = False
        self._checked_at = -CHECK_EVERY
        self._audience: set[str] = set()  # the channels of the consumers that joined
        self._queue: asyncio.Queue[dict] = asyncio.Queue()
        self._sender: asyncio.Task | None = None
        self._writes: set[asyncio.Task] = set()  # interventions on their way to the database
        self._attached = False

    @property
    def enabled(self) -> bool:
        return self.call_id is not None and not self.stream.binding.receive_only

    @property
    def holds_line(self) -> bool:
        """A supervisor took over: the bot is muted."""
        return bool(self.holder)

    async def handed_back(self) -> None:
        await self._handed_back.wait()

    # --- the stream's ends ------------------------------------------------------------------------

    async def open(self) -> None:
        if not self.enabled:
            return
        try:
            await switchboard.attach(self.stream)
        except Exception as exc:
            log.warning("call %s cannot be supervised: %s", self.call_id, exc)
            return
        self._attached = True
        await self._look()
        if self._listened:  # supervisors who came first: their joins went to no one
            try:
                await get_channel_layer().group_send(audience_group(self.call_id), {"type": "supervise.opened"})
            except Exception as exc:
                log.warning("call %s: its first supervisors could not be told it opened (%s)", self.call_id, exc)

    async def close(self) -> None:
        if self._writes:  # a record, unlike the bot's work, outlives the call (a whisper may end it)
            await asyncio.wait(self._writes, timeout=WRITES_WAIT)
        if not self._attached:
            return
        self._attached = False
        self._handed_back.set()
        try:
            await switchboard.detach(self.stream)
            await get_channel_layer().group_send(audience_group(self.call_id),
                                                 {"type": "supervise.state", "data": {"type": "ended"}})
        except Exception as exc:
            log.warning("call %s: supervision could not close (%s)", self.call_id, exc)

    # --- audio to listeners -----------------------------------------------------------------------

    def tap(self, track: int, pcm: bytes, plays_in_ms: int = 0) -> None:
        """Audio of the call for its listeners, if it has any; never waits."""
        if not self._attached or not self._is_listened():
            return
        if self._queue.qsize() >= MAX_QUEUED:
            return  # the layer is behind: listeners hear a gap rather than a growing delay
        self._queue.put_nowait({"type": "supervise.audio", "audio": audio_frame(track, pcm, plays_in_ms)})
        if self._sender is None or self._sender.done():
            self._sender = self.stream.spawn(self._send_queued())

    def _is_listened(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= CHECK_EVERY:
            self._checked_at = now
            self.stream.spawn(self._look())
        return self._listened

    async def _look(self) -> None:
        asked_at = self._checked_at
        try:
            listened = (await cache.aget(listeners_key(self.call_id), 0) or 0) > 0
        except Exception as exc:
            log.warning("call %s: cannot tell who listens (%s); quiet for now", self.call_id, exc)
            listened = False
        if self._checked_at == asked_at:  # a join meanwhile is newer news than this answer
            self._listened = listened

    async def _send_queued(self) -> None:
        # One sender per stream keeps the audio in order; a failure loses audio, never the call.
        layer, group = get_channel_layer(), audience_group(self.call_id)
        while not self._queue.empty():
            message = self._queue.get_nowait()
            try:
                await layer.group_send(group, message)
            except Exception as exc:
                log.warning("call %s: could not send audio to listeners (%s)", self.call_id, exc)

    async def _tell(self, data: dict) -> None:
        await get_channel_layer().group_send(audience_group(self.call_id), {"type": "supervise.state", "data": data})

    async def _state(self) -> None:
        await self._tell({"type": "state", "rate": self.stream.rate, "bot": self.stream.binding.bot_kind,
                          "holder": self.holder_by, "stream": self.stream.session_id or 0})

    # --- control ----------------------------------------------------------------------------------

    async def handle(self, message: dict) -> None:
        action = message.get("action")
        if action == "audio":  # the hot path of a take-over: ten messages a second
            if message.get("channel") == self.holder and self.holder:
                await self.stream.outbox.stream(message["pcm"], lead_ms=UNPACED)
            return
        if action == "join":
            self._listened, self._checked_at = True, time.monotonic()
            if message.get("channel") not in self._audience:
                self._audience.add(message.get("channel"))
                await self._record("listen", message)
            await self._state()
        elif action == "whisper":
            await self._whisper(message)
        elif action == "take_over":
            await self._take_over(message)
        elif action in ("hand_back", "leave"):
            if action == "leave":
                self._audience.discard(message.get("channel"))
            if self.holder and message.get("channel") == self.holder:
                await self._hand_back(message)
            elif action == "hand_back":
                await self._refuse(action, "You do not hold the call.")

    async def _whisper(self, message: dict) -> None:
        text, step = str(message.get("text", ""))[:WHISPER_MAX].strip(), str(message.get("step", "")).strip()
        if not text and not step:
            await self._refuse("whisper", "Type a hint or choose a step.")
            return
        try:
            if self.stream.bot:
                await self.stream.bot.on_whisper(text, step)
        except ValueError as exc:
            await self._refuse("whisper", str(exc))
            return
        await self._record("whisper", message, text=text, step=step)
        await self._tell({"type": "done", "action": "whisper"})

    async def _take_over(self, message: dict) -> None:
        if self.holder:
            await self._refuse("take_over", f"{self.holder_by} holds the call.")
            return
        if self.stream.outbox is None:
            await self._refuse("take_over", "This stream cannot send audio.")
            return
        self.holder, self.holder_by = message["channel"], message.get("by", "")
        self._handed_back.clear()
        await self.stream.outbox.clear()  # the bot's pending audio, here and at Exotel
        await self.stream.feed.event("clear")
        if self.stream.bot:
            await self.stream.bot.on_take_over()
        await self._record("take_over", message)
        await self._state()

    async def _hand_back(self, message: dict) -> None:
        self.holder = self.holder_by = ""
        self._handed_back.set()
        if self.stream.bot:
            await self.stream.bot.on_hand_back()
        await self._record("hand_back", message)
        await self._state()

    async def _refuse(self, action: str, reason: str) -> None:
        await self._tell({"type": "refused", "action": action, "reason": reason})

    async def _record(self, kind: str, message: dict, **detail: str) -> None:
        stream = self.stream
        if stream.session_id is not None:  # registered before any wait, so the stream's close awaits it
            recorder = stream.recorder
            at_ms = round(recorder.caller.bytes / bytes_per_ms(stream.rate)) if recorder else None
            from streams import services  # the database side; imported late (it imports the runtime)

            record = database_sync_to_async(services.record_intervention, thread_sensitive=False)
            write = asyncio.ensure_future(_logged(record(stream, kind, user_id=message.get("user"),
                                                         by=message.get("by", ""), recording_ms=at_ms, **detail),
                                                  self.call_id))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
        await stream.feed.event("supervisor", kind)


async def _logged(work, call_id: int) -> None:
    try:
        await work
    except Exception:  # the database's trouble must not end the call
        log.exception("call %s: an intervention could not be recorded", call_id)
