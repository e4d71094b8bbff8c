"""Recordings of a stream: the caller's audio and the bot's, each a mono 16-bit WAV.

Audio is written as it streams to a local spool file (never held whole in memory); at the end the
WAV header gets its final sizes and the file is handed to Django's default storage, so a file
system or object storage is a matter of settings (`STORAGES`). The bot track is kept aligned with
the caller's: silence fills the time the bot said nothing, so both play side by side.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from exotel.audio import bytes_per_ms

_HEADER_BYTES = 44
_SILENCE = bytes(3200)


def _wav_header(rate: int, data_bytes: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16,
        b"data", data_bytes,
    )


class Track:
    """One WAV being written to a spool file; `bytes` of audio so far."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        fd, name = tempfile.mkstemp(prefix="stream-", suffix=".wav")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._file.write(_wav_header(rate, 0))
        self.bytes = 0

    def write(self, pcm: bytes) -> None:
        self._file.write(pcm)
        self.bytes += len(pcm)

    def pad_to(self, size: int) -> None:
        while self.bytes < size:
            self.write(_SILENCE[: min(len(_SILENCE), size - self.bytes)])

    @property
    def duration_ms(self) -> int:
        return round(self.bytes / bytes_per_ms(self.rate))

    def finish(self) -> None:
        self._file.seek(0)
        self._file.write(_wav_header(self.rate, self.bytes))
        self._file.close()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class Recorder:
    def __init__(self, rate: int) -> None:
        self.caller = Track(rate)
        self.bot = Track(rate)

    def caller_audio(self, pcm: bytes) -> None:
        self.caller.write(pcm)

    def bot_audio(self, pcm: bytes) -> None:
        # The bot's audio starts where the caller's timeline is now, not where the bot last stopped.
        self.bot.pad_to(self.caller.bytes - self.caller.bytes % 2)
        self.bot.write(pcm)

    def finish(self) -> None:
        """Close both spool files (cheap: no copying); `save` then moves them to storage."""
        self.bot.pad_to(self.caller.bytes - self.caller.bytes % 2)
        self.caller.finish()
        self.bot.finish()

    def discard(self) -> None:
        self.caller.discard()
        self.bot.discard()


def save_track(track: Track, name: str) -> str:
    """Copy a finished spool file into default storage (in chunks) and delete it; returns the stored name."""
    try:
        with track.path.open("rb") as spool:
            return default_storage.save(name, File(spool, name=name))
    finally:
        track.discard()
