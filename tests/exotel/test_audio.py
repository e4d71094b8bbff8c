"""Audio helpers: chunking rules (property-tested), WAV, resampling, levels."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exotel import audio


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * 32767 * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes()


def dominant_frequency(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def assert_legal(chunk: bytes) -> None:
    assert 3200 <= len(chunk) <= 100000 and len(chunk) % 320 == 0


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.integers(min_value=0, max_value=4000), st.integers(min_value=0, max_value=260_000)).map(
    lambda n: n * 2),
       st.binary(min_size=1, max_size=64))
def test_chunks_are_legal_and_only_the_tail_is_padded(length, pattern):
    pcm = (pattern * (length // len(pattern) + 1))[:length]
    chunks = audio.chunk_pcm(pcm)
    for chunk in chunks:
        assert_legal(chunk)
    joined = b"".join(chunks)
    assert joined[:length] == pcm
    padding = joined[length:]
    assert padding == bytes(len(padding))
    needed = max(3200, -(-length // 320) * 320) if length else 0
    assert len(joined) == needed  # never a byte more than the rules need (< one 320-byte unit)


@given(st.integers(min_value=0, max_value=50_000).map(lambda n: n * 2 + 1))
def test_an_odd_byte_count_is_refused(length):
    with pytest.raises(ValueError):
        audio.chunk_pcm(bytes(length))


@given(st.lists(st.integers(min_value=0, max_value=9000), max_size=20))
def test_the_streaming_chunker_emits_legal_chunks_and_keeps_every_byte(sizes):
    total = sum(sizes)
    if total % 2:
        sizes = [*sizes, 1]
        total += 1
    pcm = bytes(i % 251 for i in range(total))
    chunker, out, offset = audio.Chunker(3200), [], 0
    for size in sizes:
        out += chunker.feed(pcm[offset:offset + size])
        offset += size
    out += chunker.flush()
    for chunk in out:
        assert_legal(chunk)
    joined = b"".join(out)
    assert joined[:total] == pcm and not any(joined[total:])


def test_the_chunker_refuses_half_a_sample_at_flush():
    chunker = audio.Chunker()
    assert chunker.feed(bytes(3201)) == [bytes(3200)]
    with pytest.raises(ValueError):
        chunker.flush()


def test_the_chunker_refuses_an_illegal_size():
    with pytest.raises(ValueError):
        audio.Chunker(3000)


def test_wav_round_trip_keeps_samples_and_rate():
    pcm = tone(440, 16000, 0.25)
    assert audio.wav_to_pcm(audio.pcm_to_wav(pcm, 16000)) == (pcm, 16000)


def test_wav_refuses_stereo_and_8_bit():
    with pytest.raises(ValueError, match="mono 16-bit"):
        audio.wav_to_pcm(audio.pcm_to_wav(bytes(400), 8000, channels=2))
    with pytest.raises(ValueError, match="not a PCM WAV"):
        audio.wav_to_pcm(b"RIFF nonsense")


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (8000, 24000), (24000, 16000)])
def test_resampling_keeps_duration_and_frequency(src, dst):
    out = audio.resample(tone(1000, src, 1.0), src, dst)
    assert abs(len(out) / 2 - dst) <= dst * 0.01
    assert abs(dominant_frequency(out, dst) - 1000) < 5


def test_levels_of_silence_and_full_scale():
    assert audio.rms_dbfs(bytes(3200)) == audio.SILENCE_DBFS
    square = np.tile(np.array([32767, -32768], dtype="<i2"), 800).tobytes()
    assert audio.rms_dbfs(square) == pytest.approx(0.0, abs=0.01)
    assert audio.rms_dbfs(tone(1000, 8000, 1.0, amplitude=1.0)) == pytest.approx(-3.01, abs=0.05)


def test_bytes_per_ms():
    assert audio.bytes_per_ms(8000) == 16
    assert audio.bytes_per_ms(24000) == 48


def test_mulaw_has_the_g711_code_points_and_round_trips():
    assert audio.mulaw_to_pcm(bytes([0xFF, 0x80, 0x00])) == np.array([0, 32124, -32124], dtype="<i2").tobytes()
    assert audio.pcm_to_mulaw(np.array([0, 32767, -32768], dtype="<i2").tobytes()) == bytes([0xFF, 0x80, 0x00])
    codes = bytes(b for b in range(256) if b != 0x7F)  # 0x7F is "negative zero": it decodes to 0 -> 0xFF
    assert audio.pcm_to_mulaw(audio.mulaw_to_pcm(codes)) == codes


def test_mulaw_matches_the_reference_coder_on_every_sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # CCITT g711.c; deprecated in 3.11, gone in 3.13
    every = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert audio.pcm_to_mulaw(every) == audioop.lin2ulaw(every, 2)
    assert audio.mulaw_to_pcm(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)


def test_mulaw_keeps_speech_within_a_decibel():
    speech = tone(440, 8000, 0.5, amplitude=0.1)
    assert abs(audio.rms_dbfs(audio.mulaw_to_pcm(audio.pcm_to_mulaw(speech))) - audio.rms_dbfs(speech)) < 1
    with pytest.raises(ValueError):
        audio.pcm_to_mulaw(b"\x00")
