"""Recordings: both directions streamed to WAV through Django's storage, served only to the workspace."""

import asyncio
import io
import threading
import wave
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from streams import recorder
from streams.models import StreamSession
from streams.recorder import Recorder, Track
from tests.streams.exotel_side import Exotel, tone


def duration_ms(field) -> int:
    with field.open("rb") as f, wave.open(io.BytesIO(f.read())) as wav:
        return round(wav.getnframes() / wav.getframerate() * 1000)


@pytest.fixture
def recorded(call):
    """A finished echo call at 16 kHz: 1.5 s of caller audio."""

    async def run():
        exotel = Exotel(f"/streams/{call.token}", rate=16000)
        assert await exotel.connect()
        await exotel.start()
        for _ in range(15):
            await exotel.media(tone(100, 16000))
        await exotel.stop()
        await exotel.frames_until(lambda f: isinstance(f, tuple))  # echoes, then the close
        await exotel.hang_up()

    asyncio.run(run())
    return StreamSession.objects.get(call=call)


def test_both_tracks_are_stored_with_the_streams_duration(recorded):
    assert recorded.sample_rate == 16000
    assert recorded.caller_recording.name.startswith(f"recordings/{recorded.workspace_id}/")
    assert duration_ms(recorded.caller_recording) == 1500
    # The bot track is aligned with the caller's: each echo starts where the caller's timeline was when
    # it was sent (one frame late), so it lasts as long as the call plus at most that last chunk.
    assert 1500 <= duration_ms(recorded.bot_recording) <= 1500 + 200


def test_a_member_downloads_a_recording(recorded, alice_client, bob_client):
    url = reverse("streams:recording", args=[recorded.pk, "caller"])
    for client in (alice_client, bob_client):
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
        assert b"".join(response.streaming_content)[:4] == b"RIFF"


def test_it_hides_other_workspaces_recordings(recorded, charlie_client):
    assert charlie_client.get(reverse("streams:recording", args=[recorded.pk, "caller"])).status_code == 404


def test_an_unknown_track_is_missing(recorded, alice_client):
    assert alice_client.get(reverse("streams:recording", args=[recorded.pk, "both"])).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(recorded, client):
    assert client.get(reverse("streams:recording", args=[recorded.pk, "caller"])).status_code == 302


def test_the_admin_plays_both_tracks(recorded, alice, admin_client):
    page = admin_client.get(reverse("admin:streams_streamsession_change", args=[recorded.pk]))
    assert page.status_code == 200 and page.content.count(b"<audio controls") == 2
    audio = admin_client.get(reverse("admin:streams_streamsession_recording", args=[recorded.pk, "bot"]))
    assert audio.status_code == 200


def test_staff_of_another_workspace_cannot_play_it_in_the_admin(recorded, charlie, client):
    charlie.is_staff = True
    charlie.save()
    client.force_login(charlie)
    url = reverse("admin:streams_streamsession_recording", args=[recorded.pk, "caller"])
    assert client.get(url).status_code == 404


def frames_of(path) -> bytes:
    with wave.open(str(path)) as wav:
        return wav.readframes(wav.getnframes())


async def test_the_tracks_reach_their_files_in_blocks_with_the_bots_silences_as_holes():
    rec = Recorder(8000)
    caller = [bytes([i % 251, 0]) * 800 for i in range(50)]  # 80 kB: more than two blocks
    for i, pcm in enumerate(caller):
        rec.caller_audio(pcm)
        if i == 30:
            rec.bot_audio(b"\x07\x00" * 800)
    await rec.finish()
    assert frames_of(rec.caller.path) == b"".join(caller)
    assert frames_of(rec.bot.path) == bytes(31 * 1600) + b"\x07\x00" * 800 + bytes(18 * 1600)
    paths = [rec.caller.path, rec.bot.path]
    rec.discard()
    assert not any(path.exists() for path in paths)


async def test_a_receive_only_stream_records_no_bot_track():
    rec = Recorder(8000, bot_track=False)
    rec.caller_audio(bytes(1600))
    await rec.finish()
    assert rec.bot is None and rec.tracks == [rec.caller]
    rec.discard()


async def test_a_stalled_disk_costs_audio_beyond_the_bound_not_memory(monkeypatch):
    stalled, writers = threading.Event(), ThreadPoolExecutor(max_workers=1)
    writers.submit(stalled.wait)  # fault: the disk hangs until released
    monkeypatch.setattr(recorder, "_writers", writers)
    monkeypatch.setattr(recorder, "MAX_PENDING_BYTES", 64 * 1024)
    track = Track(8000)
    for _ in range(100):
        track.write(b"\x01\x00" * 800)
    # 21 frames went to the (stalled) writer as one block, 40 more wait within the bound, the rest is dropped.
    assert track.dropped == 39 * 1600 and track.bytes == 100 * 1600
    stalled.set()
    await track.finish()
    assert frames_of(track.path) == b"\x01\x00" * 800 * 61 + bytes(39 * 1600)  # the timeline is kept
    track.discard()
    writers.shutdown()
