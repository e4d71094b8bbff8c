"""Reconciliation: calls whose callbacks never came are asked about, and the live counters recounted.

Exotel says status callbacks "may be delayed or fail" and points to its Call Details API as the
fallback (a web-server restart is enough to lose some). A call that is not final past its expected
end (never answered: dialled + CALL_RING_TIMEOUT_SECONDS; answered: answer + the campaign's time
limit), plus CALL_RECONCILE_GRACE_SECONDS, is *overdue*: a beat task sends one `reconcile_account`
task per account with overdue calls, which asks Exotel about each (Call Details, or Get Leg for a
Legs call) and settles it from the answer through `calls.advance`, the path every callback takes,
so the retry policy applies and a callback arriving after all changes nothing. A call whose stream
ended STREAM_END_RECONCILE_SECONDS ago is overdue too, whatever its time limit: its terminal
callback follows the stream's end within a second or two, or never. (Read from the stream sessions'
rows by the sweep, so the stream server's close path sends nothing.) A call with no sid (the dial's
outcome is unknown) cannot be asked about: the reaper's rule settles it (campaigns/calls.py).

The counters that gate dialling are recounted from the rows (`recount_live_calls`); the campaign
row is locked before counting, so that a concurrent change of a call either committed before the
count or applies its own F() update after the correction.
"""

import datetime
import logging

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from callbacks.services.parsing import STATUSES
from campaigns import accounts, calls, tasks
from campaigns.models import Call, Campaign
from exotel.client import ExotelClient, RetryPolicy
from exotel.errors import ExotelError, RejectedError
from streams.models import StreamSession
from tenancy.models import ExotelAccount

log = logging.getLogger(__name__)
State = Call.State
# Per account and sweep: well inside Exotel's 200 requests a minute, and a bounded task.
BATCH = 50
# One attempt, a short wait: the next sweep is seconds away, and the account's URL is the tenant's.
DETAILS_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
DETAILS_RETRY = RetryPolicy(attempts=1)


def overdue(*, now: datetime.datetime) -> QuerySet[Call]:
    """Live calls with a sid past their expected end plus the grace period, or past their stream's end."""
    grace = datetime.timedelta(seconds=settings.CALL_RECONCILE_GRACE_SECONDS)
    ring = datetime.timedelta(seconds=settings.CALL_RING_TIMEOUT_SECONDS)
    live = Call.objects.filter(state__in=Call.LIVE_STATES).exclude(exotel_sid="", leg_sid="")
    stream_ended = datetime.timedelta(seconds=settings.STREAM_END_RECONCILE_SECONDS)
    past_end = Q(answered_at__isnull=True, dialed_at__lt=now - ring - grace) | Exists(
        StreamSession.objects.filter(call=OuterRef("pk"), ended_at__lt=now - stream_ended))
    # One condition per distinct time limit (a handful), since SQLite cannot add seconds to a time.
    limits = live.filter(answered_at__isnull=False).values_list("campaign__time_limit", flat=True).distinct()
    for limit in set(limits):
        past_end |= Q(campaign__time_limit=limit, answered_at__lt=now - grace - datetime.timedelta(seconds=limit))
    return live.filter(past_end)


def pending_by_campaign(campaign_ids: list[int], *, now: datetime.datetime) -> dict[int, int]:
    """How many calls of each campaign are waiting to be reconciled (for the pages)."""
    rows = overdue(now=now).filter(campaign_id__in=campaign_ids).values("campaign_id").annotate(n=Count("pk"))
    return {row["campaign_id"]: row["n"] for row in rows.order_by()}


def sweep(*, now: datetime.datetime | None = None) -> int:
    """Beat: one reconcile task per account with overdue calls; returns how many were sent."""
    account_ids = set(overdue(now=now or timezone.now()).values_list("campaign__account_id", flat=True))
    for account_id in account_ids:
        tasks.reconcile_account.delay(account_id)
    return len(account_ids)


def reconcile_account(account_id: int, *, now: datetime.datetime | None = None) -> int:
    """Ask Exotel about the account's overdue calls, oldest first; returns how many were settled."""
    now = now or timezone.now()
    batch = list(overdue(now=now).filter(campaign__account_id=account_id).order_by("dialed_at", "pk")[:BATCH])
    if not batch:
        return 0
    settled = 0
    with details_client(ExotelAccount.objects.get(pk=account_id)) as client:
        for call in batch:
            try:
                settled += settle(call, client, now=now)
            except ExotelError as error:
                # The account's API is failing: the rest of the batch waits for the next sweep.
                log.warning("reconciling calls of account %s stopped: %s", account_id, error)
                break
    if settled:
        log.warning("reconciled %d of %d overdue calls on account %s", settled, len(batch), account_id)
    return settled


def settle(call: Call, client: ExotelClient, *, now: datetime.datetime) -> bool:
    """Apply what Exotel knows of `call` through `calls.advance`; True if the call is now final."""
    try:
        details = client.leg_details(call.leg_sid) if call.leg_sid else client.call_details(call.exotel_sid)
    except RejectedError as error:
        if error.status != 404:
            raise
        return calls.advance(call, State.FAILED, at=now, error="Exotel has no record of this call.")
    state = STATUSES.get(details.status)
    if state is None:
        log.info("call %s: Exotel reports %r, nothing to settle", call.pk, details.status)
        return False
    recording = details.recording_url if details.recording_url.startswith(("https://", "http://")) else ""
    fields = {"recording_url": recording[:500]}
    if state == State.COMPLETED:
        fields["duration"] = details.duration
    if state == State.FAILED:
        fields["error"] = "Exotel's Call Details report the call failed (no callback arrived)."
    changed = calls.advance(call, state, at=now, **fields)
    if changed:
        log.info("call %s settled from Exotel's details as %s", call.pk, state)
    return changed and state in Call.FINAL_STATES


def details_client(account: ExotelAccount) -> ExotelClient:
    """A client for asking about calls from a beat's task: one short attempt (also campaigns/costs.py)."""
    return accounts.client_for(account, timeout=DETAILS_TIMEOUT, retry=DETAILS_RETRY)


def recount_live_calls() -> int:
    """Set each campaign's `calls_live` to its unfinished calls where they differ; returns how many."""
    candidates = Campaign.objects.filter(Q(calls_live__gt=0) | Q(calls_live__lt=0) | Q(state=Campaign.State.RUNNING))
    corrected = 0
    for campaign_id in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            # Locked first, then counted: see the module's docstring.
            counter = Campaign.objects.select_for_update().values_list("calls_live", flat=True).get(pk=campaign_id)
            actual = Call.objects.filter(campaign_id=campaign_id).exclude(state__in=Call.FINAL_STATES).count()
            if counter != actual:
                Campaign.objects.filter(pk=campaign_id).update(calls_live=actual)
                log.warning("campaign %s: calls_live was %d, %d calls are unfinished; corrected", campaign_id,
                            counter, actual)
                corrected += 1
    return corrected
