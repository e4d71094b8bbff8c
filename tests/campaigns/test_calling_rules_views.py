"""The calling rules' pages: the workspace's policy and presets, the campaign's forecast and its downloads,
and the compliance record."""

import datetime

import pytest
from django.urls import reverse

from campaigns import dialer, forecast
from campaigns.models import Campaign, DoNotCall, Hold
from tenancy.models import Workspace
from tests.campaigns.test_dispatcher import NOON_FRIDAY, start, tick
from tests.conftest import call_abroad, make_contact

pytestmark = pytest.mark.usefixtures("default_policy")  # the product's policy window

POLICY = {"calling_start": "08:00", "calling_end": "19:00", "quiet_weekdays": ["7"], "holidays": "2026-12-25\n",
          "max_attempts_per_day": "2", "max_attempts_per_week": "7"}


def test_an_admin_sets_the_calling_rules(alice_client, acme):
    response = alice_client.post(reverse("tenancy:calling_rules"), POLICY)
    assert response.status_code == 302
    acme.refresh_from_db()
    assert (acme.calling_start, acme.calling_end, acme.quiet_weekdays, acme.holidays) == (
        datetime.time(8), datetime.time(19), [7], ["2026-12-25"])
    assert (acme.max_attempts_per_day, acme.max_attempts_per_week) == (2, 7)


def test_a_preset_sets_the_window_and_caps(alice_client, acme):
    alice_client.post(reverse("tenancy:calling_rules"), {"preset": "7in7"})
    acme.refresh_from_db()
    assert (acme.calling_start, acme.calling_end, acme.max_attempts_per_day, acme.max_attempts_per_week) == (
        datetime.time(8), datetime.time(21), 7, 7)


@pytest.mark.parametrize(("change", "message"), [
    ({"calling_end": "08:00"}, "ends after it starts"),
    ({"max_attempts_per_day": "9"}, "At most the 7-day cap"),
    ({"holidays": "Christmas"}, "not a date"),
])
def test_rules_that_cannot_hold_are_refused(alice_client, acme, change, message):
    response = alice_client.post(reverse("tenancy:calling_rules"), {**POLICY, **change})
    assert response.status_code == 200 and message in response.content.decode()
    acme.refresh_from_db()
    assert acme.calling_start == datetime.time(9)


def test_it_refuses_a_viewer_and_shows_him_the_rules(bob_client, acme):
    assert "09:00–21:00" in bob_client.get(reverse("tenancy:calling_rules")).content.decode()
    assert bob_client.post(reverse("tenancy:calling_rules"), {"preset": "rbi"}).status_code == 403
    assert Workspace.objects.get(pk=acme.pk).calling_start == datetime.time(9)


def test_the_campaign_page_counts_who_will_be_held_back_before_it_runs(alice_client, campaign):
    make_contact(campaign, phone="+919876543210")
    make_contact(campaign, phone="+12125550123", time_zone="America/New_York")
    make_contact(campaign, phone="+919876543211")
    call_abroad(campaign, 1)
    DoNotCall.objects.create(workspace=campaign.workspace, phone="+919876543211")
    Campaign.objects.filter(pk=campaign.pk).update(window_start=datetime.time(10), window_end=datetime.time(16))

    page = alice_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()

    assert "<b>1</b> will be dialled" in page and "<b>2</b> held back" in page
    assert "On the do-not-call list: 1" in page and "Outside every window: 1" in page
    held = alice_client.get(reverse("campaigns:held", args=[campaign.pk])).content.decode().splitlines()
    assert held[0] == "phone,name,reason,detail,until"
    assert sorted(line.split(",")[0] for line in held[1:]) == ["+12125550123", "+919876543211"]


def test_the_forecast_estimates_the_finish_from_pacing_and_windows(campaign):
    for n in range(60):
        make_contact(campaign, phone=f"+91987654{n:04d}")
    Campaign.objects.filter(pk=campaign.pk).update(calls_per_minute=1)
    campaign = Campaign.objects.select_related("workspace").get(pk=campaign.pk)
    evening = NOON_FRIDAY.replace(hour=15, minute=0)  # 20:30 in Kolkata: half an hour of window left today
    result = forecast.forecast(campaign, now=evening)
    assert (result.dialled, result.waiting, result.capped) == (60, 0, 0)
    # One a minute: 30 tonight until 21:00, the other 30 from Saturday 09:00 (03:30 UTC).
    assert result.finish_at == datetime.datetime(2026, 11, 28, 4, 0, tzinfo=datetime.UTC)


def test_charlie_cannot_download_acmes_held_list(charlie_client, campaign):
    assert charlie_client.get(reverse("campaigns:held", args=[campaign.pk])).status_code == 404


def test_the_compliance_record_lists_each_numbers_attempts_and_holds(alice_client, charlie_client, campaign, alice,
                                                                     monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(dialer, "send_place_calls", lambda ids: None)
    make_contact(campaign, phone="+919876543210")
    make_contact(campaign, phone="+919876543211")
    DoNotCall.objects.create(workspace=campaign.workspace, phone="+919876543211")
    start(campaign, alice, contacts=0, calls_per_minute=600, pace_credit=5, paced_at=NOON_FRIDAY)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)

    rows = [line.split(",", 7) for line in
            b"".join(alice_client.get(reverse("campaigns:compliance")).streaming_content).decode().splitlines()]

    assert rows[0][:3] == ["phone", "at_utc", "local_time"]
    called, skipped = rows[1], rows[2]
    assert called[0] == "+919876543210" and called[2] == "2026-11-27 12:00 Fri Asia/Calcutta"
    assert called[5] == "attempt 1" and "inside policy 09:00–21:00" in called[7]
    assert (skipped[0], skipped[5], skipped[6]) == ("+919876543211", "skipped", Hold.Reason.DO_NOT_CALL)
    theirs = b"".join(charlie_client.get(reverse("campaigns:compliance")).streaming_content).decode()
    assert "+91987654321" not in theirs
