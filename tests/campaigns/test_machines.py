"""Answering machines: the campaign's setting and its checks, Exotel's verdicts as delivered (Legs'
amd_result_success, Connect's AnsweredBy), the first verdict deciding, and the retry accounting."""

import datetime
import importlib

import pytest
from django.apps import apps
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from callbacks.models import WebhookEvent
from callbacks.services import parsing
from campaigns import calls, legs, machines, queries, rollups
from campaigns.models import Call, Campaign, Contact, QuarterRollup
from streams.models import Prompt
from tests.callbacks.conftest import dialled
from tests.callbacks.replay import replay
from tests.campaigns.test_campaign_views import form_data
from tests.conftest import make_call

pytestmark = pytest.mark.django_db


def detecting(campaign, **fields):
    fields = {"machine_detection": "on", "on_machine": "hang_up", **fields}
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    campaign.refresh_from_db()
    return campaign


def answered(call, seconds_ago=3.0):
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    calls.advance(call, Call.State.IN_PROGRESS, at=at)
    return at


# --- the setting -----------------------------------------------------------------------------------

def test_an_operator_sets_machine_detection_and_sees_it_on_the_campaign(alice_client, campaign):
    Prompt.objects.create(workspace=campaign.workspace, name="sorry-we-missed-you", audio="prompts/x.wav")
    data = form_data(campaign, connect_mode="legs", machine_detection="async", on_machine="leave_message",
                     voicemail_prompt="sorry-we-missed-you")
    response = alice_client.post(reverse("campaigns:create"), data)
    created = Campaign.objects.get(name="Spring renewals")
    assert response.status_code == 302
    assert (created.machine_detection, created.on_machine, created.voicemail_prompt) == (
        "async", "leave_message", "sorry-we-missed-you")
    page = alice_client.get(created.get_absolute_url()).content.decode()
    assert "leave the message “sorry-we-missed-you”" in page
    assert 'data-counter="calls_machine">0<' in page and "Answering machine" in page  # apart from the answered


@pytest.mark.parametrize(("changes", "field"), [
    ({"machine_detection": "on", "on_machine": "leave_message"}, "voicemail_prompt"),
    ({"machine_detection": "on", "on_machine": "leave_message", "voicemail_prompt": "nowhere"}, "voicemail_prompt"),
    ({"machine_detection": "async", "connect_mode": "voice_ai"}, "machine_detection"),
    ({"machine_detection": "sometimes"}, "machine_detection"),
    ({"machine_detection": "on", "on_machine": "shout"}, "on_machine"),
])
def test_the_form_refuses_a_setting_that_cannot_work(alice_client, campaign, changes, field):
    response = alice_client.post(reverse("campaigns:create"), form_data(campaign, **changes))
    assert field in response.context["form"].errors
    assert not Campaign.objects.filter(name="Spring renewals").exists()


def test_another_workspaces_prompt_is_no_prompt_here(alice_client, campaign, globex):
    Prompt.objects.create(workspace=globex, name="theirs", audio="prompts/x.wav")
    data = form_data(campaign, machine_detection="on", on_machine="leave_message", voicemail_prompt="theirs")
    assert "voicemail_prompt" in alice_client.post(reverse("campaigns:create"), data).context["form"].errors


# --- reading Exotel's verdicts ---------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "verdict"), [
    ({"AnsweredBy": "machine"}, "machine"),
    ({"Legs[0][AnsweredBy]": "human"}, "human"),
    ({"Legs": [{"AnsweredBy": "machine_end_beep"}]}, "machine"),
    ({"Legs": [{"Status": "completed"}], "AnsweredBy": ""}, ""),
    ({"legs[0][answeredby]": "fax"}, "machine"),
    ({"Legs[0][AnsweredBy]": "who knows"}, "unknown"),
])
def test_answered_by_is_read_in_every_shape(fields, verdict):
    report = parsing.parse_status({"CallSid": "CA1", "Status": "in-progress", **fields})
    assert report.answered_by == verdict


def test_an_amd_event_names_its_verdict_in_any_key_or_none():
    def event(data):
        return parsing.parse_leg_event({"event_name": "amd_result_success", "event_data": data,
                                        "data": {"leg_sid": "L1"}})

    assert parsing.amd_result(event({"answered_by": "machine"})) == "machine"
    assert parsing.amd_result(event({"AMD_Result": "HUMAN"})) == "human"
    assert parsing.amd_result(event({})) == "unknown"


# --- the decision ----------------------------------------------------------------------------------

def test_the_first_definite_verdict_decides_and_each_sources_first_is_kept(campaign,
                                                                           django_capture_on_commit_callbacks):
    call = dialled(detecting(campaign))
    answered_at = answered(call)
    cache.delete(machines.decision_key(call.pk))
    with django_capture_on_commit_callbacks(execute=True):
        unsure = machines.record_verdict(call.pk, source="exotel", result="unknown", at=answered_at)
        heard = machines.record_verdict(call.pk, source="audio", result="machine", reason="beep",
                                        at=answered_at + datetime.timedelta(milliseconds=2400))
        late = machines.record_verdict(call.pk, source="exotel", result="human", at=answered_at)
    call.refresh_from_db()
    assert (unsure, heard, late) == ("", "machine", "machine")
    assert (call.answered_by, call.answered_by_source, call.answered_by_ms) == ("machine", "audio", 2400)
    assert call.amd_verdicts == {"exotel": {"result": "unknown", "ms": 0, "reason": ""},
                                 "audio": {"result": "machine", "ms": 2400, "reason": "beep"}}
    assert cache.get(machines.decision_key(call.pk)) == "machine"


def test_a_legs_amd_event_is_applied_once_and_shown_on_the_calls_timeline(alice_client, acme, campaign,
                                                                           monkeypatch):
    Campaign.objects.filter(pk=campaign.pk).update(connect_mode="legs")
    call = dialled(detecting(campaign, on_machine="leave_message", voicemail_prompt="p"), exotel_sid="",
                   leg_sid="a1b2c3d4e5f6a7b8c9d0")
    answered(call)
    replay(acme, "leg_amd_result_machine", call=call)
    replay(acme, "leg_amd_result_machine", call=call)  # Exotel's retry
    call.refresh_from_db()
    assert (call.answered_by, call.answered_by_source) == ("machine", "exotel")
    assert 2500 <= call.answered_by_ms <= 60_000
    assert [e.outcome for e in WebhookEvent.objects.order_by("received_at")] == ["applied", "duplicate"]
    page = alice_client.get(call.get_absolute_url()).content.decode()
    assert "Decided: machine (Exotel)" in page and "Machine (by Exotel" in page


def test_a_machine_that_legs_holds_for_the_verdict_is_hung_up_instead_of_streamed(acme, campaign, monkeypatch):
    Campaign.objects.filter(pk=campaign.pk).update(connect_mode="legs")
    call = dialled(detecting(campaign), exotel_sid="", leg_sid="a1b2c3d4e5f6a7b8c9d0")
    hung_up = []
    monkeypatch.setattr(legs, "hang_up_machine", hung_up.append)
    replay(acme, "leg_amd_result_machine", call=call)  # before leg_answered: Exotel held the answer
    calls.advance(call, Call.State.IN_PROGRESS)
    legs.answer_leg(call.pk)
    assert hung_up == [call.pk]


def test_connect_mode_takes_answered_by_from_the_status_callback(acme, campaign):
    call = dialled(detecting(campaign))
    replay(acme, "status_answered_machine_json", call=call)
    call.refresh_from_db()
    assert (call.state, call.answered_by, call.answered_by_source, call.answered_by_ms) == (
        "in-progress", "machine", "exotel", 0)


def test_answered_by_is_ignored_when_the_campaign_does_not_detect_machines(acme, campaign):
    call = dialled(campaign)
    replay(acme, "status_terminal_machine_form", call=call)
    call.refresh_from_db()
    contact = Contact.objects.get(pk=call.contact_id)
    assert (call.answered_by, call.amd_verdicts, contact.outcome) == ("", {}, "completed")


# --- retries ---------------------------------------------------------------------------------------

def test_a_machine_hung_up_on_is_dialled_again_as_a_no_answer(campaign):
    call = dialled(detecting(campaign, retry_on=["no-answer"], retry_after_minutes=5))
    machines.record_verdict(call.pk, source="audio", result="machine", at=answered(call))
    calls.set_disposition(call.pk, machines.MACHINE_HUNG_UP)
    calls.advance(call, Call.State.COMPLETED, duration=4)
    contact = Contact.objects.get(pk=call.contact_id)
    campaign.refresh_from_db()
    assert (contact.state, contact.attempts) == (Contact.State.PENDING, 1)
    assert contact.next_attempt_at > call.ended_at + datetime.timedelta(minutes=4)
    # Not an answered call, nor talk: the answer rate and the talk per answered call are people's.
    assert (campaign.calls_machine, campaign.calls_answered, campaign.talk_seconds, campaign.contacts_done) == (
        1, 0, 0, 0)
    assert queries.counters(campaign)["answer_rate"] == 0
    assert (rollups.recount_quarters(Call.objects.filter(pk=call.pk))[0]["answered"],
            QuarterRollup.objects.get(campaign=campaign).answered) == (0, 0)


def test_a_machine_first_named_by_the_terminal_callback_is_counted_and_retried_as_one(acme, campaign):
    call = dialled(detecting(campaign, retry_on=["no-answer"]))
    replay(acme, "status_terminal_machine_form", call=call)
    call.refresh_from_db()
    campaign.refresh_from_db()
    contact = Contact.objects.get(pk=call.contact_id)
    assert (call.state, call.answered_by, contact.state) == ("completed", "machine", Contact.State.PENDING)
    assert (campaign.calls_machine, campaign.calls_answered, campaign.talk_seconds) == (1, 0, 0)


def test_a_machine_on_the_last_attempt_ends_the_contact_as_machine(campaign):
    call = dialled(detecting(campaign, retry_on=["no-answer"]))
    Contact.objects.filter(pk=call.contact_id).update(attempts=2)
    Call.objects.filter(pk=call.pk).update(attempt=2)
    call.refresh_from_db()
    machines.record_verdict(call.pk, source="exotel", result="machine", at=answered(call))
    calls.advance(call, Call.State.COMPLETED)
    contact = Contact.objects.get(pk=call.contact_id)
    assert (contact.state, contact.outcome) == (Contact.State.DONE, "machine")


def test_a_machine_is_not_retried_when_the_campaign_does_not_retry_no_answers(campaign):
    call = dialled(detecting(campaign, retry_on=["busy"]))
    machines.record_verdict(call.pk, source="audio", result="machine", at=answered(call))
    calls.advance(call, Call.State.COMPLETED)
    assert Contact.objects.get(pk=call.contact_id).outcome == "machine"


def test_a_message_left_ends_the_contact(campaign):
    call = dialled(detecting(campaign, retry_on=["no-answer"], on_machine="leave_message", voicemail_prompt="p"))
    machines.record_verdict(call.pk, source="audio", result="machine", at=answered(call))
    calls.set_disposition(call.pk, machines.VOICEMAIL_LEFT)
    calls.advance(call, Call.State.COMPLETED)
    contact = Contact.objects.get(pk=call.contact_id)
    assert (contact.state, contact.outcome) == (Contact.State.DONE, "voicemail_left")


def test_a_person_completes_as_before(campaign):
    call = dialled(detecting(campaign, retry_on=["no-answer"]))
    machines.record_verdict(call.pk, source="audio", result="human", at=answered(call))
    calls.advance(call, Call.State.COMPLETED, duration=30)
    campaign.refresh_from_db()
    assert Contact.objects.get(pk=call.contact_id).outcome == "completed"
    assert (campaign.calls_machine, campaign.calls_answered, campaign.talk_seconds) == (0, 1, 30)


def test_the_migration_takes_machines_counted_as_answered_out_of_the_answered_calls_and_the_charts(campaign):
    migration = importlib.import_module("campaigns.migrations.0016_machines_are_not_answered")
    at = timezone.now()
    for answered_by, duration in (("machine", 20), ("machine", None), ("human", 40), ("", 10)):
        make_call(campaign, state=Call.State.COMPLETED, answered_at=at, ended_at=at, answered_by=answered_by,
                  duration=duration)
    # As the engine counted them before: every one answered, every duration talk, in the charts too.
    Campaign.objects.filter(pk=campaign.pk).update(calls_answered=4, calls_machine=2, talk_seconds=70)
    QuarterRollup.objects.filter(campaign=campaign).update(answered=4)

    migration.uncount(apps, None)

    campaign.refresh_from_db()
    assert (campaign.calls_answered, campaign.calls_machine, campaign.talk_seconds) == (2, 2, 50)
    assert [q.answered for q in QuarterRollup.objects.filter(campaign=campaign)] == [
        r["answered"] for r in rollups.recount_quarters(Call.objects.filter(campaign=campaign))] == [2]
