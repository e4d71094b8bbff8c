"""The applier: a delivery is acknowledged first and applied after, once, in its call's order."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from callbacks import applier
from callbacks.models import WebhookEvent
from callbacks.services import applying
from campaigns import legs
from campaigns.models import Call, Contact
from tests.callbacks.conftest import dialled
from tests.callbacks.replay import replay
from tests.conftest import make_campaign
from tests.processes import wait_until

Outcome = WebhookEvent.Outcome


def test_a_delivery_is_acknowledged_before_anything_is_applied(acme, call):
    assert replay(acme, "status_terminal_form", call=call, apply=False).status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.call, event.applied_at) == (Outcome.PENDING, None, None)
    assert Call.objects.get(pk=call.pk).state == Call.State.DIALING

    assert applier.apply_pending() == 1
    event.refresh_from_db()
    assert (event.outcome, event.call) == (Outcome.APPLIED, call)
    assert event.applied_at >= event.received_at
    assert Call.objects.get(pk=call.pk).state == Call.State.COMPLETED


def test_one_calls_deliveries_apply_in_the_order_they_arrived(acme, leg_call):
    # Applied the other way round, the end of an unanswered leg would fail the call.
    replay(acme, "leg_answered", call=leg_call, apply=False)
    replay(acme, "leg_terminated_busy", call=leg_call, apply=False)
    assert applier.apply_pending() == 2
    leg_call.refresh_from_db()
    assert leg_call.state == Call.State.COMPLETED
    assert Contact.objects.get(pk=leg_call.contact_id).outcome == "completed"


def test_deliveries_that_arrive_out_of_order_end_right(acme, call):
    for name in ("status_terminal_form", "status_ringing_form", "status_answered_json", "status_terminal_form"):
        replay(acme, name, call=call, apply=False)
    applier.apply_pending()
    call.refresh_from_db()
    assert (call.state, call.duration) == (Call.State.COMPLETED, 66)
    outcomes = list(WebhookEvent.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.DUPLICATE, Outcome.DUPLICATE]


def test_a_batch_finds_each_deliverys_own_call_in_its_own_workspace(acme, globex, campaign):
    ours = [dialled(campaign, exotel_sid=f"CA{n}") for n in range(3)]
    theirs = dialled(make_campaign(globex), exotel_sid="CA0")  # the same sid in another workspace
    by_leg = dialled(campaign, exotel_sid="", leg_sid="f00dfeed")
    replay(globex, "status_ringing_form", call=theirs, apply=False)
    for call in ours:
        replay(acme, "status_ringing_form", call=call, apply=False)
    replay(acme, "status_terminal_form", call=ours[1], apply=False, token="")  # its sid alone
    replay(acme, "status_ringing_form", call=ours[0], apply=False, sid="CAnobody", token="")
    replay(acme, "leg_answered", call=by_leg, apply=False)  # last: start_stream would end the batch

    assert applier.apply_batch() == 7
    states = {call.pk: state for call, state in zip([*ours, theirs, by_leg], ["ringing", "completed", "ringing",
                                                                             "ringing", "in-progress"], strict=True)}
    assert dict(Call.objects.values_list("pk", "state")) == states
    decided = WebhookEvent.objects.order_by("pk").values_list("workspace", "outcome", "call")
    assert list(decided) == [
        (globex.pk, Outcome.APPLIED, theirs.pk), *((acme.pk, Outcome.APPLIED, call.pk) for call in ours),
        (acme.pk, Outcome.APPLIED, ours[1].pk), (acme.pk, Outcome.ORPHANED, None), (acme.pk, Outcome.APPLIED, by_leg.pk),
    ]


def test_a_batch_costs_a_few_queries_and_a_query_or_so_per_delivery(acme, campaign):
    calls = [dialled(campaign, exotel_sid=f"CA{n}") for n in range(20)]
    for call in calls:
        replay(acme, "status_ringing_form", call=call, apply=False)
    with CaptureQueriesContext(connection) as queries:
        assert applier.apply_batch() == 20
    # The claim, the calls (found and locked at once), one UPDATE a call, the outcomes at once;
    # and the transaction's own statements. It was eight a delivery.
    assert len(queries) <= 3 + 20 + 3


def test_a_delivery_that_raises_is_marked_failed_and_the_rest_of_its_batch_applied(acme, campaign, monkeypatch):
    calls = [dialled(campaign, exotel_sid=f"CA{n}") for n in range(3)]
    broken = calls[1]
    apply_status = applying.APPLIERS[WebhookEvent.Kind.STATUS]

    def a_bug_for_one_call(call, report, at):
        if call.pk == broken.pk:
            raise RuntimeError("a bug of ours")
        return apply_status(call, report, at)

    monkeypatch.setitem(applying.APPLIERS, WebhookEvent.Kind.STATUS, a_bug_for_one_call)
    for call in calls:
        replay(acme, "status_terminal_form", call=call, apply=False)

    assert applier.apply_pending() == 3
    outcomes = list(WebhookEvent.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == [Outcome.APPLIED, Outcome.FAILED, Outcome.APPLIED]
    assert [Call.objects.get(pk=call.pk).state for call in calls] == ["completed", "dialing", "completed"]


def test_malformed_and_stream_url_deliveries_are_never_queued(acme, call):
    replay(acme, "status_terminal_form", call=call, apply=False, sid="CA1", token="")
    WebhookEvent.objects.update(outcome=Outcome.MALFORMED)
    replay(acme, "stream_url_request", call=call, apply=False)  # answered, and applied, in its request
    assert applier.apply_pending() == 0


def test_the_limit_leaves_the_rest_pending(acme, call):
    for _ in range(3):
        replay(acme, "status_ringing_form", call=call, apply=False)
    assert applier.apply_pending(limit=2) == 2
    assert WebhookEvent.objects.filter(outcome=Outcome.PENDING).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_loop_applies_what_was_pending_then_what_arrives_and_stops_when_told(acme, campaign):
    first, second = dialled(campaign), dialled(campaign, exotel_sid="CAsecond")
    replay(acme, "status_terminal_form", call=first, apply=False)  # stored while no applier ran
    stop = threading.Event()
    loop = threading.Thread(target=applier.run, kwargs={"stop": stop})
    loop.start()
    try:
        wait_until(lambda: Call.objects.get(pk=first.pk).state == Call.State.COMPLETED, timeout=30,
                   what="the delivery stored before the applier started")
        replay(acme, "status_terminal_form", call=second, apply=False)
        wait_until(lambda: Call.objects.get(pk=second.pk).state == Call.State.COMPLETED, timeout=30,
                   what="the delivery stored while it waited")
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()


@pytest.mark.django_db(transaction=True)  # follow-ups start on a real commit, as in the applier
def test_a_follow_up_waiting_on_exotel_holds_no_delivery_behind_it(acme, leg_call, campaign, monkeypatch):
    exotel_answers, started, finished = threading.Event(), [], []

    def slow_answer_leg(call_id):
        started.append(call_id)
        exotel_answers.wait(60)
        finished.append(call_id)

    monkeypatch.setattr(legs, "answer_leg", slow_answer_leg)
    other = dialled(campaign, exotel_sid="CAother")
    replay(acme, "leg_answered", call=leg_call, apply=False)
    replay(acme, "status_terminal_form", call=other, apply=False)
    try:
        assert applier.apply_pending() == 2
        assert finished == []  # it returned while start_stream still waited for Exotel
        assert Call.objects.get(pk=other.pk).state == Call.State.COMPLETED
        wait_until(lambda: started == [leg_call.pk], timeout=30, what="the follow-up to start")
    finally:
        exotel_answers.set()
