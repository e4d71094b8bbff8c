"""The transfer engine without Exotel: who may be transferred, flow hand-overs, call-backs, late events."""

import datetime
import threading
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from callbacks.services import parsing
from campaigns import calls
from campaigns.models import Call, Campaign, Contact
from streams.bots.script import validate_script
from streams.handover import summarise
from tests.conftest import make_call, wait_for_a_lock_waiter
from tests.transfers.test_agents import make_agent, make_group
from transfers import engine
from transfers.models import Transfer

pytestmark = pytest.mark.django_db


def transferable(campaign, mode=Campaign.ConnectMode.FLOW):
    Campaign.objects.filter(pk=campaign.pk).update(connect_mode=mode, flow_url="https://my.exotel.com/a/exoml/start_voice/1",
                                                   transfer_group=make_group(campaign.workspace, make_agent(campaign.workspace)))
    return make_call(campaign, state=Call.State.IN_PROGRESS, leg_sid="leg1")


def test_no_group_or_voice_ai_means_no_transfer_and_the_bot_goes_on(campaign):
    call = make_call(campaign, state=Call.State.IN_PROGRESS)
    assert engine.request_transfer(call.pk, whisper="").reason == "the campaign names no agent group"
    call = transferable(campaign, Campaign.ConnectMode.VOICE_AI)
    plan = engine.request_transfer(call.pk, whisper="")
    assert plan.mode == "none" and "Voice AI" in plan.reason and not Transfer.objects.exists()


def test_a_flow_call_is_handed_over_once_and_the_agent_is_learnt_from_passthru(campaign):
    call = transferable(campaign)
    plan = engine.request_transfer(call.pk, whisper="Caller Asha.")
    assert plan.mode == "flow"
    assert engine.request_transfer(call.pk, whisper="again").mode == "none"  # a second request changes nothing
    call.refresh_from_db()
    assert call.disposition == "transferred" and Transfer.objects.get().state == Transfer.State.HANDED_OVER
    # Exotel's Passthru after the Transfer (Connect) applet, the agent in national form.
    report = parsing.parse_passthru({"CallSid": "CA1", "CustomField": call.token, "DialWhomNumber": "09876543210"})
    assert report.agent_number == "09876543210"
    assert engine.note_flow_agent(call, report.agent_number, timezone.now())
    transfer = Transfer.objects.select_related("agent").get()
    assert (transfer.state, transfer.agent.name) == (Transfer.State.BRIDGED, "Ravi")
    assert not engine.note_flow_agent(call, report.agent_number, timezone.now())  # a duplicate delivery


def test_the_callers_hour_is_the_next_such_hour_in_the_campaigns_zone(campaign):
    call = transferable(campaign, Campaign.ConnectMode.LEGS)
    transfer = Transfer.objects.create(workspace=campaign.workspace, call=call, token="t", requested_at=timezone.now(),
                                       state=Transfer.State.FALLBACK)
    zone = zoneinfo.ZoneInfo(campaign.time_zone)
    now = datetime.datetime(2026, 12, 2, 19, 30, tzinfo=zone)
    assert engine.schedule_callback(transfer.pk, 24, now=now) is None
    assert engine.schedule_callback(transfer.pk, 18, now=now) == datetime.datetime(2026, 12, 3, 18, 0, tzinfo=zone)
    assert engine.schedule_callback(transfer.pk, 21, now=now) == datetime.datetime(2026, 12, 2, 21, 0, tzinfo=zone)


def test_a_call_back_is_the_contacts_next_attempt_whatever_the_retry_policy(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(max_attempts=1)
    call = transferable(campaign, Campaign.ConnectMode.LEGS)
    Contact.objects.filter(pk=call.contact_id).update(state=Contact.State.CALLING, attempts=1)
    at = timezone.now() + datetime.timedelta(hours=3)
    Transfer.objects.create(workspace=campaign.workspace, call=call, token="t", requested_at=timezone.now(),
                            state=Transfer.State.CALLBACK, callback_at=at)
    assert calls.advance(call, Call.State.COMPLETED)
    contact = Contact.objects.get(pk=call.contact_id)
    assert (contact.state, contact.attempts, contact.next_attempt_at) == ("pending", 1, at)


def test_bridge_events_are_read_by_their_bridge_and_late_ones_change_nothing(campaign):
    event = parsing.parse_leg_event({"event_name": "bridge_created", "data": {"bridge_sid": "br1", "state": "active"}})
    assert event.data["bridge_sid"] == "br1"
    with pytest.raises(parsing.Malformed):
        parsing.parse_leg_event({"event_name": "bridge_created", "data": {}})
    call = transferable(campaign, Campaign.ConnectMode.LEGS)
    transfer = Transfer.objects.create(workspace=campaign.workspace, call=call, token="t", requested_at=timezone.now(),
                                       state=Transfer.State.WHISPERING, bridge_sid="br1")
    now = timezone.now()
    assert engine.on_bridge_event(campaign.workspace_id, "bridge_created", "br1", now)
    assert not engine.on_bridge_event(campaign.workspace_id, "bridge_created", "br1", now)
    assert engine.on_bridge_event(campaign.workspace_id, "bridge_terminal", "br1", now + datetime.timedelta(seconds=9))
    transfer.refresh_from_db()
    assert (transfer.state, transfer.talk_seconds) == (Transfer.State.ENDED, 9)
    assert not engine.on_bridge_event(campaign.workspace_id + 1, "bridge_terminal", "br1", now)  # another tenant's


def test_a_bridge_created_before_its_sid_was_saved_is_found_by_the_agents_leg(campaign):
    call = transferable(campaign, Campaign.ConnectMode.LEGS)
    transfer = Transfer.objects.create(workspace=campaign.workspace, call=call, token="t", requested_at=timezone.now(),
                                       state=Transfer.State.WHISPERING, agent_leg_sid="agentleg")
    now = timezone.now()
    assert not engine.on_bridge_event(campaign.workspace_id + 1, "bridge_created", "br2", now, ["agentleg"])
    assert engine.on_bridge_event(campaign.workspace_id, "bridge_created", "br2", now, [call.leg_sid, "agentleg"])
    transfer.refresh_from_db()
    assert (transfer.state, transfer.bridge_sid, transfer.bridged_at) == (Transfer.State.BRIDGED, "br2", now)


@pytest.mark.django_db(transaction=True)
def test_a_bridge_created_applied_while_its_sid_is_being_saved_is_not_lost(campaign):
    """Exotel sends bridge_created as it answers create_bridge: the applier may read the event while `bridge`
    saves the sid. Here the save holds the row while the event is applied, and commits once the event waits."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL's")
    call = transferable(campaign, Campaign.ConnectMode.LEGS)
    transfer = Transfer.objects.create(workspace=campaign.workspace, call=call, token="t", requested_at=timezone.now(),
                                       state=Transfer.State.WHISPERING, agent_leg_sid="agentleg")
    now, applied = timezone.now(), []

    def apply_bridge_created():
        try:
            applied.append(engine.on_bridge_event(campaign.workspace_id, "bridge_created", "br3", now,
                                                  [call.leg_sid, "agentleg"]))
        finally:
            connection.close()

    applier = threading.Thread(target=apply_bridge_created)
    with transaction.atomic():
        Transfer.objects.filter(pk=transfer.pk, bridge_sid="").update(bridge_sid="br3")  # as `bridge` saves it
        applier.start()
        wait_for_a_lock_waiter("the event to wait for the transfer's row")
    applier.join(timeout=60)
    assert applied == [True]
    transfer.refresh_from_db()
    assert (transfer.state, transfer.bridge_sid, transfer.bridged_at) == (Transfer.State.BRIDGED, "br3", now)


@pytest.mark.parametrize(("step", "message"), [
    ({"transfer": {"whisper": 5}}, "whisper a text"),
    ({"transfer": {"whisper": "x" * 301}}, "at most 300"),
    ({"transfer": {"agent": "Ravi"}}, "transfer takes true"),
    ({"transfer": "yes"}, "transfer takes true"),
])
def test_the_scripts_transfer_step_is_checked(step, message):
    with pytest.raises(ValidationError, match=message):
        validate_script({"steps": [step]})
    validate_script({"steps": [{"transfer": True}, {"transfer": {"message": "hold-{language}", "whisper": "Plan {plan}"}}]})


def test_the_whisper_summarises_the_call():
    text = summarise({"name": "Asha", "phone": "+919876500001", "plan": "gold", "empty": ""}, "12", "Wants a refund.")
    assert text == "Caller Asha, +919876500001. Details: plan gold. Keyed 1 2. Wants a refund."


def test_the_calls_timeline_and_the_campaign_page_show_the_transfer(alice_client, campaign):
    from django.urls import reverse

    call = transferable(campaign, Campaign.ConnectMode.LEGS)
    Campaign.objects.filter(pk=campaign.pk).update(calls_answered=4)
    at = timezone.now()
    Transfer.objects.create(
        workspace=campaign.workspace, call=call, token="t", requested_at=at, state=Transfer.State.ENDED,
        agent=campaign.workspace.agents.get(), agent_phone="+919876543210", whisper="Caller Asha.",
        tried=[{"agent": 0, "name": "Meena", "phone": "+919876500001", "outcome": "busy", "at": at.isoformat()},
               {"agent": 1, "name": "Ravi", "phone": "+919876543210", "outcome": "answered", "at": at.isoformat()}],
        answered_at=at + datetime.timedelta(seconds=4), bridged_at=at + datetime.timedelta(seconds=8.5),
        ended_at=at + datetime.timedelta(seconds=70))
    page = alice_client.get(reverse("campaigns:call", args=[call.pk])).content.decode()
    for text in ("Transfer requested", "Ringing agent Meena", "busy", "Caller connected to Ravi", "waited 8.5 s",
                 "Conversation with Ravi ended", "talked 62 s"):
        assert text in page, text
    page = alice_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "25%" in page and "8.5 s" in page and "average wait for an agent" in page
