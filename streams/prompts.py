"""Prompts: WAVs uploaded per workspace (`Prompt`, stored through Django's storage), read and
resampled once per process and stream rate, and handed to a stream at its `start`, so playing one
never touches the database or the disk on the media path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from exotel.audio import bytes_per_ms, resample, wav_to_pcm
from streams.models import Prompt
from streams.runtime import Binding

MAX_PROMPT_BYTES = 20 * 1024 * 1024
CACHE_BYTES = 64 * 1024 * 1024  # resampled audio kept in memory per process


def describe(upload) -> tuple[int, int]:
    """(sample rate, duration in ms) of an uploaded WAV; ValidationError saying what is wrong."""
    if upload.size > MAX_PROMPT_BYTES:
        raise ValidationError(f"A prompt may be at most {MAX_PROMPT_BYTES // 1024 // 1024} MB.")
    upload.seek(0)
    try:
        pcm, rate = wav_to_pcm(upload.read())
    except ValueError as exc:
        raise ValidationError(f"The prompt must be a mono 16-bit PCM WAV file ({exc}).") from exc
    finally:
        upload.seek(0)
    if not pcm:
        raise ValidationError("The prompt's WAV file holds no audio.")
    return rate, round(len(pcm) / bytes_per_ms(rate))


def save_prompt(workspace, name: str, upload) -> Prompt:
    """Add or replace the workspace's prompt `name` with an uploaded WAV (validated first)."""
    rate, duration_ms = describe(upload)
    prompt = Prompt.objects.filter(workspace=workspace, name=name).first() or Prompt(workspace=workspace, name=name)
    prompt.sample_rate, prompt.duration_ms = rate, duration_ms
    prompt.audio.save(upload.name, upload, save=False)
    prompt.full_clean()
    prompt.save()
    return prompt


class PcmCache:
    """The most recently used prompts' audio, at most `max_bytes` in all: prompts are up to 20 MB
    each, so a count of them would not bound memory. Shared by the threads that start streams."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int], load: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        pcm = load()  # outside the lock: other streams' prompts need not wait for this file
        with self._lock:
            if key not in self._items and len(pcm) <= self.max_bytes:
                self._items[key] = pcm
                self.bytes += len(pcm)
                while self.bytes > self.max_bytes:
                    self.bytes -= len(self._items.popitem(last=False)[1])
        return pcm


_cache = PcmCache(CACHE_BYTES)


def _pcm(file_name: str, rate: int) -> bytes:
    def read() -> bytes:
        with default_storage.open(file_name, "rb") as wav:
            pcm, source_rate = wav_to_pcm(wav.read())
        return resample(pcm, source_rate, rate)

    # Keyed by the stored file's name: a new upload gets a new name, so the cache never serves stale audio.
    return _cache.get((file_name, rate), read)


def load(workspace_id: int, names: set[str], rate: int) -> dict[str, tuple[bytes, int]]:
    """The named prompts of a workspace at `rate`; names with no prompt are left out."""
    rows = Prompt.objects.filter(workspace_id=workspace_id, name__in=names).values_list("name", "audio")
    return {name: (_pcm(file_name, rate), rate) for name, file_name in rows}


def for_script(binding: Binding, rate: int) -> dict[str, tuple[bytes, int]]:
    from streams.bots import script

    return load(binding.workspace_id, script.prompt_names(binding.bot_settings, binding.variables), rate)


def for_relay(binding: Binding, rate: int) -> dict[str, tuple[bytes, int]]:
    name = binding.bot_settings.get("fallback_prompt")
    return load(binding.workspace_id, {name}, rate) if name else {}
