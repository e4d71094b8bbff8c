"""Campaign pages and actions: who may do what, validation at the field, cross-workspace 404s."""

import csv
import datetime
import io

import pytest
from django.urls import reverse

from campaigns import imports
from campaigns.models import Call, Campaign, CampaignEvent
from streams.models import Prompt
from tenancy.models import Workspace
from tests.campaigns.conftest import private_media  # noqa: F401 (a fixture: the upload's files)
from tests.conftest import make_call, make_campaign, make_contact

pytestmark = pytest.mark.django_db


def form_data(campaign, **overrides):
    data = {
        "name": "Spring renewals", "account": campaign.account_id, "exophones": [campaign.exophones.get().pk],
        "connect_mode": "voice_ai", "bot_kind": "echo", "bot_settings": "{}", "sample_rate": 8000,
        "recording": "off", "time_limit": 3600, "time_zone": "Asia/Kolkata", "window_start": "09:00",
        "window_end": "21:00", "weekdays": ["1", "2", "3"], "calls_per_minute": 10, "max_concurrent": 5,
        "max_attempts": 3, "retry_after_minutes": 30, "retry_on": ["busy"], "machine_detection": "off",
        "on_machine": "hang_up",
    }
    return {**data, **overrides}


def test_the_list_shows_the_workspaces_campaigns_only(alice_client, campaign, globex):
    make_campaign(globex, name="Globex secret")
    page = alice_client.get(reverse("campaigns:list")).content.decode()
    assert "Renewals" in page and "Globex secret" not in page


def test_an_operator_creates_a_campaign_with_every_field(alice_client, alice, campaign):
    data = form_data(campaign, starts_at="2026-12-01T09:30", greeting_text="Hello")
    response = alice_client.post(reverse("campaigns:create"), data)
    created = Campaign.objects.get(name="Spring renewals")
    assert response.status_code == 302 and response.url == reverse("campaigns:upload", args=[created.pk])
    assert created.workspace == campaign.workspace and created.created_by == alice
    assert created.weekdays == [1, 2, 3] and created.retry_on == ["busy"]
    # Typed in the campaign's zone (UTC+5:30), stored in UTC.
    assert created.starts_at.isoformat() == "2026-12-01T04:00:00+00:00"


def test_form_errors_are_shown_at_the_field(alice_client, campaign):
    data = form_data(campaign, connect_mode="flow", time_zone="Mars/Olympus", window_end="09:00", calls_per_minute=0)
    response = alice_client.post(reverse("campaigns:create"), data)
    errors = response.context["form"].errors
    assert set(errors) >= {"flow_url", "time_zone", "window_end", "calls_per_minute"}
    assert "Please correct the fields" in response.content.decode()


def test_a_script_is_checked_on_save(alice_client, campaign):
    bad = form_data(campaign, bot_kind="script", bot_settings='{"steps": [{"goto": "nowhere"}]}')
    errors = alice_client.post(reverse("campaigns:create"), bad).context["form"].errors
    assert "bot_settings" in errors
    Prompt.objects.create(workspace=campaign.workspace, name="hello", audio="prompts/hello.wav")
    good = form_data(campaign, bot_kind="script", bot_settings='{"steps": [{"say": "hello"}, {"hangup": true}]}')
    assert alice_client.post(reverse("campaigns:create"), good).status_code == 302


def test_relay_settings_need_a_websocket_url(alice_client, campaign):
    data = form_data(campaign, bot_kind="relay", bot_settings='{"url": "http://bot.example.com"}')
    assert "bot_settings" in alice_client.post(reverse("campaigns:create"), data).context["form"].errors


def test_bot_settings_must_be_a_json_object(alice_client, campaign):
    data = form_data(campaign, bot_settings="[1, 2]")
    assert "bot_settings" in alice_client.post(reverse("campaigns:create"), data).context["form"].errors


def test_another_workspaces_account_cannot_be_chosen(alice_client, campaign, globex):
    theirs = make_campaign(globex)
    data = form_data(campaign, account=theirs.account_id, exophones=[theirs.exophones.get().pk])
    errors = alice_client.post(reverse("campaigns:create"), data).context["form"].errors
    assert {"account", "exophones"} <= set(errors)


def test_editing_keeps_the_counters_the_engine_moved(alice_client, campaign):
    response = alice_client.get(reverse("campaigns:edit", args=[campaign.pk]))
    assert response.status_code == 200
    Campaign.objects.filter(pk=campaign.pk).update(calls_total=42)
    alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), form_data(campaign, name="Renamed"))
    campaign.refresh_from_db()
    assert campaign.name == "Renamed" and campaign.calls_total == 42


def test_a_viewer_cannot_create_edit_or_run(bob_client, campaign):
    assert bob_client.get(reverse("campaigns:create")).status_code == 403
    assert bob_client.post(reverse("campaigns:edit", args=[campaign.pk]), form_data(campaign)).status_code == 403
    assert bob_client.post(reverse("campaigns:start", args=[campaign.pk])).status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == "draft" and campaign.name == "Renewals"


def test_the_detail_page_shows_counters_charts_and_live_calls(bob_client, campaign):
    make_call(campaign, state="in-progress")
    make_call(campaign, state="completed", disposition="interested")
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=4, contacts_done=1, calls_answered=1)
    response = bob_client.get(campaign.get_absolute_url())
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-counter="calls_answered">1<' in page
    assert 'data-call="' in page
    charts = bob_client.get(reverse("campaigns:charts", args=[campaign.pk]))
    assert "interested" in charts.content.decode()
    assert len(charts.context["hourly"]) == 24 and sum(p["n"] for p in charts.context["hourly"]) == 2
    assert "the tallest bar is 2 calls" in charts.content.decode()  # both calls fall in this hour


def test_the_polled_json_is_one_row_and_the_live_calls(bob_client, campaign, django_assert_num_queries):
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=10, contacts_done=5, calls_total=7, calls_live=2)
    live = make_call(campaign, state="ringing")
    make_call(campaign, state="busy")
    # session, user, membership, the campaign, its live calls
    with django_assert_num_queries(5):
        data = bob_client.get(reverse("campaigns:counters", args=[campaign.pk])).json()
    assert data["progress"] == 50 and data["calls_live"] == 2 and data["state"] == "draft"
    ringing_at = datetime.datetime(2026, 12, 2, 6, 30, 5, tzinfo=datetime.UTC)
    Call.objects.filter(pk=live.pk).update(ringing_at=ringing_at)
    data = bob_client.get(reverse("campaigns:counters", args=[campaign.pk])).json()
    # The last event in the workspace's clock (Asia/Kolkata): 06:30:05 UTC is 12:00:05.
    assert data["live"] == [{"id": live.pk, "phone": live.phone, "state": "Ringing", "event": "ringing at 12:00:05"}]
    assert "ringing at 12:00:05" in bob_client.get(campaign.get_absolute_url()).content.decode()


def test_the_page_lists_the_contacts_waiting_for_another_attempt(bob_client, campaign):
    due = datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.UTC)
    for n in range(7):
        make_contact(campaign, phone=f"+91981110000{n}", attempts=1, outcome="no-answer",
                     next_attempt_at=due + datetime.timedelta(minutes=n))
    make_contact(campaign, phone="+919811100099")  # never tried: not a retry
    page = bob_client.get(campaign.get_absolute_url()).content.decode()
    assert "7 contacts will be called again; the next 5:" in page
    assert "2026-12-02 13:30 IST" in page and "2026-12-02 13:34 IST" in page  # Kolkata, zone named
    assert "13:35 IST" not in page


def test_talk_time_is_said_as_a_total_and_an_average(bob_client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(calls_answered=4, talk_seconds=3 * 3600 + 5 * 60 + 2)
    data = bob_client.get(reverse("campaigns:counters", args=[campaign.pk])).json()
    assert (data["talk_total"], data["talk_average"]) == ("3 h 05 min", "46 min 15 s")
    page = bob_client.get(campaign.get_absolute_url()).content.decode()
    assert "talk time in all" in page and "average talk per answered call" in page
    Campaign.objects.filter(pk=campaign.pk).update(calls_answered=0, talk_seconds=0)
    assert bob_client.get(reverse("campaigns:counters", args=[campaign.pk])).json()["talk_average"] == "—"


def test_start_pause_resume_cancel(alice_client, campaign):
    make_contact(campaign)
    for action, state in [("start", "running"), ("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")]:
        response = alice_client.post(reverse(f"campaigns:{action}", args=[campaign.pk]), follow=True)
        campaign.refresh_from_db()
        assert campaign.state == state, action
        assert response.status_code == 200
    assert CampaignEvent.objects.filter(campaign=campaign).count() == 4


def test_an_impossible_change_is_shown_as_a_message(alice_client, campaign):
    response = alice_client.post(reverse("campaigns:start", args=[campaign.pk]), follow=True)
    assert "needs contacts" in response.content.decode()
    response = alice_client.post(reverse("campaigns:pause", args=[campaign.pk]), follow=True)
    assert "cannot go from" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.state == "draft"


def test_actions_need_post(alice_client, campaign):
    assert alice_client.get(reverse("campaigns:start", args=[campaign.pk])).status_code == 405


def test_the_export_streams_every_call_as_csv(bob_client, campaign, monkeypatch):
    from campaigns import export

    monkeypatch.setattr(export, "BATCH", 2)  # several batches from five rows
    calls = [make_call(campaign, disposition=f"d{i}") for i in range(5)]
    response = bob_client.get(reverse("campaigns:export", args=[campaign.pk]))
    assert response.streaming and response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == export.COLUMNS
    assert sorted(int(r[0]) for r in rows[1:]) == sorted(c.pk for c in calls)


def test_the_export_keeps_the_workspaces_clock_and_the_contacts_variables(bob_client, campaign, private_media):  # noqa: F811
    Workspace.objects.filter(pk=campaign.workspace_id).update(time_zone="Asia/Jakarta")
    imports.import_now(campaign, io.BytesIO(b"phone,name,plan,state\n+919811100011,Asha,gold,KA\n"), region="IN")
    call = make_call(campaign, contact=campaign.contacts.get())
    Call.objects.filter(pk=call.pk).update(created_at=datetime.datetime(2026, 12, 2, 10, 38, 5, 123456, tzinfo=datetime.UTC))
    response = bob_client.get(reverse("campaigns:export", args=[campaign.pk]))
    header, row = csv.reader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert header[-2:] == ["plan", "variable:state"]  # a variable named like a column is told apart
    exported = dict(zip(header, row, strict=True))
    assert exported["created_at"] == "2026-12-02T17:38:05+07:00"
    assert (exported["contact_name"], exported["plan"], exported["variable:state"]) == ("Asha", "gold", "KA")


@pytest.mark.parametrize("name", ["detail", "edit", "counters", "charts", "export", "upload"])
def test_charlie_gets_404_for_acmes_campaign_pages(charlie_client, campaign, name):
    assert charlie_client.get(reverse(f"campaigns:{name}", args=[campaign.pk])).status_code == 404


@pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel"])
def test_charlie_cannot_run_acmes_campaign(charlie_client, campaign, action):
    make_contact(campaign)
    assert charlie_client.post(reverse(f"campaigns:{action}", args=[campaign.pk])).status_code == 404
    campaign.refresh_from_db()
    assert campaign.state == "draft"
    assert not CampaignEvent.objects.exists()


def test_charlie_cannot_edit_acmes_campaign(charlie_client, campaign):
    response = charlie_client.post(reverse("campaigns:edit", args=[campaign.pk]), form_data(campaign, name="Pwned"))
    assert response.status_code == 404
    campaign.refresh_from_db()
    assert campaign.name == "Renewals"


def test_anonymous_visitors_are_sent_to_sign_in(client, campaign):
    response = client.get(campaign.get_absolute_url())
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_overview_shows_capacity_today_and_running_campaigns(alice_client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(state="running", calls_live=3)
    campaign.account.max_allowed_streams = 20
    campaign.account.save()
    make_call(campaign, state="completed")
    response = alice_client.get(reverse("campaigns:overview"))
    assert response.context["live"] == 3 and response.context["capacity"] == 20
    assert response.context["today"]["total"] == 1
    assert "Renewals" in response.content.decode()


def test_list_pages_do_not_grow_queries_with_rows(alice_client, acme, django_assert_max_num_queries):
    for i in range(3):
        make_campaign(acme, name=f"C{i}")
    with django_assert_max_num_queries(8) as few:
        alice_client.get(reverse("campaigns:list"))
    for i in range(10):
        make_campaign(acme, name=f"D{i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        alice_client.get(reverse("campaigns:list"))


def test_the_export_is_named_after_the_campaign_in_any_script(bob_client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(name='नवीनीकरण "Q4"')
    response = bob_client.get(reverse("campaigns:export", args=[campaign.pk]))
    assert response["Content-Disposition"].startswith("attachment; filename*=utf-8''calls-")
