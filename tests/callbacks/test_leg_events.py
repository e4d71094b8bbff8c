"""Leg events (the HTTPS JSON form): progress, the answer that starts stream and greeting, the end."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from callbacks.models import WebhookEvent
from callbacks.services import applying
from campaigns import calls, legs
from campaigns.models import Call, Contact
from tests.callbacks.replay import replay


def test_an_answered_leg_starts_stream_and_greeting_once(acme, leg_call, django_capture_on_commit_callbacks,
                                                         monkeypatch):
    answered = []
    monkeypatch.setattr(legs, "answer_leg", answered.append)  # its requests are tested with the simulator
    follow_ups = ThreadPoolExecutor(1)
    monkeypatch.setattr(applying, "FOLLOW_UPS", follow_ups)  # one of our own, to wait for
    with django_capture_on_commit_callbacks(execute=True):
        assert replay(acme, "leg_ringing", call=leg_call).status_code == 200
        assert replay(acme, "leg_answered", call=leg_call).status_code == 200
        assert replay(acme, "leg_answered", call=leg_call).status_code == 200  # Exotel's retry
    follow_ups.shutdown(wait=True)
    leg_call.refresh_from_db()
    assert leg_call.state == Call.State.IN_PROGRESS
    assert leg_call.answered_at is not None
    assert answered == [leg_call.pk]


def test_a_busy_leg_ends_busy(acme, leg_call):
    replay(acme, "leg_terminated_busy", call=leg_call)
    leg_call.refresh_from_db()
    assert leg_call.state == Call.State.BUSY


def test_a_terminated_answered_leg_completes(acme, leg_call):
    Call.objects.filter(pk=leg_call.pk).update(state=Call.State.IN_PROGRESS)
    leg_call.refresh_from_db()
    leg_call.answered_at = leg_call.dialed_at
    leg_call.save(update_fields=["answered_at"])
    replay(acme, "leg_terminated_busy", call=leg_call)
    leg_call.refresh_from_db()
    assert leg_call.state == Call.State.COMPLETED


def test_say_completed_marks_the_greeting_over_once(acme, leg_call):
    replay(acme, "say_completed", call=leg_call)
    replay(acme, "say_completed", call=leg_call)
    leg_call.refresh_from_db()
    assert leg_call.greeting_ended_at is not None
    assert [e.outcome for e in WebhookEvent.objects.order_by("received_at")] == ["applied", "duplicate"]


def test_a_leg_event_finds_its_call_by_token_before_the_leg_sid_is_saved(acme, campaign):
    from tests.callbacks.conftest import dialled

    call = dialled(campaign, exotel_sid="", leg_sid="")
    replay(acme, "leg_ringing", token=call.token, leg="f00dfeed")
    call.refresh_from_db()
    assert (call.state, call.leg_sid) == ("ringing", "f00dfeed")


def test_the_end_of_a_leg_answered_meanwhile_is_judged_on_the_call_as_it_is_now(acme, leg_call, monkeypatch):
    """`leg_answered` commits between our reading of the call and our lock on it (another request).

    One delivery at a time (`applying.apply`, the applier's way when a batch raised) reads the call,
    then locks it; a batch finds and locks its calls in one query, so it cannot see this race."""
    find_call = applying.find_call

    def answered_while_we_looked(*args):
        found = find_call(*args)
        calls.advance(Call.objects.get(pk=found.pk), Call.State.IN_PROGRESS)
        return found

    monkeypatch.setattr(applying, "find_call", answered_while_we_looked)
    replay(acme, "leg_terminated_busy", call=leg_call, apply=False)
    applying.apply(WebhookEvent.objects.get())

    leg_call.refresh_from_db()
    assert leg_call.state == Call.State.COMPLETED
    assert Contact.objects.get(pk=leg_call.contact_id).outcome == "completed"  # not retried as failed


@pytest.mark.django_db(transaction=True)  # the follow-up runs on a real commit, as in production
def test_a_failing_follow_up_leaves_the_answer_applied_and_acknowledged(acme, leg_call, monkeypatch):
    def exotel_unreachable(call_id):
        raise ConnectionError("Exotel did not answer")

    monkeypatch.setattr(legs, "answer_leg", exotel_unreachable)

    response = replay(acme, "leg_answered", call=leg_call)

    assert response.status_code == 200
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.APPLIED
    assert Call.objects.get(pk=leg_call.pk).state == Call.State.IN_PROGRESS
