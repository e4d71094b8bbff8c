"""The calls table (filters, keyset pages, constant query count) and a call's page with its recording."""

import datetime
import zoneinfo

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from callbacks.models import WebhookEvent
from campaigns.models import Call
from streams.models import StreamSession
from tests.conftest import make_call, make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}


def make_calls(campaign, n, **fields):
    base = timezone.now()
    return [make_call(campaign, created_at=base - datetime.timedelta(minutes=i), **fields) for i in range(n)]


def listed(client, **params):
    response = client.get(reverse("campaigns:calls"), params)
    return response, [c.pk for c in response.context["page"].rows]


def test_pages_walk_every_call_newest_first_once(bob_client, campaign):
    calls = make_calls(campaign, 120)
    seen, params = [], {}
    while True:
        response, page = listed(bob_client, **params)
        seen += page
        cursor = response.context["page"].next_cursor
        if not cursor:
            break
        params = {"after": cursor}
    assert seen == [c.pk for c in calls]


def test_calls_made_in_the_same_instant_are_neither_lost_nor_repeated(bob_client, campaign):
    stamp = timezone.now()
    calls = [make_call(campaign, created_at=stamp) for _ in range(60)]
    first, page1 = listed(bob_client)
    _, page2 = listed(bob_client, after=first.context["page"].next_cursor)
    assert sorted(page1 + page2) == sorted(c.pk for c in calls)


def test_filters_by_campaign_state_disposition_phone_and_day(bob_client, campaign, acme):
    other = make_campaign(acme, name="Other")
    answered = make_call(campaign, state="completed", disposition="interested", phone="+919800000001")
    busy = make_call(campaign, state="busy", phone="+919800000002")
    old = make_call(other, state="busy", created_at=timezone.now() - datetime.timedelta(days=3))
    assert listed(bob_client, campaign=campaign.pk)[1] == [busy.pk, answered.pk]
    assert listed(bob_client, state="completed")[1] == [answered.pk]
    assert listed(bob_client, disposition="interested")[1] == [answered.pk]
    assert listed(bob_client, phone="00000001")[1] == [answered.pk]
    # Days are the workspace's (its zone's midnight), whatever the hour in UTC.
    zone = zoneinfo.ZoneInfo(acme.time_zone)
    day = timezone.localdate(old.created_at, zone)
    assert old.pk in listed(bob_client, since=day.isoformat(), until=day.isoformat())[1]
    assert old.pk not in listed(bob_client, since=timezone.localdate(timezone=zone).isoformat())[1]


def test_another_workspaces_calls_and_campaigns_are_not_listed(bob_client, globex):
    theirs = make_call(make_campaign(globex))
    response, page = listed(bob_client)
    assert page == []
    # Their campaign is not a choice: the filter is invalid and shows all of ours (none).
    response, page = listed(bob_client, campaign=theirs.campaign_id)
    assert "campaign" in response.context["form"].errors and page == []


def test_the_calls_page_does_not_grow_queries_with_rows(bob_client, campaign, django_assert_max_num_queries):
    make_calls(campaign, 3)
    with django_assert_max_num_queries(10) as few:
        bob_client.get(reverse("campaigns:calls"))
    make_calls(campaign, 60)
    with django_assert_max_num_queries(len(few.captured_queries)):
        bob_client.get(reverse("campaigns:calls"))


def test_the_detail_page_does_not_grow_queries_with_calls(bob_client, campaign, django_assert_max_num_queries):
    make_calls(campaign, 3, state="in-progress")
    with django_assert_max_num_queries(20) as few:
        bob_client.get(campaign.get_absolute_url())
    make_calls(campaign, 40, state="in-progress")
    with django_assert_max_num_queries(len(few.captured_queries)):
        bob_client.get(campaign.get_absolute_url())


def test_a_call_shows_its_timeline_payloads_dtmf_and_recording(bob_client, campaign, acme):
    now = timezone.now()
    call = make_call(campaign, state="completed", answered_at=now, ended_at=now, duration=12,
                     recording_url="https://recordings.example.com/r.mp3", disposition="interested")
    WebhookEvent.objects.create(workspace=acme, call=call, kind="status", method="POST", outcome="applied",
                                body="CallSid=abc&Status=completed")
    stream = StreamSession.objects.create(workspace=acme, call=call, stream_sid="MZ9", started_at=now,
                                          ended_at=now, stop_reason="callended", dtmf_digits="19")
    stream.caller_recording.save("caller.wav", ContentFile(b"RIFF....WAVE"))
    page = bob_client.get(call.get_absolute_url()).content.decode()
    for text in ["Answered", "Status callback", "CallSid=abc&amp;Status=completed", "Stream started", "MZ9", "19",
                 "https://recordings.example.com/r.mp3", reverse("streams:recording", args=[stream.pk, "caller"])]:
        assert text in page, text
    audio = bob_client.get(reverse("streams:recording", args=[stream.pk, "caller"]))
    assert b"".join(audio.streaming_content) == b"RIFF....WAVE"


def test_charlie_cannot_see_acmes_call_or_its_recording(charlie_client, campaign, acme):
    call = make_call(campaign)
    stream = StreamSession.objects.create(workspace=acme, call=call, started_at=timezone.now())
    stream.caller_recording.save("caller.wav", ContentFile(b"RIFF"))
    assert charlie_client.get(call.get_absolute_url()).status_code == 404
    assert charlie_client.get(reverse("streams:recording", args=[stream.pk, "caller"])).status_code == 404
    assert Call.objects.get(pk=call.pk).state == "queued"


def test_the_admin_plays_a_calls_recordings(admin_client, campaign, acme):
    call = make_call(campaign, recording_url="https://recordings.example.com/r.mp3")
    stream = StreamSession.objects.create(workspace=acme, call=call, stream_sid="MZ7", started_at=timezone.now())
    stream.caller_recording.save("caller.wav", ContentFile(b"RIFF"))
    page = admin_client.get(reverse("admin:campaigns_call_change", args=[call.pk])).content.decode()
    assert 'src="https://recordings.example.com/r.mp3"' in page
    assert reverse("admin:streams_streamsession_recording", args=[stream.pk, "caller"]) in page


def test_the_timeline_hides_the_calls_token(bob_client, campaign, acme):
    call = make_call(campaign, state="completed")
    WebhookEvent.objects.create(workspace=acme, call=call, kind="status", method="POST", outcome="applied",
                                query={"call": call.token}, body="")
    WebhookEvent.objects.create(workspace=acme, call=call, kind="passthru", method="GET", outcome="applied",
                                body=f"streamurl=wss://bots.example.com/streams/{call.token}")
    page = bob_client.get(call.get_absolute_url()).content.decode()
    assert call.token not in page
    assert page.count("[redacted]") == 2


def test_the_call_page_shows_the_bots_transcript_and_summary_escaped(bob_client, campaign):
    call = make_call(campaign, transcript=[["caller", "I want to renew"], ["bot", "<script>x</script>"]],
                     summary="Renewal agreed.")
    page = bob_client.get(f"/calls/{call.pk}/").content.decode()
    assert "I want to renew" in page and "Renewal agreed." in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
