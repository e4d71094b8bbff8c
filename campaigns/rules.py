"""The calling rules every campaign of a workspace obeys: pure functions of explicit time, no database.

Windows: a call may start only inside the intersection of the campaign's window (campaigns.schedule:
its own hours and days in its own time zone) and the workspace's policy window, which is evaluated in
the recipient's time zone: the zones `phonenumbers` gives for the number, or the one the upload named.
A number with several zones (a Russian mobile, a US toll-free number) must be inside the policy
window in every one of them: the most restrictive overlap. The policy window never crosses midnight
(09:00–21:00, 08:00–19:00); its quiet weekdays and holidays are the recipient's local dates.

Caps: at most `per_day` attempts in any rolling 24 hours and `per_week` in any rolling 7 days per
number, across all the workspace's campaigns. The ledger is the list of a number's attempt times in
the last 7 days (campaigns.models.Recipient), which the dispatcher reads on the row it locks.
"""

import datetime
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from phonenumbers import timezone as number_zones

from campaigns import schedule

DAY = datetime.timedelta(days=1)
WEEK = datetime.timedelta(days=7)
LEDGER_SPAN = WEEK  # the longest rolling window: older attempts are forgotten
HORIZON_DAYS = 62  # how far ahead the next opening is looked for; none by then: outside every window
EVERY_DAY = frozenset(range(1, 8))
# Numbers no person answers: phonenumbers' types that a call cannot (or must not) reach.
UNREACHABLE_TYPES = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.PAGER: "a pager number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail access number",
}


@dataclass(frozen=True)
class Policy:
    """The workspace's calling policy (tenancy.models.Workspace holds it)."""

    start: datetime.time
    end: datetime.time
    quiet_weekdays: frozenset[int]  # ISO: Monday = 1 … Sunday = 7
    holidays: frozenset[datetime.date]
    per_day: int
    per_week: int

    @classmethod
    def of(cls, workspace) -> "Policy":
        return cls(workspace.calling_start, workspace.calling_end, frozenset(workspace.quiet_weekdays),
                   frozenset(datetime.date.fromisoformat(day) for day in workspace.holidays),
                   workspace.max_attempts_per_day, workspace.max_attempts_per_week)

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} recipient time, {self.per_day}/24 h, {self.per_week}/7 d"


# Every hour of every day, for a workspace that calls only the Exotel simulator (the demo, the test suite):
# the policy that lets a campaign started at any hour run at once.
WHOLE_DAY = {"calling_start": datetime.time.min, "calling_end": datetime.time.max}

# Presets the workspace settings offer; each sets the window and the caps (quiet days stay as chosen).
PRESETS = {
    "trai": ("TRAI commercial communication: 09:00–21:00, 3 a day, 10 a week",
             {"calling_start": datetime.time(9), "calling_end": datetime.time(21),
              "max_attempts_per_day": 3, "max_attempts_per_week": 10}),
    "rbi": ("RBI collections (fair practices code): 08:00–19:00, 3 a day, 10 a week",
            {"calling_start": datetime.time(8), "calling_end": datetime.time(19),
             "max_attempts_per_day": 3, "max_attempts_per_week": 10}),
    "7in7": ("7 in 7 (US Regulation F collections): 08:00–21:00, 7 in any 7 days",
             {"calling_start": datetime.time(8), "calling_end": datetime.time(21),
              "max_attempts_per_day": 7, "max_attempts_per_week": 7}),
}


# --- the recipient's number ---------------------------------------------------------------------

def _parse(phone: str):
    try:
        return phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None


@functools.lru_cache(maxsize=4096)
def zones_of_number(phone: str) -> tuple[str, ...]:
    """The IANA zones `phonenumbers` places an E.164 number in; () when it cannot tell."""
    number = _parse(phone)
    if number is None:
        return ()
    return tuple(sorted(zone for zone in number_zones.time_zones_for_number(number) if zone in known_zones()))


@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())  # it reads the zone files on every call


def unreachable(phone: str) -> str:
    """Why no call can reach the number ("" when one can): invalid, or a type no person answers."""
    number = _parse(phone)
    if number is None or not phonenumbers.is_valid_number(number):
        return "an invalid number"
    return UNREACHABLE_TYPES.get(phonenumbers.number_type(number), "")


def zone_key(zones: tuple[str, ...]) -> str:
    """How a contact stores its zones (Contact.time_zone): names separated by spaces."""
    return " ".join(zones)


def recipient_zones(key: str, phone: str, *, fallback: str) -> tuple[str, ...]:
    """A contact's zones: those stored at import, else the number's, else the campaign's (`fallback`)."""
    return tuple(key.split()) or zones_of_number(phone) or (fallback,)


# --- windows ------------------------------------------------------------------------------------

def policy_open(policy: Policy, zones: tuple[str, ...], now: datetime.datetime) -> bool:
    """Whether `now` is inside the policy window in every one of the recipient's zones."""
    for zone in zones:
        local = now.astimezone(ZoneInfo(zone))
        if not policy.start <= local.time() < policy.end:
            return False
        if local.isoweekday() in policy.quiet_weekdays or local.date() in policy.holidays:
            return False
    return True


def may_dial(window: schedule.Window, policy: Policy, zones: tuple[str, ...], now: datetime.datetime) -> bool:
    """Inside the campaign's window and the workspace's, in the recipient's time: the intersection."""
    return schedule.is_open(window, now) and policy_open(policy, zones, now)


@functools.lru_cache(maxsize=1024)
def next_opening(window: schedule.Window, policy: Policy, zones: tuple[str, ...],
                 now: datetime.datetime) -> datetime.datetime | None:
    """The first instant from `now` at which a call may start; None if none within HORIZON_DAYS.

    The intersection opens when the last of its windows opens, so the instant is one of: now, the
    campaign's start, or a daily opening of the campaign's window (its zone) or the policy's (each
    recipient zone). Each candidate is tested in order; the first that passes is the answer.
    """
    openings = [(window.time_zone, window.start)] + [(zone, policy.start) for zone in zones]
    candidates = {now} | ({window.starts_at} if window.starts_at and window.starts_at > now else set())
    for zone, clock in openings:
        tz = ZoneInfo(zone)
        today = now.astimezone(tz).date()
        for days in range(-1, HORIZON_DAYS + 1):
            opening = datetime.datetime.combine(today + datetime.timedelta(days=days), clock, tzinfo=tz)
            if opening > now:
                candidates.add(opening.astimezone(datetime.UTC))
    return next((at for at in sorted(candidates) if may_dial(window, policy, zones, at)), None)


# --- attempt caps -------------------------------------------------------------------------------

def ledger_times(ledger: list[int]) -> list[datetime.datetime]:
    return [datetime.datetime.fromtimestamp(seconds, datetime.UTC) for seconds in ledger]


def cap_frees_at(ledger: list[int], policy: Policy, now: datetime.datetime) -> datetime.datetime | None:
    """None if one more attempt keeps the number within both caps; else when it will."""
    frees = None
    for limit, span in ((policy.per_day, DAY), (policy.per_week, WEEK)):
        recent = sorted(at for at in ledger_times(ledger) if at > now - span)
        if len(recent) >= limit:
            # Room comes back when enough of the oldest leave the span for one more to fit.
            at = recent[len(recent) - limit] + span
            frees = at if frees is None else max(frees, at)
    return frees


def counts(ledger: list[int], now: datetime.datetime) -> tuple[int, int]:
    """Attempts in the last 24 hours and the last 7 days."""
    times = ledger_times(ledger)
    return sum(at > now - DAY for at in times), sum(at > now - WEEK for at in times)


def recorded(ledger: list[int], now: datetime.datetime) -> list[int]:
    """The ledger with an attempt at `now`, older ones forgotten."""
    since = (now - LEDGER_SPAN).timestamp()
    return [seconds for seconds in ledger if seconds > since] + [int(now.timestamp())]


def allowed_by(window: schedule.Window, policy: Policy, zones: tuple[str, ...], ledger: list[int],
               now: datetime.datetime) -> str:
    """The rule that let an attempt start at `now`, as the compliance export shows it (ledger: with it)."""
    day, week = counts(ledger, now)
    local = now.astimezone(ZoneInfo(zones[0]))
    shown = ", ".join(zones[:2]) + (f" (+{len(zones) - 2} zones)" if len(zones) > 2 else "")
    return (f"{local:%a %H:%M} in {shown}: inside policy {policy.start:%H:%M}–{policy.end:%H:%M} and campaign "
            f"{window.start:%H:%M}–{window.end:%H:%M} {window.time_zone}; attempt {day} of {policy.per_day} "
            f"in 24 h, {week} of {policy.per_week} in 7 d")
