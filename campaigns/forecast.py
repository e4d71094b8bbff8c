"""Before launch: how many contacts will be dialled, how many held back and why, and when it should end.

Every pending contact goes through `screen`, the same checks in the same order as the dispatcher
(do-not-call, the caller-ID pool's countries, then campaigns.compliance.judge), so the panel counts what the dispatcher will do.
A check is a function of (Context, contact) returning a Verdict or None (no objection); add one to
CHECKS to add a reason. The estimate of the finish time walks the calendar in SLOT steps from now:
in each slot the campaign dials at its pacing rate the contacts whose windows are open and whose
caps have freed. It counts first attempts only (retries depend on outcomes not known yet).

The expected cost of those first attempts is dialled × answer rate × started minutes per answered
call × rate per minute: the answer rate and minutes from the workspace's calls of the last
HISTORY, the rate from the campaign's own priced calls, else its account's priced calls of the
same period, else the account's estimated rate per minute (campaigns/costs.py). Without history or
rate there is no figure, and the panel says what is missing.
"""

import bisect
import datetime
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum

from campaigns import compliance, costs, donotcall, pools, rollups, rules, schedule
from campaigns.models import Call, Campaign, Contact, Hold

SLOT = datetime.timedelta(minutes=15)
HISTORY = datetime.timedelta(days=30)
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
    cost: "CostForecast | None" = None

    @property
    def held_back(self) -> int:
        return sum(self.skipped.values())

    @property
    def reasons(self) -> list[tuple[str, str, int]]:
        """(reason, label, contacts) of those never dialled, in Hold.Reason's order."""
        return [(reason, label, self.skipped[reason]) for reason, label in Hold.Reason.choices if self.skipped[reason]]


def forecast(campaign: Campaign, *, now: datetime.datetime, spend: costs.Spend | None = None) -> Forecast:
    """What the dispatcher will do with the campaign's contacts; `spend`, when the caller has it (the
    campaign page does), spares reading the campaign's costs again."""
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
    result.cost = expected_cost(campaign, result.dialled, now=now, spend=spend if spend is not None else costs.spend(campaign))
    return result


@dataclass(frozen=True)
class CostForecast:
    calls: int  # first attempts that will be dialled
    history_calls: int  # the workspace's calls ended in the last HISTORY
    answer_rate: Decimal | None
    minutes_per_answer: Decimal | None  # started minutes per answered call
    rate: Decimal | None
    rate_source: str  # "campaign", "account history", "account setting" or ""
    currency: str
    budget: Decimal | None

    @property
    def amount(self) -> Decimal | None:
        if self.answer_rate is None or self.minutes_per_answer is None or self.rate is None:
            return None
        return (self.calls * self.answer_rate * self.minutes_per_answer * self.rate).quantize(Decimal("0.01"))

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.amount is not None and self.amount > self.budget


def expected_cost(campaign: Campaign, calls: int, *, now: datetime.datetime, spend: costs.Spend) -> CostForecast:
    history = Call.objects.filter(workspace_id=campaign.workspace_id, created_at__gte=now - HISTORY).filter(
        rollups.ENDED).aggregate(ended=Count("pk"), answered=Count("pk", filter=costs.ON_THE_LINE),
                                 minutes=Sum(costs.STARTED_MINUTES, filter=costs.ON_THE_LINE))
    ended, answered = history["ended"], history["answered"]
    answer_rate = (Decimal(answered) / ended).quantize(Decimal("0.0001")) if ended else None
    minutes = (Decimal(history["minutes"] or 0) / answered).quantize(Decimal("0.01")) if answered else None
    if answer_rate == 0:
        minutes = Decimal(0)  # nobody answered: nothing is spent on the line, whatever the duration
    return CostForecast(calls=calls, history_calls=ended, answer_rate=answer_rate, minutes_per_answer=minutes,
                        currency=campaign.account.currency, budget=campaign.budget,
                        **_forecast_rate(campaign, now, spend))


def _forecast_rate(campaign: Campaign, now: datetime.datetime, spent: costs.Spend) -> dict:
    if spent.rate_source == "campaign":
        return {"rate": spent.rate, "rate_source": "campaign"}
    since = (now - HISTORY).date()
    if (history := costs.account_rate(campaign.account, since=since)) is not None:
        return {"rate": history, "rate_source": "account history"}
    rate = campaign.account.rate_per_minute
    return {"rate": rate, "rate_source": "account setting" if rate is not None else ""}


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
