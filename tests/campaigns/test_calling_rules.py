"""The dispatcher under the calling rules, with frozen time: recipients' windows, caps across campaigns, holds."""

import datetime
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections, transaction

from campaigns import calls, compliance, dialer, rules
from campaigns.models import Call, Campaign, Contact, Hold, Recipient
from tests.campaigns.test_dispatcher import NOON_FRIDAY, start, tick
from tests.conftest import call_abroad, make_campaign, make_contact

pytestmark = pytest.mark.usefixtures("default_policy")  # the product's policy window

PHONES = {  # one recipient per zone, and one in two zones at once
    "+919876543210": ("Asia/Calcutta",),
    "+12125550123": ("America/New_York",),
    "+14155550123": ("America/Los_Angeles",),
    "+447911123456": ("Europe/London",),
    "+61412345678": None,  # Australian mobile: eight zones, from Perth to Lord Howe
}
STEP = datetime.timedelta(minutes=10)


@pytest.fixture
def sent(monkeypatch):
    monkeypatch.setattr(dialer, "send_place_calls", lambda ids: None)


def settle(state=Call.State.COMPLETED, *, at):
    """Every queued call ends now, as its callbacks would have it (the retry policy applies)."""
    for call in Call.objects.filter(state=Call.State.QUEUED):
        Call.objects.filter(pk=call.pk).update(state=Call.State.RINGING)
        calls.advance(call, state, at=at)


def run(now, until, capture, state=Call.State.COMPLETED, step=STEP):
    while now < until:
        tick(now, capture)
        settle(state, at=now)
        now += step


def inside(policy: rules.Policy, phone: str, at: datetime.datetime) -> bool:
    """Checked apart from the code under test: the local clock in every zone of the number."""
    for zone in rules.zones_of_number(phone):
        local = at.astimezone(ZoneInfo(zone))
        if not (policy.start <= local.time() < policy.end) or local.isoweekday() in policy.quiet_weekdays:
            return False
    return True


def test_no_call_starts_outside_the_recipients_window(campaign, alice, sent, django_capture_on_commit_callbacks):
    for phone in PHONES:
        make_contact(campaign, phone=phone)
    call_abroad(campaign, 1, 44, 61)
    start(campaign, alice, contacts=0, window_start=datetime.time(0), window_end=datetime.time(23, 59),
          weekdays=list(range(1, 8)), calls_per_minute=60, max_attempts=4, retry_after_minutes=60)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=len(PHONES))
    policy = rules.Policy.of(campaign.workspace)

    run(NOON_FRIDAY, NOON_FRIDAY + datetime.timedelta(days=2), django_capture_on_commit_callbacks,
        state=Call.State.NO_ANSWER)

    dialled = list(Call.objects.values_list("phone", "created_at"))
    assert {phone for phone, _ in dialled} == set(PHONES)  # every zone got its turn
    assert all(inside(policy, phone, at) for phone, at in dialled)
    # Each one was dialled as soon as its window opened (or at once), not later.
    new_york = min(at for phone, at in dialled if phone == "+12125550123")
    assert new_york.astimezone(ZoneInfo("America/New_York")).time() == datetime.time(9)
    assert Call.objects.exclude(allowed_by="").count() == len(dialled)


def test_a_window_across_midnight_meets_the_policy_in_each_zone(campaign, alice, sent,
                                                               django_capture_on_commit_callbacks):
    for phone in ("+919876543210", "+447911123456"):
        make_contact(campaign, phone=phone)
    call_abroad(campaign, 44)
    start(campaign, alice, contacts=0, window_start=datetime.time(22), window_end=datetime.time(6),
          weekdays=list(range(1, 8)), calls_per_minute=60)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=2)

    run(NOON_FRIDAY, NOON_FRIDAY + datetime.timedelta(days=1), django_capture_on_commit_callbacks)

    # 22:00–06:00 in Kolkata meets 09:00–21:00 in London from 16:30 to 21:00 UTC; the first tick of
    # the night spends its one call of credit on the Kolkata contact, skipped for good.
    london = Call.objects.get(phone="+447911123456")
    assert london.created_at == datetime.datetime(2026, 11, 27, 16, 40, tzinfo=datetime.UTC)
    kolkata = Contact.objects.get(phone="+919876543210")
    assert (kolkata.state, kolkata.outcome) == ("skipped", Hold.Reason.NO_WINDOW)
    assert Hold.objects.get(contact=kolkata).until is None
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.COMPLETED


def test_a_closed_zone_waits_as_a_whole(campaign, alice, sent, django_capture_on_commit_callbacks):
    for n in range(20):
        make_contact(campaign, phone=f"+9198765432{n:02d}", time_zone="Asia/Calcutta")
    start(campaign, alice, contacts=0, window_start=datetime.time(0), window_end=datetime.time(23, 59),
          weekdays=list(range(1, 8)))
    late = NOON_FRIDAY.replace(hour=17)  # 22:30 in Kolkata
    assert tick(late, django_capture_on_commit_callbacks) == 0
    opening = datetime.datetime(2026, 11, 28, 3, 30, tzinfo=datetime.UTC)
    assert set(Contact.objects.values_list("next_attempt_at", flat=True)) == {opening}
    assert not Hold.objects.exists()  # a closed window is a calendar, not a hold


def test_caps_count_every_campaigns_attempts_and_hold_until_they_free(campaign, alice, acme, sent,
                                                                     django_capture_on_commit_callbacks):
    acme.max_attempts_per_day, acme.max_attempts_per_week = 1, 2
    acme.save()
    other = make_campaign(acme, account=campaign.account, name="Collections")
    for each in (campaign, other):
        make_contact(each, phone="+919876543210")
        start(each, alice, contacts=0, max_attempts=5, retry_after_minutes=0, weekdays=list(range(1, 8)))
        Campaign.objects.filter(pk=each.pk).update(contacts_total=1)

    # Hourly ticks over eight days: the caps free on the hour of the first call, so a tick meets each.
    run(NOON_FRIDAY, NOON_FRIDAY + datetime.timedelta(days=8), django_capture_on_commit_callbacks,
        state=Call.State.NO_ANSWER, step=datetime.timedelta(hours=1))

    times = sorted(Call.objects.values_list("created_at", flat=True))
    for at in times:
        assert sum(at - datetime.timedelta(days=1) < t <= at for t in times) <= 1
        assert sum(at - datetime.timedelta(days=7) < t <= at for t in times) <= 2
    # Two in the first week, the third once the first left the 7 days: each as soon as its cap freed.
    assert times == [NOON_FRIDAY + datetime.timedelta(days=n) for n in (0, 1, 7)]
    holds = Hold.objects.filter(reason=Hold.Reason.CAP)
    assert holds.filter(campaign=other).exists() and all(h.until > h.at for h in holds)
    assert not Contact.objects.filter(outcome="failed").exists()  # held, never failed


def test_a_withdrawn_call_gives_its_attempt_back(campaign, alice, acme, sent, django_capture_on_commit_callbacks):
    from campaigns import lifecycle

    start(campaign, alice, contacts=1)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert len(Recipient.objects.get().attempts) == 1
    lifecycle.pause_campaign(campaign, by=alice)
    assert Recipient.objects.get().attempts == []


@pytest.mark.django_db(transaction=True)
def test_two_campaigns_dialling_one_number_at_once_take_turns(campaign, alice, acme, sent):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: row locks are PostgreSQL's")
    acme.max_attempts_per_day = 1
    acme.save()
    other = make_campaign(acme, account=campaign.account, name="Collections")
    shared = "+919876543210"
    for each in (campaign, other):
        make_contact(each, phone=shared)
        make_contact(each)
    held, release, claimed = threading.Event(), threading.Event(), {}

    def first():
        with transaction.atomic():
            locked = Campaign.objects.select_related("workspace").get(pk=campaign.pk)
            contacts = dialer.claim_due_contacts(locked, 10, now=NOON_FRIDAY)
            claimed["first"] = [c.phone for c in compliance.admit(locked, contacts, now=NOON_FRIDAY).dial]
            held.set()
            release.wait(30)  # its locks held while the other campaign claims
        connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(30)
    locked = Campaign.objects.select_related("workspace").get(pk=other.pk)
    with transaction.atomic():
        during = [c.phone for c in dialer.claim_due_contacts(locked, 10, now=NOON_FRIDAY)]
    release.set()
    thread.join(30)
    with transaction.atomic():
        contacts = dialer.claim_due_contacts(locked, 10, now=NOON_FRIDAY)
        after = compliance.admit(locked, contacts, now=NOON_FRIDAY)

    assert shared in claimed["first"]
    assert shared not in during and len(during) == 1  # passed over while the first claim held the number
    assert shared not in [c.phone for c in after.dial]  # then seen at its cap: held, not dialled
    hold = Hold.objects.get(phone=shared)
    assert (hold.reason, hold.campaign_id, hold.until) == (Hold.Reason.CAP, other.pk,
                                                           NOON_FRIDAY + datetime.timedelta(days=1))


@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_never_dial_a_number_over_its_cap(campaign, alice, acme, sent):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: row locks are PostgreSQL's")
    acme.max_attempts_per_day = 1
    acme.save()
    campaigns = [campaign] + [make_campaign(acme, account=campaign.account, name=f"Other {n}") for n in range(3)]
    phones = [f"+9198765000{n:02d}" for n in range(20)]
    for each in campaigns:
        for phone in phones:
            make_contact(each, phone=phone)
        start(each, alice, contacts=0, calls_per_minute=6000, max_concurrent=1000, pace_credit=100,
              paced_at=NOON_FRIDAY)
    barrier = threading.Barrier(len(campaigns))

    def plan(pk):
        barrier.wait(30)
        dialer.plan_campaign(pk, now=NOON_FRIDAY, streams_left=None)
        connections.close_all()

    threads = [threading.Thread(target=plan, args=(each.pk,)) for each in campaigns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    per_phone = {phone: Call.objects.filter(phone=phone).count() for phone in phones}
    assert max(per_phone.values()) == 1
    assert all(len(r.attempts) == per_phone[r.phone] for r in Recipient.objects.all())
