"""16-bit little-endian mono PCM: legal stream chunks, WAV, resampling and levels.

Chunk rules (reference, "Audio format"): 3200-100000 bytes, a multiple of 320. Only the last chunk
of a piece of audio is padded, with silence (zero bytes), and only as much as the rules need; an odd
byte count is half a sample and is refused, never truncated. `chunk_pcm` spreads whole 320-byte
units evenly over the fewest chunks, so a long prompt never ends in an undersized tail.

Levels are dBFS relative to full scale 32768; digital silence reads `SILENCE_DBFS` (-120), not
-inf, so meters and JSON never see an infinity.

G.711 μ-law (the Legs API's `audio/x-mulaw`, one byte a sample) is two lookup tables built once
with numpy, bit-exact with the CCITT reference coder (Sun's g711.c, which audioop also uses).
"""

from __future__ import annotations

import io
import math
import wave

import numpy as np
import soxr

from exotel.protocol import CHUNK_MAX, CHUNK_MIN, CHUNK_MULTIPLE

SILENCE_DBFS = -120.0


def bytes_per_ms(rate: int) -> float:
    """Bytes of 16-bit mono PCM per millisecond at `rate` Hz (16.0 at 8 kHz)."""
    return rate * 2 / 1000


def _check_even(pcm: bytes) -> None:
    if len(pcm) % 2:
        raise ValueError(f"PCM16 needs an even byte count, got {len(pcm)}")


def chunk_pcm(pcm: bytes, *, min_bytes: int = CHUNK_MIN, max_bytes: int = CHUNK_MAX,
              multiple: int = CHUNK_MULTIPLE) -> list[bytes]:
    """Split `pcm` into legal chunks; the result ends with the least silence that makes it legal."""
    _check_even(pcm)
    if not pcm:
        return []
    units_max = max_bytes // multiple
    padded = max(min_bytes, -(-len(pcm) // multiple) * multiple)
    data = pcm + bytes(padded - len(pcm))
    units = padded // multiple
    count = -(-units // units_max)
    # Even spread: every chunk gets units // count or one more; each stays >= half of max_bytes.
    base, extra = divmod(units, count)
    chunks, offset = [], 0
    for index in range(count):
        size = (base + (index < extra)) * multiple
        chunks.append(data[offset:offset + size])
        offset += size
    return chunks


class Chunker:
    """Streaming chunker: feed PCM as it is produced, get chunks of `chunk_bytes` out.

    Feeds may split a sample (an odd feed is fine); `flush()` pads the tail to a legal chunk with
    silence and raises ValueError if what is left is half a sample.
    """

    def __init__(self, chunk_bytes: int = CHUNK_MIN) -> None:
        if chunk_bytes < CHUNK_MIN or chunk_bytes > CHUNK_MAX or chunk_bytes % CHUNK_MULTIPLE:
            raise ValueError(f"chunk_bytes {chunk_bytes} is not a legal chunk size")
        self.chunk_bytes = chunk_bytes
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes fed but not yet returned in a chunk."""
        return len(self._buffer)

    def feed(self, pcm: bytes) -> list[bytes]:
        self._buffer += pcm
        ready = len(self._buffer) // self.chunk_bytes * self.chunk_bytes
        out = [bytes(self._buffer[i:i + self.chunk_bytes]) for i in range(0, ready, self.chunk_bytes)]
        del self._buffer[:ready]
        return out

    def flush(self) -> list[bytes]:
        tail, self._buffer = bytes(self._buffer), bytearray()
        return chunk_pcm(tail)

    def clear(self) -> None:
        """Forget unsent audio (barge-in)."""
        self._buffer.clear()


def _mulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    """(encode: int16 + 32768 -> μ-law byte, decode: μ-law byte -> int16), per g711.c."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    decode = np.where(code & 0x80, 0x84 - magnitude, magnitude - 0x84).astype("<i2")
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2                # 14-bit magnitude
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    biased = np.minimum(np.abs(pcm), 8159) + 0x21
    segment = np.searchsorted([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], biased)
    value = np.where(segment >= 8, 0x7F,
                     (np.minimum(segment, 7) << 4) | ((biased >> (np.minimum(segment, 7) + 1)) & 0x0F))
    return (value ^ mask).astype(np.uint8), decode


_MULAW_ENCODE, _MULAW_DECODE = _mulaw_tables()


def pcm_to_mulaw(pcm: bytes) -> bytes:
    """16-bit PCM -> G.711 μ-law, one byte a sample."""
    _check_even(pcm)
    return _MULAW_ENCODE[np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768].tobytes()


def mulaw_to_pcm(data: bytes) -> bytes:
    """G.711 μ-law -> 16-bit PCM."""
    return _MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm_to_wav(pcm: bytes, rate: int, *, channels: int = 1) -> bytes:
    """A WAV file holding 16-bit PCM (interleaved when `channels` > 1)."""
    _check_even(pcm)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def wav_to_pcm(data: bytes) -> tuple[bytes, int]:
    """(pcm, rate) from a mono 16-bit PCM WAV of any rate; anything else is a ValueError."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if channels != 1 or width != 2:
                raise ValueError(f"need mono 16-bit PCM WAV, got {channels} channel(s) of {width * 8} bits")
            return wav.readframes(wav.getnframes()), rate
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file: {exc}") from exc


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample with soxr (band-limited, not sample dropping)."""
    _check_even(pcm)
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype("<i2").tobytes()


def rms_dbfs(pcm: bytes) -> float:
    """Level in dBFS: 0 for a full-scale square wave, about -3 for a full-scale sine."""
    _check_even(pcm)
    if not pcm:
        return SILENCE_DBFS
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    rms = math.sqrt(float(np.mean(samples * samples)))
    return SILENCE_DBFS if rms == 0 else max(SILENCE_DBFS, 20 * math.log10(rms / 32768))
