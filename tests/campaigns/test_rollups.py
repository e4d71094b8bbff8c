"""The charts' rollups: kept by the engine, equal to a recount from the calls, read in the campaign's hours.

The mix runs against the real simulator with no web server, so its own callbacks are lost: the
deliveries are replayed from the recorded fixtures (some twice), and the rest are reconciled from
Exotel's Call Details, as after a web-server restart.
"""

import datetime

import httpx
from django.apps import apps
from django.utils import timezone

from campaigns import calls, dialer, lifecycle, queries, reconcile, rollups
from campaigns.models import Call, Campaign, DispositionRollup, QuarterRollup
from streams import heartbeat
from tests import processes
from tests.callbacks.replay import replay
from tests.conftest import make_account, make_campaign, make_contact

BUSY = "+919700000001"
SIMULATOR_CONFIG = {
    "default": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 0.5},
    "numbers": {BUSY: {"outcome": "busy", "ring_seconds": 0.2}},
}
LATER = datetime.timedelta(hours=2)  # past every call's expected end: reconciliation asks about it
NOON_FRIDAY = datetime.datetime(2026, 11, 27, 6, 30, tzinfo=datetime.UTC)  # 12:00 in Kolkata: every window open


def kept(campaign) -> tuple[list, list]:
    quarters = QuarterRollup.objects.filter(campaign=campaign).exclude(placed=0, ended=0, answered=0)
    dispositions = DispositionRollup.objects.filter(campaign=campaign, calls__gt=0)
    return (sorted(quarters.values_list("starts_at", "placed", "ended", "answered")),
            sorted(dispositions.values_list("disposition", "calls")))


def recounted(campaign) -> tuple[list, list]:
    of_campaign = Call.objects.filter(campaign=campaign)
    return (sorted((r["starts_at"], r["placed"], r["ended"], r["answered"]) for r in rollups.recount_quarters(of_campaign)),
            sorted((r["disposition"], r["calls"]) for r in rollups.recount_dispositions(of_campaign)))


def tick(now, capture) -> int:
    heartbeat.publish("stream-server", now=now)
    with capture(execute=True):
        return dialer.dispatch(now=now)


def ended_in_simulator(sim, calls_) -> None:
    def ended():
        states = {c["sid"]: c["status"] for c in httpx.get(f"{sim.url}/_sim/calls").json()}
        return all(states.get(call.exotel_sid) in ("completed", "busy", "no-answer", "failed") for call in calls_)
    processes.wait_until(ended, timeout=30, what="the simulator's calls to end")


def test_the_rollups_equal_a_recount_after_callbacks_duplicates_reconciliation_and_withdrawals(
        acme, alice, sim, sent, django_capture_on_commit_callbacks):
    account = make_account(acme, api_base_url=sim.url, max_allowed_streams=100, active_streams=0,
                           streams_read_at=NOON_FRIDAY)
    campaign = make_campaign(acme, account=account, calls_per_minute=6000, max_concurrent=100, max_attempts=2,
                             retry_after_minutes=0, window_start=datetime.time(0), window_end=datetime.time(23, 59),
                             weekdays=[1, 2, 3, 4, 5, 6, 7])
    for i in range(11):
        make_contact(campaign, phone=BUSY if i == 0 else f"+91970000{i + 10:04d}")
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=11)
    lifecycle.start_campaign(campaign, by=alice)
    Campaign.objects.filter(pk=campaign.pk).update(pace_credit=11, paced_at=NOON_FRIDAY)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 11
    placed = list(Call.objects.filter(campaign=campaign).order_by("phone"))  # the busy number first
    for call in placed[:9]:
        dialer.place_call(call.pk)
        call.refresh_from_db()
    busy, answered, reconciled = placed[0], placed[1:4], placed[4:9]
    ended_in_simulator(sim, placed[:9])

    for call in answered:  # each delivery twice: the second changes nothing
        for name in ("status_answered_json", "status_terminal_form", "passthru_flat"):
            replay(acme, name, call=call)
            replay(acme, name, call=call)
    calls.set_disposition(answered[0].pk, "interested")  # the bot's conclusion over the flow's
    calls.set_disposition(answered[0].pk, "interested")
    replay(acme, "status_terminal_busy_multipart", call=busy)  # retried at once: retry_after_minutes=0
    assert reconcile.reconcile_account(account.pk, now=timezone.now() + LATER) == len(reconciled)
    replay(acme, "status_terminal_form", call=reconciled[0])  # a callback after all: a duplicate
    lifecycle.pause_campaign(campaign, by=alice)  # the two queued calls are withdrawn
    lifecycle.resume_campaign(campaign, by=alice)
    Campaign.objects.filter(pk=campaign.pk).update(pace_credit=11, paced_at=NOON_FRIDAY)
    # The withdrawn two are placed again in another quarter (the retries are due later, in real time).
    assert tick(NOON_FRIDAY + datetime.timedelta(minutes=20), django_capture_on_commit_callbacks) == 2

    assert Call.objects.filter(campaign=campaign).count() == 11
    assert kept(campaign) == recounted(campaign)
    quarters, dispositions = kept(campaign)
    assert [q[1:] for q in quarters] == [(9, 9, 3), (2, 0, 0)]
    assert dict(dispositions) == {"interested": 1, "caller-hangup": 2}
    # The migration's backfill counts the same from the calls alone.
    QuarterRollup.objects.all().delete()
    DispositionRollup.objects.all().delete()
    rollups.backfill(apps)
    assert kept(campaign) == recounted(campaign)


def test_the_charts_count_each_hour_of_the_campaigns_time_zone(campaign):
    # Kolkata's hours begin at half past in UTC: 10:00 there is 04:30 UTC.
    ten_ist = datetime.datetime(2026, 11, 27, 4, 30, tzinfo=datetime.UTC)
    for minutes, placed in ((-1, 1), (0, 2), (29, 3), (30, 4), (59, 5)):  # in the quarters 04:15 to 05:15
        rollups.count_placed(campaign.workspace_id, campaign.pk, placed, at=ten_ist + datetime.timedelta(minutes=minutes))

    hours = queries.hourly(campaign, hours=3, now=ten_ist + datetime.timedelta(minutes=59))
    assert [(point["hour"].strftime("%H:%M"), point["n"]) for point in hours] == [
        ("08:00", 0), ("09:00", 1), ("10:00", 14)]
    Campaign.objects.filter(pk=campaign.pk).update(time_zone="Asia/Kathmandu")  # +05:45
    campaign.refresh_from_db()
    hours = queries.hourly(campaign, hours=3, now=ten_ist + datetime.timedelta(minutes=59))
    assert [(point["hour"].strftime("%H:%M"), point["n"]) for point in hours] == [
        ("09:00", 0), ("10:00", 10), ("11:00", 5)]
