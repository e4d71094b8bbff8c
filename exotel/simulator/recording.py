"""What the simulated call sounded like: the caller's track and the bot's track as played.

Each track is written at the time the audio was heard (seconds since the stream opened), so the
bot's audio lands where playback put it, gaps and all. `single` recordings mix both tracks;
`dual` recordings put the caller on the left channel and the bot on the right.
"""

from __future__ import annotations

import numpy as np

from exotel.audio import pcm_to_wav


class Recording:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.tracks = {"caller": bytearray(), "bot": bytearray()}

    def write(self, track: str, at_seconds: float, pcm: bytes) -> None:
        buffer = self.tracks[track]
        offset = max(0, int(at_seconds * self.rate)) * 2
        if len(buffer) < offset + len(pcm):
            buffer.extend(bytes(offset + len(pcm) - len(buffer)))
        buffer[offset:offset + len(pcm)] = pcm

    def wav(self, channels: str = "single") -> bytes:
        length = max(len(t) for t in self.tracks.values()) // 2
        caller, bot = (np.pad(np.frombuffer(bytes(t), dtype="<i2").astype(np.int32),
                              (0, length - len(t) // 2)) for t in self.tracks.values())
        if channels == "dual":
            return pcm_to_wav(np.stack([caller, bot], axis=1).astype("<i2").tobytes(), self.rate, channels=2)
        return pcm_to_wav(np.clip(caller + bot, -32768, 32767).astype("<i2").tobytes(), self.rate)
