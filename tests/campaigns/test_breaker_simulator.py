"""The caller IDs' breaker against the real simulator failing one Exophone.

Exotel (the simulator, a real process) refuses every leg dialled from one number of a two-number pool
with a 503 (Legs mode: an answered leg needs no stream server here). The dispatcher and place_call run here, as the beat and the dial workers would, with time
stepped forward: the number is paused and the pool dials from the other; once Exotel takes its calls
again, a trial call after the cool-down, settled from Call Details (no web server: its callbacks are
lost), brings it back.
"""

import datetime

import httpx
from django.utils import timezone

from campaigns import dialer, lifecycle, reconcile
from campaigns.models import Call, Campaign
from streams import heartbeat
from tenancy.models import Exophone
from tests import processes
from tests.campaigns.test_place_call import faults
from tests.campaigns.test_pools import BANGALORE, MUMBAI, pool_of
from tests.conftest import make_account, make_campaign, make_contact

SIMULATOR_CONFIG = {"default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 0.5}}
Breaker = Exophone.Breaker
STEP = datetime.timedelta(seconds=15)


def tick_and_dial(now, capture) -> list[Call]:
    """One beat tick, then what the dial workers would do: place every due call through the simulator."""
    heartbeat.publish("stream-server", now=now)
    with capture(execute=True):
        dialer.dispatch(now=now)
    due = list(Call.objects.filter(state=Call.State.QUEUED, enqueued_at__lte=now).order_by("pk"))
    for call in due:
        dialer.place_call(call.pk, now=now)
    return due


def settle(sim, account) -> None:
    """Once the simulator has ended the calls it took, settle them from Call Details (their callbacks
    went nowhere), as the reconciliation sweep does."""
    sids = set(Call.objects.filter(state=Call.State.DIALING).exclude(leg_sid="").values_list("leg_sid", flat=True))

    def all_ended():
        states = {c["sid"]: c["status"] for c in httpx.get(f"{sim.url}/_sim/calls").json()}
        return all(states.get(sid) in ("completed", "busy", "no-answer", "failed") for sid in sids)
    processes.wait_until(all_ended, timeout=30, what="the calls to end in the simulator")
    reconcile.reconcile_account(account.pk, now=timezone.now() + datetime.timedelta(hours=2))


def test_a_number_exotel_refuses_is_paused_then_recovers_on_a_trial_call(
        acme, alice, sim, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.EXOPHONE_BREAKER_MIN_CALLS, settings.EXOPHONE_BREAKER_COOLDOWN_SECONDS = 4, 60
    monkeypatch.setattr(dialer, "send_place_calls", lambda ids: None)  # this test plays the dial workers
    now = timezone.now()
    account = make_account(acme, api_base_url=sim.url, max_allowed_streams=100, active_streams=0,
                           streams_read_at=now)
    campaign = make_campaign(acme, account=account, calls_per_minute=600, max_concurrent=8, max_attempts=1,
                             connect_mode=Campaign.ConnectMode.LEGS)
    failing, healthy = pool_of(campaign, BANGALORE, MUMBAI)
    for _ in range(40):
        make_contact(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=40)
    lifecycle.start_campaign(campaign, by=alice)
    Campaign.objects.filter(pk=campaign.pk).update(pace_credit=8, paced_at=now)
    faults(sim, {"endpoint": "legs", "caller_id": failing.number, "kind": "status", "status": 503})

    # Exotel refuses the failing number's dials (each is retried later); the other's go through.
    first = tick_and_dial(now, django_capture_on_commit_callbacks)
    assert {call.exophone_id for call in first} == {failing.pk, healthy.pk}
    while Exophone.objects.get(pk=failing.pk).breaker == Breaker.CLOSED:
        assert now < first[0].created_at + datetime.timedelta(minutes=5), "the breaker never tripped"
        now += STEP
        tick_and_dial(now, django_capture_on_commit_callbacks)
    failing.refresh_from_db()
    assert "Exotel refused 4 with a 5xx" in failing.breaker_reason
    assert failing.breaker_until == now + datetime.timedelta(seconds=60)

    # While it is paused, new calls dial from the other number only.
    paused_at = now
    before = set(Call.objects.values_list("pk", flat=True))
    while now < paused_at + datetime.timedelta(seconds=45):
        now += STEP
        settle(sim, account)  # frees concurrency
        tick_and_dial(now, django_capture_on_commit_callbacks)
    new_calls = Call.objects.exclude(pk__in=before)
    assert new_calls.exists() and set(new_calls.values_list("exophone", flat=True)) == {healthy.pk}

    # Exotel takes its calls again; after the cool-down one trial call goes out from it, and its good end
    # (read from Call Details) closes the breaker.
    faults(sim)
    settle(sim, account)
    now = paused_at + datetime.timedelta(seconds=61)
    before = set(Call.objects.values_list("pk", flat=True))
    tick_and_dial(now, django_capture_on_commit_callbacks)
    assert Exophone.objects.get(pk=failing.pk).breaker == Breaker.HALF_OPEN
    trials = list(Call.objects.exclude(pk__in=before).filter(exophone=failing))
    assert len(trials) == 1 and trials[0].leg_sid
    settle(sim, account)
    assert Call.objects.get(pk=trials[0].pk).state == Call.State.COMPLETED
    now += STEP
    tick_and_dial(now, django_capture_on_commit_callbacks)
    failing.refresh_from_db()
    assert (failing.breaker, failing.breaker_reason) == (Breaker.CLOSED, "")
    settle(sim, account)
    now += STEP
    before = set(Call.objects.values_list("pk", flat=True))
    tick_and_dial(now, django_capture_on_commit_callbacks)
    assert failing.pk in set(Call.objects.exclude(pk__in=before).values_list("exophone", flat=True))  # in use again
