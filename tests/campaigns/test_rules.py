"""The calling rules as pure functions: recipients' zones, the windows' intersection, quiet days, caps."""

import datetime

from campaigns import rules, schedule

UTC = datetime.UTC
TRAI = rules.Policy(datetime.time(9), datetime.time(21), frozenset(), frozenset(), 3, 10)
ALWAYS = schedule.Window(datetime.time(0), datetime.time(23, 59), rules.EVERY_DAY, "Asia/Kolkata")
FRIDAY = datetime.datetime(2026, 11, 27, tzinfo=UTC)  # a Friday; no daylight saving in play for a week


def at(hour, minute=0, day=FRIDAY):
    return day.replace(hour=hour, minute=minute)


def test_a_number_gives_its_zones_and_a_multi_zone_number_all_of_them():
    assert rules.zones_of_number("+919876543210") == ("Asia/Calcutta",)
    assert rules.zones_of_number("+12125550123") == ("America/New_York",)
    assert len(rules.zones_of_number("+79161234567")) > 5
    assert rules.zones_of_number("+15555550100") == ()  # not a real number: no zone


def test_a_contacts_zones_come_from_the_upload_then_the_number_then_the_campaign():
    assert rules.recipient_zones("Europe/Paris", "+919876543210", fallback="UTC") == ("Europe/Paris",)
    assert rules.recipient_zones("", "+919876543210", fallback="UTC") == ("Asia/Calcutta",)
    assert rules.recipient_zones("", "+15555550100", fallback="UTC") == ("UTC",)


def test_numbers_no_call_can_reach_are_named():
    assert rules.unreachable("+919876543210") == ""
    assert rules.unreachable("+15555550100") == "an invalid number"
    assert rules.unreachable("+19005550123") == "a premium-rate number"


def test_the_policy_window_is_the_recipients_local_time():
    kolkata, new_york = ("Asia/Calcutta",), ("America/New_York",)
    assert rules.policy_open(TRAI, kolkata, at(3, 30))  # 09:00 in Kolkata
    assert not rules.policy_open(TRAI, kolkata, at(3, 29))
    assert not rules.policy_open(TRAI, kolkata, at(15, 30))  # 21:00: the end is outside
    assert not rules.policy_open(TRAI, new_york, at(3, 30))  # 22:30 the evening before in New York
    assert rules.policy_open(TRAI, new_york, at(14))  # 09:00 in New York


def test_a_number_in_several_zones_uses_the_overlap():
    both = ("America/Los_Angeles", "America/New_York")
    assert rules.policy_open(TRAI, ("America/New_York",), at(14))
    assert not rules.policy_open(TRAI, both, at(14))  # 06:00 in Los Angeles
    assert rules.policy_open(TRAI, both, at(17))  # 09:00 in Los Angeles, 12:00 in New York
    assert not rules.policy_open(TRAI, both, at(2, day=FRIDAY + datetime.timedelta(days=1)))  # 21:00 in New York
    assert rules.next_opening(ALWAYS.__class__(datetime.time(0), datetime.time(23, 59), rules.EVERY_DAY, "UTC"),
                              TRAI, both, at(14)) == at(17)


def test_quiet_days_and_holidays_are_the_recipients_dates():
    quiet = rules.Policy(datetime.time(9), datetime.time(21), frozenset({7}), frozenset({datetime.date(2026, 12, 25)}),
                         3, 10)
    saturday_night_utc = at(20, day=FRIDAY + datetime.timedelta(days=1))  # Sunday 01:30 in Kolkata, Sat 15:00 NY
    sunday = FRIDAY + datetime.timedelta(days=2)
    assert not rules.policy_open(quiet, ("Asia/Calcutta",), at(6, day=sunday))
    assert rules.policy_open(quiet, ("America/New_York",), saturday_night_utc)
    christmas = datetime.datetime(2026, 12, 25, 6, tzinfo=UTC)
    assert not rules.policy_open(quiet, ("Asia/Calcutta",), christmas)
    # The next opening skips Sunday and opens Monday 09:00 in Kolkata.
    assert rules.next_opening(ALWAYS, quiet, ("Asia/Calcutta",), at(16)) == at(3, 30, day=FRIDAY + datetime.timedelta(days=1))
    assert rules.next_opening(ALWAYS, quiet, ("Asia/Calcutta",), at(16, day=FRIDAY + datetime.timedelta(days=1))) == at(
        3, 30, day=FRIDAY + datetime.timedelta(days=3))


def test_the_intersection_with_a_campaign_window_across_midnight():
    night = schedule.Window(datetime.time(22), datetime.time(6), rules.EVERY_DAY, "Asia/Kolkata")
    london, kolkata = ("Europe/London",), ("Asia/Calcutta",)
    # 22:00–06:00 in Kolkata is 16:30–00:30 in London: the intersection is 16:30–21:00 London time.
    assert rules.next_opening(night, TRAI, london, at(12)) == at(16, 30)
    assert rules.may_dial(night, TRAI, london, at(20, 59))
    assert not rules.may_dial(night, TRAI, london, at(21))
    assert rules.next_opening(night, TRAI, london, at(21)) == at(16, 30, day=FRIDAY + datetime.timedelta(days=1))
    # In Kolkata itself the two never meet.
    assert rules.next_opening(night, TRAI, kolkata, at(12)) is None


def test_a_campaign_that_ends_has_no_opening_after_it():
    ending = schedule.Window(datetime.time(9), datetime.time(21), rules.EVERY_DAY, "Asia/Kolkata",
                             ends_at=at(12))
    assert rules.next_opening(ending, TRAI, ("America/New_York",), at(4)) is None


def test_caps_count_rolling_windows_and_say_when_they_free():
    hour = datetime.timedelta(hours=1)
    ledger = [int((at(10) - n * hour).timestamp()) for n in (0, 2, 4)]
    assert rules.cap_frees_at(ledger[:2], TRAI, at(10)) is None
    assert rules.cap_frees_at(ledger, TRAI, at(10)) == at(6) + datetime.timedelta(days=1)  # the oldest leaves
    week = [int((at(10) - n * datetime.timedelta(days=1) - 5 * hour).timestamp()) for n in range(10)]
    assert rules.counts(week, at(10)) == (1, 7)  # three of them are older than 7 days
    seven_in_seven = rules.Policy(datetime.time(8), datetime.time(21), frozenset(), frozenset(), 7, 7)
    daily = [int((at(10) - n * datetime.timedelta(days=1)).timestamp()) for n in range(1, 8)]
    assert rules.cap_frees_at(daily, seven_in_seven, at(10)) is None  # the one 7 days old has just left
    assert rules.cap_frees_at(daily[:6] + [int(at(9).timestamp())], seven_in_seven, at(10)) == at(10) + datetime.timedelta(days=1)


def test_the_ledger_forgets_what_is_older_than_a_week():
    old = int((at(10) - datetime.timedelta(days=8)).timestamp())
    assert rules.recorded([old], at(10)) == [int(at(10).timestamp())]
