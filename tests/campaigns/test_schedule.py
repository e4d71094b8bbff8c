"""Windows and pacing as pure functions of an explicit `now`: no clock, no database."""

import datetime

import pytest

from campaigns import schedule
from campaigns.schedule import Pace, Window

UTC = datetime.UTC
T = datetime.time
NINE, NINE_PM = T(9), T(21)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).astimezone(UTC)


def window(start=NINE, end=NINE_PM, weekdays=(1, 2, 3, 4, 5, 6), tz="Asia/Kolkata", **bounds) -> Window:
    return Window(start, end, frozenset(weekdays), tz, **bounds)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-11-27T09:00:00+05:30", True),  # a Friday, the window's first instant
        ("2026-11-27T08:59:59+05:30", False),
        ("2026-11-27T20:59:59+05:30", True),
        ("2026-11-27T21:00:00+05:30", False),  # half-open: 21:00 is already outside
        ("2026-11-29T12:00:00+05:30", False),  # Sunday is not a calling day by default
    ],
)
def test_the_default_window_follows_indian_hours_in_the_campaigns_time_zone(moment, expected):
    assert schedule.is_open(window(), at(moment)) is expected


def test_it_reads_the_window_in_the_campaigns_own_time_zone():
    # 04:00 UTC is 09:30 in Kolkata but 23:00 the evening before in New York.
    now = at("2026-11-27T04:00:00+00:00")
    assert schedule.is_open(window(tz="Asia/Kolkata"), now)
    assert not schedule.is_open(window(tz="America/New_York"), now)


def test_a_window_across_midnight_belongs_to_the_day_it_opened():
    night = window(start=T(22), end=T(6), weekdays=(5,))  # Friday nights only
    assert schedule.is_open(night, at("2026-11-27T22:30:00+05:30"))  # Friday evening
    assert schedule.is_open(night, at("2026-11-28T05:59:00+05:30"))  # Saturday morning: still Friday's
    assert not schedule.is_open(night, at("2026-11-28T06:00:00+05:30"))
    assert not schedule.is_open(night, at("2026-11-27T05:00:00+05:30"))  # Friday morning is Thursday's
    assert not schedule.is_open(night, at("2026-11-28T22:30:00+05:30"))  # Saturday evening
    assert not schedule.is_open(night, at("2026-11-27T12:00:00+05:30"))


def test_sunday_night_runs_into_monday_morning():
    night = window(start=T(23), end=T(1), weekdays=(7,))
    assert schedule.is_open(night, at("2026-11-30T00:30:00+05:30"))  # Monday 00:30


def test_the_date_range_bounds_the_window():
    bounded = window(starts_at=at("2026-11-27T10:00:00+05:30"), ends_at=at("2026-11-27T11:00:00+05:30"))
    assert not schedule.is_open(bounded, at("2026-11-27T09:59:00+05:30"))
    assert schedule.is_open(bounded, at("2026-11-27T10:00:00+05:30"))
    assert not schedule.is_open(bounded, at("2026-11-27T11:00:00+05:30"))


def test_a_new_campaign_may_dial_one_call_at_once():
    pace = schedule.refill(Pace(), per_minute=10, now=at("2026-11-27T10:00:00+00:00"))
    assert schedule.calls_allowed(credit=pace.credit, concurrency_left=5, streams_left=None) == 1


def test_pacing_meets_the_configured_rate_over_an_hour_within_a_call():
    start = at("2026-11-27T10:00:00+00:00")
    pace, placed = Pace(), 0
    for tick in range(0, 3600, 2):  # a beat tick every two seconds
        pace = schedule.refill(pace, per_minute=37, now=start + datetime.timedelta(seconds=tick))
        n = schedule.calls_allowed(credit=pace.credit, concurrency_left=1000, streams_left=None)
        pace, placed = schedule.spend(pace, n), placed + n
    assert abs(placed - 37 * 60) <= 1


def test_credit_never_saves_more_than_a_few_seconds_of_calls():
    start = at("2026-11-27T10:00:00+00:00")
    pace = schedule.refill(Pace(credit=0, at=start), per_minute=600, now=start + datetime.timedelta(hours=2))
    assert pace.credit == pytest.approx(600 / 60 * schedule.BURST_SECONDS)
    slow = schedule.refill(Pace(credit=0, at=start), per_minute=1, now=start + datetime.timedelta(hours=2))
    assert slow.credit == 1  # at least one call, or a slow campaign could never dial


@pytest.mark.parametrize(
    ("credit", "concurrency_left", "streams_left", "expected"),
    [(7.9, 10, None, 7), (7.9, 3, None, 3), (7.9, 10, 2, 2), (7.9, -2, 5, 0), (0.99, 5, 5, 0), (5, 5, 0, 0)],
)
def test_the_least_of_pacing_concurrency_and_streams_wins(credit, concurrency_left, streams_left, expected):
    assert schedule.calls_allowed(credit=credit, concurrency_left=concurrency_left, streams_left=streams_left) == expected


def test_a_429_halves_the_rate_which_recovers_with_time():
    start = at("2026-11-27T10:00:00+00:00")
    slowed = schedule.slowed(Pace(credit=3, at=start, factor=1.0))
    assert (slowed.credit, slowed.factor) == (0, 0.5)
    assert schedule.slowed(Pace(factor=schedule.MIN_FACTOR)).factor == schedule.MIN_FACTOR
    later = schedule.refill(slowed, per_minute=60, now=start + datetime.timedelta(minutes=2))
    assert later.factor == pytest.approx(0.5 + 2 * schedule.RECOVERY_PER_MINUTE)
    assert schedule.refill(slowed, per_minute=60, now=start + datetime.timedelta(hours=1)).factor == 1.0


def test_the_backoff_honours_retry_after_or_a_default():
    now = at("2026-11-27T10:00:00+00:00")
    assert schedule.backoff_until(now, 12) == now + datetime.timedelta(seconds=12)
    assert schedule.backoff_until(now, None) == now + schedule.DEFAULT_BACKOFF
