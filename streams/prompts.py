"""Prompts: WAV or MP3 files uploaded per workspace, converted on upload to mono 16-bit PCM WAVs
(`Prompt`, stored through Django's storage), read and resampled once per process and stream rate,
and handed to a stream at its `start`, so playing one never touches the database or the disk on the
media path. A prompt is deleted only when no campaign that may still run names it (`uses`).
"""

from __future__ import annotations

import io
import re
import string
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from campaigns.models import Campaign
from exotel.audio import bytes_per_ms, pcm_to_wav, resample, wav_to_pcm
from streams.models import Prompt
from streams.runtime import Binding

MAX_PROMPT_BYTES = 20 * 1024 * 1024
MAX_PROMPT_SECONDS = 600
STORED_RATE_MAX = max(rate for rate, _ in Campaign.SAMPLE_RATES)  # the highest rate a stream plays at
FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "RF64": "WAV", "MP3": "MP3"}  # libsndfile's names -> what we accept
CACHE_BYTES = 64 * 1024 * 1024  # resampled audio kept in memory per process


@dataclass(frozen=True)
class Converted:
    """An upload decoded and made what streams play: mono 16-bit PCM, in a WAV file."""

    wav: bytes
    sample_rate: int
    duration_ms: int


def convert(upload) -> Converted:
    """Decode an uploaded WAV (any PCM width, float, A-law/μ-law, any channels) or MP3 into mono 16-bit
    PCM at its own rate, capped at the highest stream rate (each stream resamples it once to its own,
    `_pcm`); ValidationError saying what is wrong with the file."""
    if upload.size > MAX_PROMPT_BYTES:
        raise ValidationError(f"A prompt may be at most {MAX_PROMPT_BYTES // 1024 // 1024} MB.")
    upload.seek(0)
    try:
        with soundfile.SoundFile(io.BytesIO(upload.read())) as audio:
            kind = FORMATS.get(audio.format)
            if kind is None:
                raise ValidationError(f"The file is {audio.format_info}; upload a WAV or MP3 file.")
            rate = audio.samplerate
            # Read at most one frame past the limit: a long file is refused without decoding it whole.
            frames = audio.read(frames=MAX_PROMPT_SECONDS * rate + 1, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as exc:
        reason = exc.error_string.rstrip(".")
        raise ValidationError(f"The file is not a WAV or MP3 file that can be decoded ({reason}).") from exc
    finally:
        upload.seek(0)
    if len(frames) > MAX_PROMPT_SECONDS * rate:
        raise ValidationError(f"A prompt may last at most {MAX_PROMPT_SECONDS / 60:g} minutes.")
    if not len(frames):
        raise ValidationError(f"The {kind} file holds no audio.")
    mono = frames.mean(axis=1)
    if rate > STORED_RATE_MAX:
        mono, rate = soxr.resample(mono, rate, STORED_RATE_MAX, quality="HQ"), STORED_RATE_MAX
    pcm = (np.clip(mono, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return Converted(pcm_to_wav(pcm, rate), rate, round(len(pcm) / bytes_per_ms(rate)))


def save_prompt(workspace, name: str, upload, *, text: str = "", voice=None) -> Prompt:
    """Add or replace the workspace's prompt `name` with an uploaded WAV or MP3, converted first (`text`
    and `voice`: what a voice of the workspace was asked to say, when it made the audio)."""
    converted = convert(upload)
    prompt = Prompt.objects.filter(workspace=workspace, name=name).first() or Prompt(workspace=workspace, name=name)
    replaced = prompt.audio.name
    prompt.sample_rate, prompt.duration_ms = converted.sample_rate, converted.duration_ms
    prompt.text, prompt.voice = text, voice
    prompt.audio.save(f"{name}.wav", ContentFile(converted.wav), save=False)
    prompt.full_clean()
    prompt.save()
    if replaced:
        # A new file under a new name (the cache is keyed by it); streams that hold the old audio keep it in memory.
        transaction.on_commit(lambda: default_storage.delete(replaced))
    return prompt


class InUse(Exception):
    """The prompt is named by a campaign that may still play it; the message says which."""


@dataclass(frozen=True)
class Use:
    campaign_id: int
    campaign_name: str
    finished: bool
    where: str  # e.g. "script step 3 (say)"


def _named(template: str, names: set[str]) -> list[str]:
    """Which of `names` a script's name template ("greeting-{language}") can become."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        parts = [(template, None, None, None)]
    if all(field is None for _, field, _, _ in parts):
        return [template] if template in names else []
    pattern = re.compile("".join(re.escape(text) + (".*" if field is not None else "") for text, field, _, _ in parts))
    return [name for name in names if pattern.fullmatch(name)]


def bot_references(bot_kind: str, settings: dict) -> list[tuple[str, str]]:
    """(name or name template, where) for every prompt a bot's settings name."""
    from streams.bots import script

    settings = settings or {}
    if bot_kind == Campaign.BotKind.SCRIPT:
        return [(template, f"script {where}") for template, where in script.prompt_templates(settings)]
    if bot_kind == Campaign.BotKind.RELAY and settings.get("fallback_prompt"):
        return [(settings["fallback_prompt"], "relay fallback")]
    return []


def references(campaign: Campaign) -> list[tuple[str, str]]:
    """(name or name template, where) for every prompt the campaign names: its bot, its A/B variants' bots
    (prefetch `variants`) and its answering-machine message."""
    found = [(campaign.voicemail_prompt, "answering-machine message")] if campaign.voicemail_prompt else []
    found += bot_references(campaign.bot_kind, campaign.bot_settings)
    for variant in campaign.variants.all():
        found += [(template, f"variant {variant.name}: {where}")
                  for template, where in bot_references(variant.bot_kind, variant.bot_settings)]
    return found


def uses(workspace) -> dict[str, list[Use]]:
    """Where each of the workspace's prompts is named, by prompt name (prompts named nowhere are left out)."""
    names = set(Prompt.objects.filter(workspace=workspace).values_list("name", flat=True))
    found: dict[str, list[Use]] = {}
    campaigns = Campaign.objects.filter(workspace=workspace).only(
        "name", "state", "bot_kind", "bot_settings", "voicemail_prompt").order_by("name", "pk").prefetch_related(
        "variants")
    for campaign in campaigns:
        finished = campaign.state in (Campaign.State.COMPLETED, Campaign.State.CANCELLED)
        for template, where in references(campaign):
            for name in _named(template, names):
                found.setdefault(name, []).append(Use(campaign.pk, campaign.name, finished, where))
    return found


def delete_prompt(prompt: Prompt) -> None:
    """Delete a prompt and its file; InUse while a campaign that is not finished names it."""
    blocking = [use for use in uses(prompt.workspace).get(prompt.name, []) if not use.finished]
    if blocking:
        raise InUse(f"Prompt {prompt.name} is in use by " + "; ".join(
            f"campaign {use.campaign_name} ({use.where})" for use in blocking) + ". Change those first.")
    file_name = prompt.audio.name
    prompt.delete()
    transaction.on_commit(lambda: default_storage.delete(file_name))


def check_named(workspace_id: int, references: list[tuple[str, str]]) -> None:
    """ValidationError naming each place whose prompt the workspace lacks, given (prompt name template,
    where) pairs as `bot_references` makes them. A template with `{variable}` parts needs a prompt it
    could become ("greeting-{language}": greeting-hi…); a contact whose own is missing is the call's to log."""
    names = set(Prompt.objects.filter(workspace_id=workspace_id).values_list("name", flat=True))
    missing = []
    for template, where in references:
        if not _named(template, names):
            like = " like" if any(field is not None for _, field, _, _ in string.Formatter().parse(template)) else ""
            missing.append(f"{where[:1].upper()}{where[1:]}: no prompt of this workspace is named{like} {template!r}.")
    if missing:
        raise ValidationError(missing)


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
