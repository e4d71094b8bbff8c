"""Money: what each call cost (Exotel's Price), totals per campaign and per day, and the budget.

Prices. Exotel fills Call Details' `Price` minutes after a call ends. A beat task (`sweep`) sends
one `price_account` task per Exotel account that has calls due for a price or a running campaign
with a budget, so a slow or failing account (its URL is the tenant's) delays only its own
workspace's prices, never the beat or another tenant. An ended Connect call is first asked about
PRICE_FIRST_CHECK_SECONDS after its end, then again after PRICE_RETRY_SECONDS × 2^(checks − 1) (at
most PRICE_RETRY_MAX_SECONDS) while Exotel has no price for it, until it is PRICE_GIVE_UP_SECONDS
old: it then stays unpriced and counts at the estimate. A refused or failed request (429, timeout,
5xx) backs that call off the same way and ends the account's batch; the next sweep goes on. Legs
calls are never asked (Get Leg documents no price): they count at the estimate.

Totals. A price is stored by a conditional UPDATE (… WHERE price IS NULL), and only the update that
stored it adds it, in the same transaction, to the campaign's CostRollup of the day the call ended
in the workspace's calendar; totals read those few rows.

Budget. Spent = the priced total + an estimate of the ended calls Exotel has not priced yet: their
started minutes at a rate per minute, the campaign's own (its priced amount over its priced
minutes) once it has priced minutes, else its account's "estimated rate per minute"; with neither
they are left out and the page says so. Reaching the budget pauses a running campaign (a
CampaignEvent says why); calls in flight finish, so the total may end above it by what they cost.
A campaign whose budget is spent is not started or resumed (campaigns/lifecycle.py).
"""

import datetime
import logging
import math
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from campaigns import lifecycle, reconcile, rollups, tasks
from campaigns.models import Call, Campaign, CostRollup, InvalidTransition
from exotel.errors import ExotelError, RejectedError
from tenancy.models import ExotelAccount

log = logging.getLogger(__name__)
# Per account and sweep (30 s): 40 a minute, leaving most of Exotel's 200 requests a minute per account
# to dialling and reconciliation; a backlog is priced later, and counted at the estimate meanwhile.
BATCH = 20
PRICE_PLACES = Decimal("0.0001")
PRICE_LIMIT = Decimal("1000000")  # Call.price holds 10 digits, 4 after the point
# Exotel bills voice by the started minute (60-second pulses): Duration rounded up, in SQL.
STARTED_MINUTES = (F("duration") + 59) / 60
# Exotel bills every call that was on the line, a machine's answer too (rollups.ANSWERED counts people only).
ON_THE_LINE = rollups.ENDED & (Q(answered_at__isnull=False) | Q(state=Call.State.COMPLETED))


def billed_minutes(duration: int | None) -> int:
    return math.ceil(duration / 60) if duration else 0


def due_for_price(*, now: datetime.datetime) -> QuerySet[Call]:
    """Ended Connect calls without a price whose next check has come and which are not too old to ask about."""
    first = now - datetime.timedelta(seconds=settings.PRICE_FIRST_CHECK_SECONDS)
    oldest = now - datetime.timedelta(seconds=settings.PRICE_GIVE_UP_SECONDS)
    unpriced = Call.objects.filter(price__isnull=True, ended_at__isnull=False, ended_at__gte=oldest, leg_sid="")
    return unpriced.exclude(exotel_sid="").filter(
        Q(price_due_at__isnull=True, ended_at__lte=first) | Q(price_due_at__lte=now))


def sweep(*, now: datetime.datetime | None = None) -> int:
    """Beat: one `price_account` task per account with prices due or a running campaign with a budget."""
    now = now or timezone.now()
    account_ids = set(due_for_price(now=now).values_list("campaign__account_id", flat=True).distinct())
    account_ids |= set(Campaign.objects.filter(state=Campaign.State.RUNNING, budget__isnull=False)
                       .values_list("account_id", flat=True))
    for account_id in account_ids:
        tasks.price_account.delay(account_id)
    return len(account_ids)


def price_account(account_id: int, *, now: datetime.datetime | None = None) -> int:
    """Ask Exotel for the account's due prices, then hold its running campaigns to their budgets."""
    priced = fetch_prices(account_id, now=now or timezone.now())
    for campaign in Campaign.objects.filter(account_id=account_id, state=Campaign.State.RUNNING,
                                            budget__isnull=False).select_related("account"):
        enforce_budget(campaign)
    return priced


def fetch_prices(account_id: int, *, now: datetime.datetime) -> int:
    """Ask about the account's calls due for a price, oldest first; returns how many got one."""
    batch = list(due_for_price(now=now).filter(campaign__account_id=account_id)
                 .select_related("workspace").order_by("ended_at", "pk")[:BATCH])
    if not batch:
        return 0
    account = ExotelAccount.objects.get(pk=account_id)
    priced = 0
    with reconcile.details_client(account) as client:
        for call in batch:
            try:
                price = client.call_details(call.exotel_sid).price
            except RejectedError as error:
                if error.status != 404:
                    log.warning("prices of account %s stopped: %s", account_id, error)
                    check_later(call, now=now)
                    break
                log.warning("call %s: Exotel has no record of %s to price", call.pk, call.exotel_sid)
                price = None
            except ExotelError as error:
                # The account's API is failing or limiting us: this call backs off, the rest wait for the next sweep.
                log.warning("prices of account %s stopped: %s", account_id, error)
                check_later(call, now=now)
                break
            if price is not None and price >= PRICE_LIMIT:
                log.warning("call %s: Exotel's price %s is more than a call can cost: asked again later", call.pk, price)
                price = None
            if price is None:
                check_later(call, now=now)
            else:
                priced += store_price(call, price, currency=account.currency)
    return priced


def check_later(call: Call, *, now: datetime.datetime) -> None:
    wait = min(settings.PRICE_RETRY_SECONDS * 2 ** call.price_checks, settings.PRICE_RETRY_MAX_SECONDS)
    Call.objects.filter(pk=call.pk, price__isnull=True).update(
        price_checks=F("price_checks") + 1, price_due_at=now + datetime.timedelta(seconds=wait))


def store_price(call: Call, price: Decimal, *, currency: str) -> bool:
    """Store the call's price and add it to its day's total, once however often it is stored."""
    price = price.quantize(PRICE_PLACES)
    with transaction.atomic():
        stored = Call.objects.filter(pk=call.pk, price__isnull=True).update(
            price=price, price_currency=currency, price_checks=F("price_checks") + 1, price_due_at=None)
        if stored:
            day = call.ended_at.astimezone(zoneinfo.ZoneInfo(call.workspace.time_zone)).date()
            rollups.upsert_add(CostRollup, call.workspace_id, call.campaign_id, {"day": day}, calls=1, amount=price,
                               billed_minutes=billed_minutes(call.duration))
    return bool(stored)


@dataclass(frozen=True)
class Spend:
    """What a campaign has cost so far: Exotel's prices, and an estimate of what it has not priced yet."""

    currency: str
    budget: Decimal | None
    priced: Decimal  # what Exotel charged for the calls it has priced
    priced_calls: int
    unpriced_calls: int  # ended calls on the line for a while, with no price yet
    unpriced_minutes: int
    rate: Decimal | None  # per minute, for the estimate
    rate_source: str  # "campaign" (its own priced calls), "account" (the account's setting) or ""
    days: list[CostRollup]  # newest first, in the workspace's calendar

    @property
    def estimate(self) -> Decimal | None:
        """The unpriced calls at the rate; None when there is no rate to estimate them with."""
        if self.rate is None:
            return None if self.unpriced_minutes else Decimal(0)
        return (self.rate * self.unpriced_minutes).quantize(PRICE_PLACES)

    @property
    def total(self) -> Decimal:
        return self.priced + (self.estimate or 0)

    @property
    def reached(self) -> bool:
        return self.budget is not None and self.total >= self.budget

    @property
    def breakdown(self) -> str:
        """How the total was made: what Exotel priced and what is estimated, at which rate and from where."""
        text = f"{self.total:.2f} {self.currency} = {self.priced:.2f} priced by Exotel ({self.priced_calls} calls)"
        if self.unpriced_calls and self.estimate is None:
            return text + (f"; {self.unpriced_calls} ended calls without a price yet are not counted: no rate to "
                           "estimate them with (set the account's estimated rate per minute)")
        if self.unpriced_calls:
            source = "this campaign's priced calls" if self.rate_source == "campaign" else "the account's setting"
            text += (f" + {self.estimate:.2f} estimated for {self.unpriced_calls} calls without a price yet "
                     f"({self.unpriced_minutes} min at {self.rate} a minute, from {source})")
        return text

    @property
    def used_percent(self) -> int:
        return min(100, round(100 * self.total / self.budget)) if self.budget else 0


def rate_of(amount: Decimal | None, minutes: int | None) -> Decimal | None:
    return (amount / minutes).quantize(PRICE_PLACES) if amount is not None and minutes else None


def spend(campaign: Campaign) -> Spend:
    days = list(CostRollup.objects.filter(campaign=campaign).order_by("-day"))
    priced = sum((day.amount for day in days), Decimal(0))
    own_rate = rate_of(priced, sum(day.billed_minutes for day in days))
    unpriced = Call.objects.filter(campaign=campaign, state__in=Call.FINAL_STATES, price__isnull=True,
                                   duration__gt=0).aggregate(calls=Count("pk"), minutes=Sum(STARTED_MINUTES))
    rate, source = (own_rate, "campaign") if own_rate is not None else (campaign.account.rate_per_minute, "account")
    return Spend(currency=campaign.account.currency, budget=campaign.budget, priced=priced,
                 priced_calls=sum(day.calls for day in days), unpriced_calls=unpriced["calls"],
                 unpriced_minutes=unpriced["minutes"] or 0, rate=rate, rate_source=source if rate is not None else "",
                 days=days)


def enforce_budget(campaign: Campaign) -> bool:
    """Pause a running campaign whose budget is reached; True if it was paused now."""
    spent = spend(campaign)
    if not spent.reached:
        return False
    reason = (f"Budget reached: {spent.breakdown}, of a budget of {spent.budget:.2f} {spent.currency}. "
              "Calls in flight finish; raise the budget to resume.")
    try:
        lifecycle.pause_campaign(campaign, by=None, reason=reason)
    except InvalidTransition:
        return False  # paused, completed or cancelled meanwhile
    log.warning("campaign %s paused: budget of %s %s reached", campaign.pk, spent.budget, spent.currency)
    return True


def refuse_spent_budget(campaign: Campaign) -> None:
    """Starting or resuming a campaign whose budget is already reached is refused (it would pause at once)."""
    if campaign.budget is not None and (spent := spend(campaign)).reached:
        raise InvalidTransition(f"The budget is spent ({spent.breakdown}, of {spent.budget:.2f} {spent.currency}): "
                                "raise it first.")


def account_rate(account: ExotelAccount, *, since: datetime.date) -> Decimal | None:
    """The account's priced rate per minute over its campaigns' days since `since`, if any were priced."""
    totals = CostRollup.objects.filter(campaign__account=account, day__gte=since).aggregate(
        amount=Sum("amount"), minutes=Sum("billed_minutes"))
    return rate_of(totals["amount"], totals["minutes"])


def daily_totals(workspace, *, days: int = 14) -> list[dict]:
    """The workspace's priced calls per day of its calendar over the last `days`, newest first, per currency
    (its accounts may bill in different ones)."""
    since = timezone.localdate(timezone=zoneinfo.ZoneInfo(workspace.time_zone)) - datetime.timedelta(days=days - 1)
    return list(CostRollup.objects.filter(workspace=workspace, day__gte=since)
                .values("day", currency=F("campaign__account__currency"))
                .annotate(calls=Sum("calls"), amount=Sum("amount")).order_by("-day", "currency"))
