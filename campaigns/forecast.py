"""Before launch: how many contacts will be dialled, how many held back and why, and when it should end.

Every pending contact goes through `screen`, the same checks in the same order as the dispatcher
(do-not-call, the caller-ID pool's countries, then campaigns.compliance.judge), so the panel counts what the dispatcher will do.
A check is a function of (Context, contact) returning a Verdict or None (no objection); add one to
CHECKS to add a reason. The estimate of the finish time walks the calendar in SLOT steps from now:
in each slot the campaign dials at its pacing rate the contacts whose windows are open and whose
caps have freed. It counts first attempts only (retries depend on outcomes not known yet).
"""

import bisect
import datetime
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from campaigns import compliance, donotcall, pools, rules, schedule
from campaigns.models import Campaign, Contact, Hold

SLOT = datetime.timedelta(minutes=15)
Verdict = compliance.Verdict


@dataclass(frozen=True)
class Context:
    window: schedule.Window
    policy: rules.Policy
    now: datetime.datetime
    calling_codes: frozenset[int]  # what the campaign's caller-ID pool may call (campaigns.pools)

    @classmethod
    def of(cls, campaign: Campaign, now: datetime.datetime) -> "Context":
        return cls(schedule.Window.of(campaign), rules.Policy.of(campaign.workspace), now, pools.calling_codes(campaign))


def on_do_not_call(context: Context, contact: Contact) -> Verdict | None:
    return Verdict(reason=Hold.Reason.DO_NOT_CALL) if contact.on_do_not_call else None


def country_not_allowed(context: Context, contact: Contact) -> Verdict | None:
    if pools.in_countries(contact.phone, context.calling_codes):
        return None
    return Verdict(reason=Hold.Reason.COUNTRY_NOT_ALLOWED)


def calling_rules(context: Context, contact: Contact) -> Verdict:
    return compliance.judge(context.window, context.policy, contact, contact.recipient.attempts, now=context.now)


CHECKS = [on_do_not_call, country_not_allowed, calling_rules]


def screen(context: Context, contact: Contact) -> Verdict:
    return next(verdict for check in CHECKS if (verdict := check(context, contact)) is not None)


def pending(campaign: Campaign):
    """The campaign's pending contacts with what the checks read, in the order the dispatcher claims them."""
    return (
        Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING)
        .select_related("recipient").only("pk", "phone", "name", "time_zone", "next_attempt_at", "recipient__attempts")
        .annotate(on_do_not_call=donotcall.on_the_list())
        .order_by("pk")
    )


@dataclass
class Forecast:
    pending: int = 0
    dialled: int = 0  # will be dialled: now, when their window opens, or when their cap frees
    skipped: Counter = field(default_factory=Counter)  # never dialled, by Hold.Reason
    capped: int = 0  # of those dialled, held by a cap first
    waiting: int = 0  # of those dialled, outside their window right now
    finish_at: datetime.datetime | None = None

    @property
    def held_back(self) -> int:
        return sum(self.skipped.values())

    @property
    def reasons(self) -> list[tuple[str, str, int]]:
        """(reason, label, contacts) of those never dialled, in Hold.Reason's order."""
        return [(reason, label, self.skipped[reason]) for reason, label in Hold.Reason.choices if self.skipped[reason]]


def forecast(campaign: Campaign, *, now: datetime.datetime) -> Forecast:
    context = Context.of(campaign, now)
    result = Forecast()
    ready: dict[tuple[str, ...], list[datetime.datetime]] = defaultdict(list)  # zones: when each may go
    for contact in pending(campaign).iterator(chunk_size=2000):
        result.pending += 1
        verdict = screen(context, contact)
        if verdict.reason and verdict.reason != Hold.Reason.CAP:
            result.skipped[verdict.reason] += 1
            continue
        result.dialled += 1
        result.capped += verdict.reason == Hold.Reason.CAP
        result.waiting += verdict.opens_at is not None
        zones = rules.recipient_zones(contact.time_zone, contact.phone, fallback=context.window.time_zone)
        ready[zones].append(max(filter(None, [now, contact.next_attempt_at, verdict.until])))
    result.finish_at = finish(context, campaign.calls_per_minute, ready)
    return result


def finish(context: Context, per_minute: int, ready: dict[tuple[str, ...], list[datetime.datetime]]):
    """The end of the slot in which the last first attempt should start; None if not within the horizon."""
    queues = {zones: sorted(times) for zones, times in ready.items() if times}
    left, at = sum(len(q) for q in queues.values()), context.now
    if not left:
        return None
    end = context.now + datetime.timedelta(days=rules.HORIZON_DAYS)
    while at < end:
        room = int(per_minute * SLOT.total_seconds() / 60)
        for zones, queue in queues.items():
            if queue and room and rules.may_dial(context.window, context.policy, zones, at):
                due = bisect.bisect_left(queue, at + SLOT)  # ready before the slot ends
                taken = min(due, room)
                del queue[:taken]
                room, left = room - taken, left - taken
        at += SLOT
        if not left:
            return at
    return None


def held_rows(campaign: Campaign, *, now: datetime.datetime) -> Iterator[tuple]:
    """The contacts the forecast holds back, one row each with its reason, for the download."""
    context = Context.of(campaign, now)
    yield ("phone", "name", "reason", "detail", "until")
    for contact in pending(campaign).iterator(chunk_size=2000):
        verdict = screen(context, contact)
        if verdict.reason:
            until = verdict.until.isoformat() if verdict.until else "never"
            yield (contact.phone, contact.name, Hold.Reason(verdict.reason).label, verdict.detail, until)
