"""Recordings: both directions streamed to WAV through Django's storage, served only to the workspace."""

import asyncio
import io
import wave

import pytest
from django.urls import reverse

from streams.models import StreamSession
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
