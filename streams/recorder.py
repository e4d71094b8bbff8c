"""Recordings of a stream: the caller's audio and the bot's, each a mono 16-bit WAV.

Nothing here touches the disk on the event loop. Audio is gathered in memory and handed in blocks
of `BLOCK_BYTES` to the recorder's writer threads, which create the spool file, write it and, at the
end, give the WAV header its final sizes. The finished file then goes to Django's default storage
(`save_track`, with the rest of the session's end, in a thread), so a file system or object storage
is a matter of settings (`STORAGES`).

The bot track is kept aligned with the caller's: the time the bot said nothing is silence, left as
a hole in the spool file (a seek past its end reads back as zeros), so no silence is ever built in
memory. A track whose writer falls behind by `MAX_PENDING_BYTES` drops the audio beyond that (it
plays as silence, the timeline kept) rather than hold it without bound.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import default_storage

log = logging.getLogger(__name__)

BLOCK_BYTES = 32 * 1024  # 2 s of 8 kHz audio: a few hundred writes a second at 500 calls
MAX_PENDING_BYTES = 2 * 1024 * 1024  # a minute of 16 kHz audio waiting for the disk
_HEADER_BYTES = 44
_writers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="recorder")


def _wav_header(rate: int, data_bytes: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16,
        b"data", data_bytes,
    )


Block = list[tuple[int, bytearray]]  # (offset in the audio, pcm) pieces, in order


class Track:
    """One WAV: `bytes` of audio so far (silence included), on its way to a spool file at `path`."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.bytes = 0
        self.dropped = 0
        self.path: Path | None = None  # the writer makes the spool file with its first block
        self._file: BinaryIO | None = None  # the writer's alone
        self._pending: Block = []
        self._pending_bytes = 0
        self._writing: asyncio.Future | None = None

    def write(self, pcm: bytes) -> None:
        if self._pending_bytes + len(pcm) > MAX_PENDING_BYTES:
            if not self.dropped:
                log.warning("recording behind the disk: dropping audio (a %d Hz track)", self.rate)
            self.dropped += len(pcm)
        elif self._pending and self._pending[-1][0] + len(self._pending[-1][1]) == self.bytes:
            self._pending[-1][1].extend(pcm)
            self._pending_bytes += len(pcm)
        else:
            self._pending.append((self.bytes, bytearray(pcm)))
            self._pending_bytes += len(pcm)
        self.bytes += len(pcm)
        if self._pending_bytes >= BLOCK_BYTES:
            self._hand_over()

    def pad_to(self, size: int) -> None:
        """Silence up to `size` bytes: a hole that the next write or `finish` leaves behind it."""
        self.bytes = max(self.bytes, size)

    def _hand_over(self) -> None:
        if self._writing is not None:
            return  # one block in flight per track keeps its writes in order; `_written` sends the next
        block, self._pending, self._pending_bytes = self._pending, [], 0
        self._writing = asyncio.get_running_loop().run_in_executor(_writers, self._write, block)
        self._writing.add_done_callback(self._written)

    def _written(self, writing: asyncio.Future) -> None:
        self._writing = None
        if not writing.cancelled() and writing.exception() is not None:
            log.error("recording: a block could not be written", exc_info=writing.exception())
        if self._pending_bytes >= BLOCK_BYTES:
            self._hand_over()

    async def finish(self) -> None:
        """Write what is left and the final header, off the loop; then `save_track` may store it."""
        while self._writing is not None:
            await asyncio.wait([self._writing])
        block, self._pending, self._pending_bytes = self._pending, [], 0
        await asyncio.get_running_loop().run_in_executor(_writers, self._close, block, self.bytes)

    # --- in a writer thread ---------------------------------------------------------------------

    def _write(self, block: Block) -> None:
        if self._file is None:
            fd, name = tempfile.mkstemp(prefix="stream-", suffix=".wav")
            self.path, self._file = Path(name), os.fdopen(fd, "wb")
        for offset, pcm in block:
            self._file.seek(_HEADER_BYTES + offset)
            self._file.write(pcm)

    def _close(self, block: Block, size: int) -> None:
        self._write(block)
        self._file.truncate(_HEADER_BYTES + size)  # a trailing hole (the bot's last silence) is zeros too
        self._file.seek(0)
        self._file.write(_wav_header(self.rate, size))
        self._file.close()

    def discard(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class Recorder:
    """The caller's track, and the bot's unless the stream is receive-only (it would stay silent)."""

    def __init__(self, rate: int, *, bot_track: bool = True) -> None:
        self.caller = Track(rate)
        self.bot = Track(rate) if bot_track else None

    def caller_audio(self, pcm: bytes) -> None:
        self.caller.write(pcm)

    def bot_audio(self, pcm: bytes) -> None:
        # The bot's audio starts where the caller's timeline is now, not where the bot last stopped.
        self.bot.pad_to(self._caller_ends())
        self.bot.write(pcm)

    async def finish(self) -> None:
        """Close the spool files (cheap: no copying); `save_track` then moves them to storage."""
        if self.bot:
            self.bot.pad_to(self._caller_ends())
        await asyncio.gather(*(track.finish() for track in self.tracks))

    def _caller_ends(self) -> int:
        return self.caller.bytes - self.caller.bytes % 2  # on a whole sample

    @property
    def tracks(self) -> list[Track]:
        return [self.caller, self.bot] if self.bot else [self.caller]

    def discard(self) -> None:
        for track in self.tracks:
            track.discard()


def save_track(track: Track, name: str) -> str:
    """Copy a finished spool file into default storage (in chunks) and delete it; returns the stored name."""
    try:
        with track.path.open("rb") as spool:
            return default_storage.save(name, File(spool, name=name))
    finally:
        track.discard()
