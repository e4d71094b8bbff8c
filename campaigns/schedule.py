"""When a campaign may call and how many calls may start now: pure functions of explicit time.

Nothing here reads the clock or the database, so the dispatcher's rules are tested with any `now`.

Windows: a campaign calls between `window_start` and `window_end` local time (its time zone) on
its weekdays, within `starts_at`/`ends_at`. A window that crosses midnight (22:00–06:00) belongs to
the day it opened: Friday's 22:00–06:00 runs into Saturday morning even if Saturday is not a calling
day. The window is half-open: 21:00 itself is outside a 09:00–21:00 window.

Pacing: a token bucket. Credit grows at `calls_per_minute × factor` per second of elapsed time and
is capped at `BURST_SECONDS` of calls (at least one call), so after a pause, a closed window or a
slow tick the dispatcher catches up by a few seconds' worth at most, never a burst. A 429 halves the
factor (never below `MIN_FACTOR`), which grows back by `RECOVERY_PER_MINUTE` per minute.
"""

import datetime
import math
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

BURST_SECONDS = 5.0
MIN_FACTOR = 0.1
RECOVERY_PER_MINUTE = 0.1
DEFAULT_BACKOFF = datetime.timedelta(seconds=30)


@dataclass(frozen=True)
class Window:
    start: datetime.time
    end: datetime.time
    weekdays: frozenset[int]  # ISO: Monday = 1 … Sunday = 7
    time_zone: str
    starts_at: datetime.datetime | None = None
    ends_at: datetime.datetime | None = None

    @classmethod
    def of(cls, campaign) -> "Window":
        return cls(campaign.window_start, campaign.window_end, frozenset(campaign.weekdays),
                   campaign.time_zone, campaign.starts_at, campaign.ends_at)


def is_open(window: Window, now: datetime.datetime) -> bool:
    """Whether a call may start at `now` (an aware datetime)."""
    if window.starts_at and now < window.starts_at:
        return False
    if window.ends_at and now >= window.ends_at:
        return False
    local = now.astimezone(ZoneInfo(window.time_zone))
    clock, day = local.time(), local.isoweekday()
    if window.start < window.end:
        return window.start <= clock < window.end and day in window.weekdays
    if clock >= window.start:  # the evening part of a window that crosses midnight
        return day in window.weekdays
    if clock < window.end:  # the morning part: it belongs to the day before
        return (day - 2) % 7 + 1 in window.weekdays
    return False


@dataclass(frozen=True)
class Pace:
    credit: float = 0.0
    at: datetime.datetime | None = None
    factor: float = 1.0

    @classmethod
    def of(cls, campaign) -> "Pace":
        return cls(campaign.pace_credit, campaign.paced_at, campaign.pace_factor)


def burst_of(per_minute: float) -> float:
    return max(1.0, per_minute / 60 * BURST_SECONDS)


def refill(pace: Pace, *, per_minute: float, now: datetime.datetime) -> Pace:
    """The bucket at `now`. A first reading starts with one call's credit: a new campaign dials at once."""
    if pace.at is None:
        return Pace(credit=1.0, at=now, factor=pace.factor)
    elapsed = max(0.0, (now - pace.at).total_seconds())
    factor = min(1.0, pace.factor + RECOVERY_PER_MINUTE * elapsed / 60)
    # Credit earned at the old factor: the recovery is slow enough that the difference is noise.
    credit = min(burst_of(per_minute), pace.credit + per_minute / 60 * pace.factor * elapsed)
    return Pace(credit=credit, at=now, factor=factor)


def spend(pace: Pace, calls: int) -> Pace:
    return replace(pace, credit=pace.credit - calls)


def slowed(pace: Pace) -> Pace:
    """After a 429: half the rate, and no saved-up credit to spend the moment the backoff ends."""
    return replace(pace, credit=min(pace.credit, 0.0), factor=max(MIN_FACTOR, pace.factor / 2))


def backoff_until(now: datetime.datetime, retry_after: float | None) -> datetime.datetime:
    return now + (datetime.timedelta(seconds=retry_after) if retry_after else DEFAULT_BACKOFF)


def calls_allowed(*, credit: float, concurrency_left: int, streams_left: int | None) -> int:
    """The least of the pacing budget, the campaign's free concurrency and the account's free streams."""
    budget = min(math.floor(credit + 1e-9), concurrency_left)
    if streams_left is not None:
        budget = min(budget, streams_left)
    return max(0, budget)
