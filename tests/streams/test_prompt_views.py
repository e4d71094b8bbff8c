"""The Prompts page: WAV and MP3 uploads decoded and converted, bad files refused at the field, the
audio served to the page's player, where each prompt is used, and no delete while a campaign that may
still run names it. Another workspace's prompts answer 404."""

import io

import numpy as np
import pytest
import soundfile
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import Campaign, Variant
from exotel.audio import rms_dbfs, wav_to_pcm
from streams import prompts
from streams.models import Prompt
from tests.conftest import make_campaign
from tests.streams.exotel_side import wav

pytestmark = pytest.mark.django_db


def encoded(seconds: float, rate: int, *, channels: int = 1, format: str = "WAV", subtype: str | None = None) -> bytes:
    """A 440 Hz tone at half scale, in the file format and sample type asked for."""
    t = np.arange(int(seconds * rate)) / rate
    samples = np.repeat((0.5 * np.sin(2 * np.pi * 440 * t))[:, None], channels, axis=1)
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=format, subtype=subtype)
    return out.getvalue()


def upload(client, name: str, data: bytes, filename: str = "prompt.wav"):
    return client.post(reverse("streams:prompt_upload"), {"name": name, "file": SimpleUploadedFile(filename, data)},
                       follow=True)


def stored_pcm(prompt: Prompt) -> tuple[bytes, int]:
    with default_storage.open(prompt.audio.name, "rb") as stored:
        return wav_to_pcm(stored.read())


def test_a_stereo_24_bit_48_khz_wav_becomes_mono_16_bit_at_the_highest_stream_rate(alice_client, acme):
    response = upload(alice_client, "greeting", encoded(1.5, 48000, channels=2, subtype="PCM_24"))
    assert "Prompt greeting saved (1.5 s)" in response.content.decode()
    prompt = Prompt.objects.get(workspace=acme, name="greeting")
    assert (prompt.sample_rate, prompt.duration_ms) == (24000, 1500)
    pcm, rate = stored_pcm(prompt)  # wav_to_pcm accepts only mono 16-bit PCM
    assert rate == 24000 and len(pcm) == 2 * 36000
    assert -10 < rms_dbfs(pcm) < -8  # a half-scale sine is about -9 dBFS: the level survived the conversion


def test_an_mp3_is_decoded(alice_client, acme):
    upload(alice_client, "thanks", encoded(2, 16000, format="MP3"), "thanks.mp3")
    prompt = Prompt.objects.get(workspace=acme, name="thanks")
    assert prompt.sample_rate == 16000 and abs(prompt.duration_ms - 2000) < 100  # MP3 frames round the length
    pcm, rate = stored_pcm(prompt)
    assert prompt.audio.name.endswith(".wav") and rate == 16000
    assert rms_dbfs(pcm) > -12


@pytest.mark.parametrize(("data", "error"), [
    (b"RIFF nonsense, not audio at all", "The file is not a WAV or MP3 file that can be decoded (Format not recognised)."),
    (b"", "The submitted file is empty."),
    (encoded(1, 8000, format="FLAC"), "The file is FLAC (Free Lossless Audio Codec); upload a WAV or MP3 file."),
    (encoded(0, 8000), "The WAV file holds no audio."),
])
def test_a_file_that_is_not_a_wav_or_mp3_with_audio_is_refused_at_the_field(alice_client, acme, data, error):
    response = upload(alice_client, "bad", data)
    assert error in str(response.context["form"].errors["file"])
    assert not Prompt.objects.exists()
    assert not default_storage.exists(f"prompts/{acme.pk}")  # nothing was written


def test_a_prompt_longer_than_the_limit_is_refused(alice_client, monkeypatch):
    monkeypatch.setattr(prompts, "MAX_PROMPT_SECONDS", 30)
    response = upload(alice_client, "long", encoded(31, 8000))
    assert "A prompt may last at most 0.5 minutes." in str(response.context["form"].errors["file"])
    assert not Prompt.objects.exists()


def test_a_file_over_the_upload_limit_is_stopped_at_the_door(alice_client, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    response = upload(alice_client, "big", encoded(1, 8000))
    assert "The file is larger than" in str(response.context["form"].errors["file"])
    assert not Prompt.objects.exists()


def test_a_name_must_be_a_slug(alice_client):
    response = upload(alice_client, "two words", wav(200))
    assert "name" in response.context["form"].errors and not Prompt.objects.exists()


def test_uploading_a_name_again_replaces_its_audio_and_removes_the_old_file(alice_client, acme,
                                                                               django_capture_on_commit_callbacks):
    upload(alice_client, "greeting", wav(300, 8000))
    old = Prompt.objects.get().audio.name
    with django_capture_on_commit_callbacks(execute=True):
        upload(alice_client, "greeting", wav(700, 16000))
    prompt = Prompt.objects.get()
    assert (prompt.duration_ms, prompt.sample_rate) == (700, 16000) and prompt.audio.name != old
    assert default_storage.exists(prompt.audio.name) and not default_storage.exists(old)


def test_the_player_gets_the_stored_wav(bob_client, acme):
    prompt = prompts.save_prompt(acme, "hello", ContentFile(wav(400, 8000), name="hello.wav"))
    page = bob_client.get(reverse("streams:prompts")).content.decode()
    src = reverse("streams:prompt_audio", args=[prompt.pk])
    assert f'<audio controls preload="none" src="{src}"' in page
    response = bob_client.get(src)
    assert response["Content-Type"] == "audio/wav"
    assert wav_to_pcm(b"".join(response.streaming_content)) == stored_pcm(prompt)


def test_the_player_gets_the_byte_ranges_it_asks_for(bob_client, acme):
    prompt = prompts.save_prompt(acme, "hello", ContentFile(wav(400, 8000), name="hello.wav"))
    url = reverse("streams:prompt_audio", args=[prompt.pk])
    with default_storage.open(prompt.audio.name, "rb") as stored:
        whole = stored.read()
    for asked, first, last in [("bytes=0-", 0, len(whole) - 1), ("bytes=100-199", 100, 199), ("bytes=-44", len(whole) - 44,
                                                                                             len(whole) - 1)]:
        response = bob_client.get(url, headers={"Range": asked})
        assert response.status_code == 206 and response["Content-Range"] == f"bytes {first}-{last}/{len(whole)}"
        assert b"".join(response.streaming_content) == whole[first:last + 1]
    beyond = bob_client.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(whole)}"
    assert bob_client.get(url)["Accept-Ranges"] == "bytes"


def uses_everything(acme) -> dict[str, Campaign]:
    """Campaigns naming prompts in each way a campaign can."""
    script = {"steps": [{"say": "greeting-{language}"}, {"transfer": {"message": "hold"}}]}
    return {
        "script": make_campaign(acme, name="Script run", bot_kind="script", bot_settings=script),
        "relay": make_campaign(acme, name="Relay run", bot_kind="relay",
                               bot_settings={"url": "wss://bot.example.com/agent", "fallback_prompt": "sorry"}),
        "machines": make_campaign(acme, name="Machines run", machine_detection="on", on_machine="leave_message",
                                  voicemail_prompt="after-the-beep", state=Campaign.State.COMPLETED),
    }


def test_the_page_says_where_each_prompt_is_used(bob_client, acme):
    for name in ("greeting-hi", "greeting-en", "hold", "sorry", "after-the-beep", "spare"):
        prompts.save_prompt(acme, name, ContentFile(wav(100, 8000), name=f"{name}.wav"))
    campaigns = uses_everything(acme)
    found = prompts.uses(acme)
    assert [(u.campaign_name, u.where) for u in found["greeting-hi"]] == [("Script run", "script step 1 (say)")]
    assert [u.where for u in found["greeting-en"]] == ["script step 1 (say)"]
    assert [u.where for u in found["hold"]] == ["script step 2 (transfer message)"]
    assert [u.where for u in found["sorry"]] == ["relay fallback"]
    assert [(u.where, u.finished) for u in found["after-the-beep"]] == [("answering-machine message", True)]
    assert "spare" not in found
    page = bob_client.get(reverse("streams:prompts")).content.decode()
    assert page.count("not used") == 1  # spare
    assert f'<a href="{campaigns["relay"].get_absolute_url()}">Relay run</a>: relay fallback' in page
    assert 'Machines run</a>: answering-machine message <span class="muted">(finished)</span>' in page


def test_an_ab_variants_bot_uses_prompts_too(alice_client, acme, campaign):
    prompt = prompts.save_prompt(acme, "variant-hello", ContentFile(wav(100, 8000), name="v.wav"))
    Variant.objects.create(workspace=acme, campaign=campaign, name="B", bot_kind="script",
                           bot_settings={"steps": [{"say": "variant-hello"}]})
    assert [u.where for u in prompts.uses(acme)["variant-hello"]] == ["variant B: script step 1 (say)"]
    response = alice_client.post(reverse("streams:prompt_delete", args=[prompt.pk]), follow=True)
    assert "is in use by campaign Renewals (variant B: script step 1 (say))" in response.content.decode()
    assert Prompt.objects.filter(pk=prompt.pk).exists()


def test_a_prompt_in_use_is_not_deleted_until_its_campaigns_finish(alice_client, acme,
                                                                   django_capture_on_commit_callbacks):
    prompt = prompts.save_prompt(acme, "sorry", ContentFile(wav(100, 8000), name="sorry.wav"))
    relay = uses_everything(acme)["relay"]
    response = alice_client.post(reverse("streams:prompt_delete", args=[prompt.pk]), follow=True)
    assert "Prompt sorry is in use by campaign Relay run (relay fallback). Change those first." in \
        response.content.decode()
    assert Prompt.objects.filter(pk=prompt.pk).exists() and default_storage.exists(prompt.audio.name)
    relay.state = Campaign.State.CANCELLED
    relay.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("streams:prompt_delete", args=[prompt.pk]), follow=True)
    assert "Prompt sorry deleted." in response.content.decode()
    assert not Prompt.objects.exists() and not default_storage.exists(prompt.audio.name)


def test_a_viewer_listens_but_neither_uploads_nor_deletes(bob_client, acme):
    prompt = prompts.save_prompt(acme, "hello", ContentFile(wav(100, 8000), name="hello.wav"))
    page = bob_client.get(reverse("streams:prompts")).content.decode()
    assert "prompt-upload" not in page and "Delete hello" not in page
    assert bob_client.post(reverse("streams:prompt_upload"), {"name": "x", "file": SimpleUploadedFile(
        "x.wav", wav(100))}).status_code == 403
    assert bob_client.post(reverse("streams:prompt_delete", args=[prompt.pk])).status_code == 403
    assert Prompt.objects.count() == 1


def test_another_workspaces_prompt_is_missing(charlie_client, acme, globex):
    prompt = prompts.save_prompt(acme, "acme-secret-greeting", ContentFile(wav(100, 8000), name="a.wav"))
    assert charlie_client.get(reverse("streams:prompt_audio", args=[prompt.pk])).status_code == 404
    assert charlie_client.post(reverse("streams:prompt_delete", args=[prompt.pk])).status_code == 404
    assert "acme-secret-greeting" not in charlie_client.get(reverse("streams:prompts")).content.decode()
    upload(charlie_client, "acme-secret-greeting", wav(200))  # the same name is globex's own prompt
    assert Prompt.objects.get(workspace=acme).duration_ms == 100
    assert Prompt.objects.get(workspace=globex).duration_ms == 200
