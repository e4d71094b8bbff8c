"""Reconciliation against the real simulator: calls whose callbacks were lost are settled from
Exotel's Call Details (Get Leg for Legs), through the callbacks' path, with the retry policy.

No web server runs here, so every status callback and leg event the simulator sends is lost: the
situation a web-server restart creates.
"""

import datetime
import json
import logging

import httpx
import pytest
from django.db.models import F
from django.utils import timezone

from campaigns import dialer, reconcile, tasks
from campaigns.models import Call, Campaign, Contact
from streams.models import StreamSession
from tests import processes
from tests.conftest import make_account, make_call, make_campaign, make_contact

BUSY, ANSWERS, RINGS_LONG = "+919700000001", "+919700000002", "+919700000003"
LATER = datetime.timedelta(hours=2)  # past any expected end: ring timeout or time limit, plus grace
SIMULATOR_CONFIG = {
    "default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 0.5},
    "numbers": {BUSY: {"outcome": "busy", "ring_seconds": 0.2}, RINGS_LONG: {"ring_seconds": 600}},
}


@pytest.fixture
def campaign(acme, sim):
    campaign = make_campaign(acme, account=make_account(acme, api_base_url=sim.url), max_attempts=2,
                             retry_after_minutes=30)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.RUNNING)
    campaign.refresh_from_db()
    return campaign


def dialled(campaign, phone) -> Call:
    """A call placed for real through the simulator; its callbacks go nowhere."""
    contact = make_contact(campaign, phone=phone, state=Contact.State.CALLING, attempts=1)
    call = make_call(campaign, contact=contact, attempt=1)
    Campaign.objects.filter(pk=campaign.pk).update(calls_total=F("calls_total") + 1, calls_live=F("calls_live") + 1,
                                                   contacts_total=F("contacts_total") + 1)
    dialer.place_call(call.pk)
    call.refresh_from_db()
    assert call.exotel_sid or call.leg_sid
    return call


def ended_in_simulator(sim, sid) -> dict:
    def ended():
        calls = {c["sid"]: c for c in httpx.get(f"{sim.url}/_sim/calls").json()}
        return calls[sid]["status"] in ("completed", "busy", "no-answer", "failed") and calls[sid]
    return processes.wait_until(ended, timeout=15, what=f"call {sid} to end in the simulator")


def details_requests(sim) -> list[dict]:
    lines = sim.extra["wire_log"].read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "request" and r["method"] == "GET"
            and "/activestreams" not in r["path"].lower()]


def test_a_call_whose_callbacks_were_lost_is_settled_from_call_details_and_retried(campaign, sim):
    call = dialled(campaign, BUSY)
    ended_in_simulator(sim, call.exotel_sid)

    assert reconcile.reconcile_account(campaign.account_id, now=timezone.now() + LATER) == 1

    call.refresh_from_db()
    campaign.refresh_from_db()
    contact = Contact.objects.get(pk=call.contact_id)
    assert call.state == Call.State.BUSY and call.ended_at
    assert (campaign.calls_live, campaign.calls_busy) == (0, 1)
    assert contact.state == Contact.State.PENDING and contact.next_attempt_at  # busy: retried per policy
    # Settled: the next sweep has nothing to ask about.
    assert reconcile.reconcile_account(campaign.account_id, now=timezone.now() + LATER) == 0


def test_a_legs_call_is_settled_from_get_leg(campaign, sim):
    Campaign.objects.filter(pk=campaign.pk).update(connect_mode=Campaign.ConnectMode.LEGS)
    call = dialled(campaign, ANSWERS)
    ended_in_simulator(sim, call.leg_sid)

    reconcile.reconcile_account(campaign.account_id, now=timezone.now() + LATER)

    call.refresh_from_db()
    assert call.state == Call.State.COMPLETED
    assert Contact.objects.get(pk=call.contact_id).outcome == "completed"
    assert any(r["path"] == f"/v2/accounts/acme1/legs/{call.leg_sid}" for r in details_requests(sim))


def test_a_call_still_live_at_exotel_is_left_live(campaign, sim):
    call = dialled(campaign, RINGS_LONG)
    assert not reconcile.reconcile_account(campaign.account_id, now=timezone.now() + LATER)
    call.refresh_from_db()
    assert call.state == Call.State.RINGING  # what Exotel said, applied; not final


def test_a_call_exotel_does_not_know_fails_and_the_retry_policy_decides(campaign, sim):
    call = make_call(campaign, contact=make_contact(campaign, state=Contact.State.CALLING, attempts=1), attempt=1,
                     state=Call.State.RINGING, exotel_sid="0123456789abcdef", dialed_at=timezone.now())
    reconcile.reconcile_account(campaign.account_id, now=timezone.now() + LATER)
    call.refresh_from_db()
    assert call.state == Call.State.FAILED and "no record" in call.error
    assert Contact.objects.get(pk=call.contact_id).state == Contact.State.PENDING


def test_when_exotel_fails_the_accounts_batch_stops_and_nothing_changes(campaign, sim):
    calls = [make_call(campaign, state=Call.State.RINGING, exotel_sid=f"sid{n}", dialed_at=timezone.now())
             for n in range(3)]
    httpx.put(f"{sim.url}/_sim/faults", json=[{"endpoint": "call_details", "kind": "status", "status": 500}])
    before = len(details_requests(sim))

    assert reconcile.reconcile_account(campaign.account_id, now=timezone.now() + LATER) == 0

    assert len(details_requests(sim)) - before == 1  # one attempt, then the batch waits for the next sweep
    assert {c.state for c in Call.objects.filter(pk__in=[c.pk for c in calls])} == {Call.State.RINGING}


def test_only_overdue_calls_with_a_sid_are_asked_about(campaign, acme):
    now = timezone.now()
    short = make_campaign(acme, account=campaign.account, time_limit=60)

    def call(camp, **fields):
        return make_call(camp, state=fields.pop("state", Call.State.IN_PROGRESS), exotel_sid=fields.pop("sid", "s"),
                         **fields).pk

    ago = lambda seconds: now - datetime.timedelta(seconds=seconds)  # noqa: E731
    # Defaults: ring timeout 60 s, grace 60 s; the campaign's time limit is 3600 s.
    overdue = {
        call(campaign, state=Call.State.RINGING, dialed_at=ago(121)),
        call(campaign, dialed_at=ago(4000), answered_at=ago(3661)),
        call(short, dialed_at=ago(200), answered_at=ago(121)),
        call(campaign, state=Call.State.DIALING, sid="", leg_sid="L1", dialed_at=ago(121)),
    }
    call(campaign, state=Call.State.RINGING, dialed_at=ago(119))  # still within its ring time
    call(campaign, dialed_at=ago(300), answered_at=ago(200))  # answered, within its hour
    call(campaign, state=Call.State.UNKNOWN, sid="", dialed_at=ago(9000))  # no sid: the reaper's
    call(campaign, state=Call.State.COMPLETED, dialed_at=ago(9000), answered_at=ago(9000))  # final

    assert set(reconcile.overdue(now=now).values_list("pk", flat=True)) == overdue
    assert reconcile.pending_by_campaign([campaign.pk, short.pk], now=now) == {campaign.pk: 3, short.pk: 1}


def test_the_sweep_sends_one_task_per_account(campaign, acme, monkeypatch):
    other = make_campaign(acme, account=make_account(acme, account_sid="acme2", label="Second"))
    for camp in (campaign, campaign, other):
        make_call(camp, state=Call.State.RINGING, exotel_sid="s", dialed_at=timezone.now() - LATER)
    sent = []
    monkeypatch.setattr(tasks.reconcile_account, "delay", sent.append)
    assert reconcile.sweep() == 2
    assert sorted(sent) == sorted([campaign.account_id, other.account_id])


def test_a_call_whose_stream_ended_without_a_final_status_is_asked_about_soon(campaign, sim):
    call = dialled(campaign, BUSY)
    ended_in_simulator(sim, call.exotel_sid)
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS, answered_at=now)
    StreamSession.objects.create(workspace=campaign.workspace, call=call, started_at=now,
                                 ended_at=now - datetime.timedelta(seconds=21))
    # Within its hour's time limit, yet overdue: its stream ended 21 s ago (the default wait is 20 s).
    assert list(reconcile.overdue(now=now)) == [call]
    StreamSession.objects.update(ended_at=now - datetime.timedelta(seconds=19))
    assert not reconcile.overdue(now=now).exists()


def test_drifted_live_counters_are_recounted_from_the_rows(campaign, acme, caplog):
    make_call(campaign, state=Call.State.IN_PROGRESS)
    make_call(campaign, state=Call.State.QUEUED)
    make_call(campaign, state=Call.State.COMPLETED)
    Campaign.objects.filter(pk=campaign.pk).update(calls_live=7)  # callbacks lost: the counter leaked
    right = make_campaign(acme, account=campaign.account, state=Campaign.State.RUNNING)
    make_call(right, state=Call.State.RINGING)
    Campaign.objects.filter(pk=right.pk).update(calls_live=1)

    with caplog.at_level(logging.WARNING, logger="campaigns.reconcile"):
        assert reconcile.recount_live_calls() == 1

    assert Campaign.objects.get(pk=campaign.pk).calls_live == 2
    assert Campaign.objects.get(pk=right.pk).calls_live == 1
    assert "calls_live was 7, 2 calls are unfinished" in caplog.text
