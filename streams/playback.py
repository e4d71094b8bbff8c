"""What the bot sends the caller: audio and marks, in order, legal and paced near real time.

Exotel plays what it receives and drops calls that get a whole prompt at once (field notes), so
audio leaves in legal chunks (`exotel.audio.Chunker`) no faster than it plays, keeping at most
`LEAD_MS` of audio queued at Exotel beyond the chunk in flight (`STREAM_LEAD_MS` for continuous
audio such as a relayed bot's, `UNPACED` for the echo of audio Exotel already paced). A mark
leaves right after the audio queued before it; when Exotel returns it, everything sent before it
has played, which is how `heard_ms` knows what the caller has actually heard.

Continuous audio waits for room once `BACKLOG_MS` of it is queued.

Sending is inline when nothing waits (an echo's chunk goes out on the frame that completed it,
with no task hop); only when the lead is full does one timer task drain the rest.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from exotel import protocol
from exotel.audio import Chunker, bytes_per_ms

LEAD_MS = 300  # a prompt: enough that playback never starves, little for `clear` to drop
# Continuous audio (echo, relay) comes from a real-time source already; a larger lead lets its
# jitter (a burst after a stall) pass instead of becoming a backlog that never drains. It stays
# well under what Exotel tolerates queued ahead (the simulator's limit: 2 s).
STREAM_LEAD_MS = 1000
# Audio that Exotel itself paced (the caller's own, echoed back) needs no pacing again: pacing it
# would turn any hiccup of ours into a backlog that never drains, since more keeps arriving in
# real time (bench/streams.py: latency then grew without bound once behind).
UNPACED = math.inf
# Continuous audio queued here, waiting for its turn: a source faster than real time (a relayed bot
# sending a whole answer at once) waits for room beyond it, so that memory stays bounded and the
# backpressure reaches the source. Prompts never wait (a bot must stay responsive to the caller).
BACKLOG_MS = 10_000
CHUNK_BYTES = protocol.CHUNK_MIN  # the smallest legal chunk: the least latency an echo can add


class Outbox:
    def __init__(self, send: Callable[[str], Awaitable[None]], stream_sid: str, rate: int,
                 *, on_audio_sent: Callable[[bytes], None] | None = None) -> None:
        self._send = send
        self._sid = stream_sid
        self._bytes_per_ms = bytes_per_ms(rate)
        self._chunker = Chunker(CHUNK_BYTES)
        self._queue: deque[tuple[str, bytes | str, float]] = deque()  # (kind, chunk or mark name, lead ms)
        self._plays_until = 0.0  # monotonic time at which the audio sent so far ends playing
        self._draining = False
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._on_audio_sent = on_audio_sent
        self._queued_bytes = 0  # audio in the queue
        self._room = asyncio.Event()
        self._room.set()
        self._pending_marks: dict[str, int] = {}  # mark name -> ms of audio sent before it
        self.sent_ms = 0
        self.heard_ms = 0
        self.frames_out = 0
        self.bytes_out = 0

    @property
    def idle(self) -> bool:
        """Nothing left to send (audio may still be playing at Exotel)."""
        return not self._queue and not self._chunker.pending

    async def stream(self, pcm: bytes, *, lead_ms: float = STREAM_LEAD_MS) -> None:
        """Continuous audio (echo, relay): sent as each legal chunk fills, tail kept for the next."""
        self._enqueue(self._chunker.feed(pcm), lead_ms)
        await self._drain()
        while self._queued_bytes > BACKLOG_MS * self._bytes_per_ms:
            self._room.clear()
            await self._room.wait()

    async def play(self, pcm: bytes) -> None:
        """A whole piece (a prompt): its tail is padded with silence to a legal chunk."""
        self._enqueue(self._chunker.feed(pcm) + self._chunker.flush(), LEAD_MS)
        await self._drain()

    async def mark(self, name: str) -> None:
        # A mark also ends a piece of streamed audio, so the tail before it is sent first.
        self._enqueue(self._chunker.flush(), LEAD_MS)
        self._queue.append(("mark", name, 0))
        await self._drain()

    async def clear(self) -> None:
        """Barge-in: forget unsent audio here and ask Exotel to drop what has not started playing."""
        self._forget_queue()
        self._chunker.clear()
        self._pending_marks.clear()  # Exotel drops the marks behind cleared audio too
        self._plays_until = time.monotonic()
        await self._send(protocol.clear_frame(self._sid))

    def plays_in_ms(self, chunk: bytes) -> int:
        """For the chunk just sent: how long until the caller hears its start."""
        ahead = self._plays_until - time.monotonic() - len(chunk) / self._bytes_per_ms / 1000
        return max(0, round(ahead * 1000))

    def mark_returned(self, name: str) -> bool:
        """Exotel says the audio before `name` has played. False for a mark we never sent."""
        sent_before = self._pending_marks.pop(name, None)
        if sent_before is None:
            return False
        self.heard_ms = max(self.heard_ms, sent_before)
        return True

    def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._task:
            self._task.cancel()
        self._forget_queue()

    def _enqueue(self, chunks: list[bytes], lead_ms: float) -> None:
        self._queue.extend(("audio", chunk, lead_ms) for chunk in chunks)
        self._queued_bytes += sum(map(len, chunks))

    def _forget_queue(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0
        self._room.set()

    async def _drain(self) -> None:
        if self._draining:
            return  # the coroutine already draining picks up what was just queued
        self._draining = True
        try:
            while self._queue:
                kind, item, lead_ms = self._queue[0]
                if kind == "audio":
                    now = time.monotonic()
                    ahead = self._plays_until - now
                    if ahead * 1000 > lead_ms:
                        self._schedule(ahead - lead_ms / 1000)
                        return
                    self._queue.popleft()
                    self._queued_bytes -= len(item)
                    if self._queued_bytes <= BACKLOG_MS * self._bytes_per_ms:
                        self._room.set()
                    duration = len(item) / self._bytes_per_ms / 1000
                    self._plays_until = max(now, self._plays_until) + duration
                    await self._send(protocol.media_frame(self._sid, item))
                    self._account(item)
                else:
                    self._queue.popleft()
                    self._pending_marks[item] = self.sent_ms
                    await self._send(protocol.mark_frame(self._sid, item))
        finally:
            self._draining = False

    def _account(self, chunk: bytes) -> None:
        self.frames_out += 1
        self.bytes_out += len(chunk)
        self.sent_ms += round(len(chunk) / self._bytes_per_ms)
        if self._on_audio_sent:
            self._on_audio_sent(chunk)

    def _schedule(self, delay: float) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._drain())  # held: tasks are weakly referenced
