"""Each caller ID's health, and the circuit breaker that pauses a failing one.

Health is read from the calls an Exophone placed in a sliding window: the last
EXOPHONE_HEALTH_WINDOW_SECONDS, and never from before the breaker's last change, so a number starts
afresh once it recovers. A call *failed the number* when it ended `failed` or Exotel refused it
with a 5xx (kept on the call as `exotel_status`; the attempt is retried, so the call may still be
live); busy and no-answer are the callee's answer, not the number's fault. Exotel's 4xx refusals
end the call failed and are counted as such, and shown apart.

The breaker moves on each dispatcher tick (`review`), for the numbers of running campaigns:
- closed -> open once at least EXOPHONE_BREAKER_MIN_CALLS calls of the window have finished and the
  share that failed the number reaches EXOPHONE_BREAKER_FAILURE_RATE: paused for
  EXOPHONE_BREAKER_COOLDOWN_SECONDS, the reason and the end of the pause on the Exophones page;
- open -> half-open when the cool-down is over: the pool gives it one trial call (campaigns/pools.py);
- half-open -> closed when that call ends other than failed, or -> open again for another cool-down.
Each change is a conditional UPDATE on the state it was decided from, so two ticks decide once.
"""

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q

from campaigns.models import Call, Campaign
from tenancy.models import Exophone

log = logging.getLogger(__name__)
Breaker = Exophone.Breaker
FAILED_THE_NUMBER = Q(state=Call.State.FAILED) | Q(exotel_status__gte=500)
FINISHED = Q(state__in=Call.FINAL_STATES) | Q(exotel_status__gte=500)


@dataclass(frozen=True)
class Health:
    since: datetime.datetime
    calls: int = 0
    finished: int = 0  # ended, or refused with a 5xx
    answered: int = 0
    failed: int = 0  # failed the number (see above)
    http_4xx: int = 0
    http_5xx: int = 0

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.finished if self.finished else None


def window_start(exophone: Exophone, *, now: datetime.datetime) -> datetime.datetime:
    start = now - datetime.timedelta(seconds=settings.EXOPHONE_HEALTH_WINDOW_SECONDS)
    return max(start, exophone.breaker_changed_at) if exophone.breaker_changed_at else start


def health_of(exophones, *, now: datetime.datetime) -> dict[int, Health]:
    """Each number's health over its window, in one query (it walks the `call_exophone_recent` index)."""
    starts = {e.pk: window_start(e, now=now) for e in exophones}
    if not starts:
        return {}
    recent = Q(pk__in=[])
    for pk, start in starts.items():
        recent |= Q(exophone_id=pk, created_at__gte=start)
    rows = Call.objects.filter(recent).values("exophone_id").annotate(
        calls=Count("pk"), finished=Count("pk", filter=FINISHED),
        answered=Count("pk", filter=Q(answered_at__isnull=False) | Q(state=Call.State.COMPLETED)),
        failed=Count("pk", filter=FAILED_THE_NUMBER),
        http_4xx=Count("pk", filter=Q(exotel_status__gte=400, exotel_status__lt=500)),
        http_5xx=Count("pk", filter=Q(exotel_status__gte=500)),
    )
    found = {row.pop("exophone_id"): row for row in rows}
    return {pk: Health(since=start, **found.get(pk, {})) for pk, start in starts.items()}


def review(*, now: datetime.datetime) -> None:
    """One tick of every breaker: cool-downs that ended go on trial; the numbers in use are judged."""
    Exophone.objects.filter(breaker=Breaker.OPEN, breaker_until__lte=now).update(
        breaker=Breaker.HALF_OPEN, breaker_changed_at=now, breaker_until=None)
    in_use = list(Exophone.objects.filter(
        campaigns__state=Campaign.State.RUNNING, breaker__in=[Breaker.CLOSED, Breaker.HALF_OPEN]).distinct())
    health = health_of(in_use, now=now)
    for exophone in in_use:
        judge(exophone, health[exophone.pk], now=now)


def judge(exophone: Exophone, health: Health, *, now: datetime.datetime) -> None:
    if exophone.breaker == Breaker.HALF_OPEN:
        if not health.finished:
            return  # the trial call is not placed or not over yet
        if health.failed:
            trip(exophone, "its trial call after the cool-down failed too", now=now)
        else:
            change(exophone, Breaker.CLOSED, now=now, reason="")
        return
    rate = health.failure_rate
    if health.finished >= settings.EXOPHONE_BREAKER_MIN_CALLS and rate >= settings.EXOPHONE_BREAKER_FAILURE_RATE:
        minutes = max(1, round((now - health.since).total_seconds() / 60))
        refusals = f", Exotel refused {health.http_5xx} with a 5xx" if health.http_5xx else ""
        trip(exophone, f"{health.failed} of its last {health.finished} calls failed ({rate:.0%}, "
                       f"in {minutes} min{refusals})", now=now)


def trip(exophone: Exophone, reason: str, *, now: datetime.datetime) -> None:
    until = now + datetime.timedelta(seconds=settings.EXOPHONE_BREAKER_COOLDOWN_SECONDS)
    if change(exophone, Breaker.OPEN, now=now, reason=reason, until=until):
        log.warning("caller ID %s paused until %s: %s", exophone.number, until, reason)


def change(exophone: Exophone, new: str, *, now: datetime.datetime, reason: str, until=None) -> bool:
    """Move the breaker from the state it was judged in; False when another tick moved it first."""
    fields = {"breaker": new, "breaker_reason": reason[:300], "breaker_until": until, "breaker_changed_at": now}
    changed = Exophone.objects.filter(pk=exophone.pk, breaker=exophone.breaker).update(**fields)
    if changed:
        for name, value in fields.items():
            setattr(exophone, name, value)
    return bool(changed)
