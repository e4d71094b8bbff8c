"""Status callbacks in every documented shape: applied once, in any order, matched by sid or token."""

from callbacks import applier
from callbacks.models import WebhookEvent
from campaigns.models import Call, Campaign, Contact
from tests.callbacks.replay import replay

Outcome = WebhookEvent.Outcome


def test_a_call_rings_is_answered_and_completes(acme, call):
    assert replay(acme, "status_ringing_form", call=call).status_code == 200
    assert replay(acme, "status_answered_json", call=call).status_code == 200
    assert replay(acme, "status_terminal_form", call=call).status_code == 200

    call.refresh_from_db()
    assert call.state == Call.State.COMPLETED
    assert (call.duration, call.recording_url.endswith(".mp3")) == (66, True)
    assert call.ringing_at <= call.answered_at <= call.ended_at
    campaign = call.campaign
    campaign.refresh_from_db()
    assert (campaign.calls_live, campaign.calls_answered, campaign.talk_seconds, campaign.contacts_done) == (0, 1, 66, 1)
    assert campaign.state == Campaign.State.COMPLETED
    contact = call.contact
    contact.refresh_from_db()
    assert (contact.state, contact.outcome) == ("done", "completed")
    assert list(WebhookEvent.objects.values_list("outcome", flat=True)) == [Outcome.APPLIED] * 3


def test_the_raw_delivery_is_kept_with_its_call(acme, call):
    replay(acme, "status_terminal_form", call=call)
    event = WebhookEvent.objects.get()
    assert (event.kind, event.method, event.call) == ("status", "POST", call)
    assert "ConversationDuration=66" in event.body
    assert event.content_type == "application/x-www-form-urlencoded"


def test_a_repeated_delivery_changes_nothing(acme, call):
    replay(acme, "status_terminal_form", call=call)
    before = Campaign.objects.values().get(pk=call.campaign_id)
    assert replay(acme, "status_terminal_form", call=call).status_code == 200
    after = Campaign.objects.values().get(pk=call.campaign_id)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {k: v for k, v in before.items() if k != "updated_at"}
    assert WebhookEvent.objects.order_by("received_at").last().outcome == Outcome.DUPLICATE


def test_a_late_in_progress_never_overwrites_completed(acme, call):
    replay(acme, "status_terminal_form", call=call)
    replay(acme, "status_answered_json", call=call)
    replay(acme, "status_ringing_form", call=call)
    call.refresh_from_db()
    assert call.state == Call.State.COMPLETED
    assert WebhookEvent.objects.filter(outcome=Outcome.DUPLICATE).count() == 2


def test_a_busy_call_schedules_the_next_attempt(acme, call):
    assert replay(acme, "status_terminal_busy_multipart", call=call).status_code == 200
    call.refresh_from_db()
    contact = call.contact
    contact.refresh_from_db()
    assert (call.state, contact.state) == ("busy", "pending")
    assert contact.next_attempt_at is not None
    assert Campaign.objects.get(pk=call.campaign_id).calls_busy == 1


def test_the_token_finds_a_call_whose_sid_was_never_saved(acme, campaign):
    from tests.callbacks.conftest import dialled

    call = dialled(campaign, exotel_sid="", state=Call.State.UNKNOWN)
    replay(acme, "status_terminal_form", call=call, sid="CAlearntlate")
    call.refresh_from_db()
    assert (call.state, call.exotel_sid) == ("completed", "CAlearntlate")


def test_a_callback_for_an_unknown_call_is_kept_as_orphaned_and_acknowledged(acme, call):
    response = replay(acme, "status_terminal_form", sid="CAnobody", token="not-a-token-of-ours")
    assert response.status_code == 200
    assert WebhookEvent.objects.get().outcome == Outcome.ORPHANED
    assert Contact.objects.get().state == Contact.State.CALLING


def test_another_workspaces_call_is_never_touched(acme, globex, call):
    response = replay(globex, "status_terminal_form", call=call)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.workspace, event.outcome, event.call) == (globex, Outcome.ORPHANED, None)
    call.refresh_from_db()
    assert call.state == Call.State.DIALING


def test_a_call_whose_terminal_callback_came_first_still_counts_as_answered(acme, call):
    replay(acme, "status_terminal_form", call=call)
    replay(acme, "status_answered_json", call=call)
    assert Campaign.objects.get(pk=call.campaign_id).calls_answered == 1


def test_the_token_in_the_callback_url_finds_a_call_before_its_sid_is_saved(acme, campaign):
    from django.test import Client
    from django.urls import reverse

    from tests.callbacks.conftest import dialled

    call = dialled(campaign, exotel_sid="")
    url = reverse("callbacks:status", args=[acme.webhook_token]) + f"?call={call.token}"
    Client().post(url, {"CallSid": "CAearly", "Status": "ringing", "EventType": "ringing"})
    applier.apply_pending()
    call.refresh_from_db()
    assert (call.state, call.exotel_sid) == ("ringing", "CAearly")
