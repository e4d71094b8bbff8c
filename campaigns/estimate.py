"""While a campaign runs: when it should finish, from what it has left and how fast it has been calling.

Read from what the engine keeps, never from the calls: the counters give the contacts left (neither
done nor on a call), the quarter-hour rollups the calls placed in the last hour (the observed rate),
and one lookup on the `contact_due` index the latest time a pending contact is due (a retry's next
attempt, a window's opening, a cap freeing). The contacts left are dialled at the observed rate, never
above the pacing, inside the campaign's window and the workspace's calling hours (read in the
campaign's zone: the recipients' own zones would need every contact read), and not before the last
one is due. Each contact left counts one more attempt: the retries that attempt's outcome may cause
are not known yet, and the page says so.

Where no honest figure exists the estimate says why instead: not running (paused, scheduled),
dialling held, no calling hours within the rules' horizon. `campaigns.forecast` answers before launch.
"""

import datetime
from dataclasses import dataclass

from django.db.models import Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from campaigns import rollups, rules, schedule
from campaigns.models import Campaign, Contact, QuarterRollup
from streams import heartbeat

OBSERVED = datetime.timedelta(hours=1)  # the calls placed over this long make the observed rate
HORIZON = datetime.timedelta(days=rules.HORIZON_DAYS)
FINISHED = (Campaign.State.COMPLETED, Campaign.State.CANCELLED)


@dataclass(frozen=True)
class Estimate:
    finish_at: datetime.datetime | None = None
    unknown: str = ""  # why there is no finish time ("" when there is one)
    left: int = 0  # contacts still to be dialled, one more attempt each
    rate: float | None = None  # calls a minute the estimate assumes
    observed: bool = False  # the rate is the last hour's (else `limit`'s)
    limit: str = ""  # what caps the rate: the pacing, or the concurrent calls
    opens_at: datetime.datetime | None = None  # outside calling hours now: dialling resumes then
    live: int = 0

    @property
    def label(self) -> str:
        if self.unknown:
            return self.unknown
        if not self.left:
            return {0: "now", 1: "when the live call ends"}.get(self.live, f"when the {self.live} live calls end")
        return f"about {_when(self.finish_at)}"

    @property
    def basis(self) -> str:
        """What the estimate assumed, for the reader to judge it."""
        if self.unknown or not self.left:
            return ""
        pace = (f"{self.rate:.1f} calls/min, as placed over the last hour" if self.observed
                else f"{self.rate:.1f} calls/min, the most {self.limit} allows (no call placed in the last hour)")
        closed = f"; outside calling hours until {_when(self.opens_at)}" if self.opens_at else ""
        return (f"{self.left} contact{'s' if self.left != 1 else ''} left, one more attempt each, at {pace}{closed}; "
                f"retries their outcomes cause come after")


def _when(moment: datetime.datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"  # the request's zone: the workspace's


def estimate(campaign: Campaign, *, policy: rules.Policy, placed: int, since: datetime.datetime | None,
             last_due: datetime.datetime | None, held: bool, now: datetime.datetime) -> Estimate:
    """The finish of a campaign whose last hour placed `placed` calls from `since` (its first such quarter)."""
    if campaign.state in FINISHED:
        return Estimate(unknown=f"finished ({campaign.get_state_display().lower()})")
    if campaign.state in (Campaign.State.DRAFT, Campaign.State.SCHEDULED):
        return Estimate(unknown="not started yet")  # the pre-launch forecast estimates its first attempts
    if campaign.state != Campaign.State.RUNNING:
        return Estimate(unknown=f"unknown while {campaign.get_state_display().lower()}")
    if held:
        return Estimate(unknown="unknown: dialling is held (no stream server is up)")
    if campaign.last_error:
        return Estimate(unknown=f"unknown: {campaign.last_error}")
    left = max(0, campaign.contacts_total - campaign.contacts_done - campaign.calls_live)
    if not left:
        return Estimate(finish_at=now, live=max(0, campaign.calls_live))
    most, limit = ceiling(campaign)
    observed = placed > 0 and since is not None and since < now
    rate = min(placed / ((now - since).total_seconds() / 60), most) if observed else most
    window, zones = schedule.Window.of(campaign), (campaign.time_zone,)
    open_now = rules.may_dial(window, policy, zones, now)
    opens_at = None if open_now else rules.next_opening(window, policy, zones, now)
    finish_at = drain(window, policy, zones, left / rate, now=opens_at or now) if open_now or opens_at else None
    if finish_at and last_due and last_due > finish_at:  # a contact is not due before then: it is dialled then
        finish_at = last_due if rules.may_dial(window, policy, zones, last_due) else rules.next_opening(
            window, policy, zones, last_due)
    if finish_at is None:
        return Estimate(unknown=f"unknown: the calling hours do not let it finish within {rules.HORIZON_DAYS} days")
    return Estimate(finish_at=finish_at, left=left, rate=rate, observed=observed, limit=limit, opens_at=opens_at,
                    live=campaign.calls_live)


def ceiling(campaign: Campaign) -> tuple[float, str]:
    """The most calls a minute the campaign can start, and what sets it: its pacing, or its concurrent
    calls when, each as long as its average answered call, they fill up first."""
    pacing = float(campaign.calls_per_minute)
    if campaign.calls_answered and campaign.talk_seconds:
        average = campaign.talk_seconds / campaign.calls_answered
        concurrency = campaign.max_concurrent * 60 / average
        if concurrency < pacing:
            return concurrency, f"{campaign.max_concurrent} calls at once of {average:.0f} s on average"
    return pacing, "the pacing"


def drain(window: schedule.Window, policy: rules.Policy, zones: tuple[str, ...], minutes: float, *,
          now: datetime.datetime) -> datetime.datetime | None:
    """When `minutes` of dialling inside the windows are done, from `now`, quarter hour by quarter hour
    (windows open and close on quarter hours); None if not within the horizon."""
    at, left = now, datetime.timedelta(minutes=minutes)
    while at < now + HORIZON:
        step_end = rollups.quarter_of(at) + rollups.QUARTER
        if rules.may_dial(window, policy, zones, at):
            if left <= step_end - at:
                return at + left
            left -= step_end - at
        at = step_end
    return None


def last_hour(campaign_ids: list[int], *, now: datetime.datetime) -> dict[int, dict]:
    """Per campaign, its quarter-hour rollups of the last hour summed: placed, ended, answered, and the
    start of the first quarter that placed a call (`since`). One indexed query."""
    rows = (QuarterRollup.objects.filter(campaign_id__in=campaign_ids, starts_at__gte=rollups.quarter_of(now - OBSERVED))
            .values("campaign_id")
            .annotate(sum_placed=Sum("placed"), sum_ended=Sum("ended"), sum_answered=Sum("answered"),
                      since=Min("starts_at", filter=Q(placed__gt=0)))
            .order_by())
    return {row["campaign_id"]: {"placed": row["sum_placed"], "ended": row["sum_ended"],
                                 "answered": row["sum_answered"], "since": row["since"]}
            for row in rows} if campaign_ids else {}


def for_campaigns(campaigns: list[Campaign], *, policy: rules.Policy, held: bool, hour: dict[int, dict],
                  now: datetime.datetime) -> dict[int, Estimate]:
    """Each campaign's estimate, given their `last_hour`; one query for the running ones whatever their number."""
    running = [c.pk for c in campaigns if c.state == Campaign.State.RUNNING]
    last_due = {}
    if running:
        # One backward step on the contact_due index per campaign: its latest pending contact's due time.
        latest = (Contact.objects.filter(campaign=OuterRef("pk"), state=Contact.State.PENDING,
                                         next_attempt_at__isnull=False)
                  .order_by("-next_attempt_at").values("next_attempt_at")[:1])
        last_due = dict(Campaign.objects.filter(pk__in=running).annotate(due=Subquery(latest))
                        .values_list("pk", "due"))
    return {
        c.pk: estimate(c, policy=policy, placed=hour.get(c.pk, {}).get("placed", 0),
                       since=hour.get(c.pk, {}).get("since"), last_due=last_due.get(c.pk), held=held, now=now)
        for c in campaigns
    }


def of(campaign: Campaign, *, now: datetime.datetime) -> Estimate:
    """One campaign's estimate (load its workspace with it); no query unless it runs."""
    running = campaign.state == Campaign.State.RUNNING
    held = running and not heartbeat.healthy(now=now)
    hour = last_hour([campaign.pk], now=now) if running else {}
    return for_campaigns([campaign], policy=rules.Policy.of(campaign.workspace), held=held, hour=hour,
                         now=now)[campaign.pk]
