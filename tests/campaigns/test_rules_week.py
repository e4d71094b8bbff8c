"""A simulated week under the calling rules, with frozen time: 10,000 contacts over several countries and
two campaigns sharing numbers, dispatched tick by tick, calls settled in the database as callbacks would.

After it: no call outside its recipient's window, no number over a cap, no do-not-call number dialled,
and the forecast made before launch counted what happened (dialled, and skipped by reason).
"""

import datetime
import io
from collections import defaultdict
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from django.db.models import Count, F

from campaigns import dialer, forecast, imports, lifecycle, rules
from campaigns.models import Call, Campaign, Contact, DoNotCall, Hold
from streams import heartbeat
from tests.conftest import call_abroad, make_campaign

pytestmark = pytest.mark.usefixtures("default_policy")  # the product's policy window

MONDAY = datetime.datetime(2026, 11, 30, 0, 0, tzinfo=datetime.UTC)
STEP = datetime.timedelta(minutes=30)
COUNTRIES = [  # (prefix, digits after it, share of the contacts)
    ("+9198", 8, 0.55),  # India
    ("+1212", 7, 0.1),  # New York
    ("+1415", 7, 0.1),  # Los Angeles
    ("+447911", 6, 0.1),  # United Kingdom
    ("+614", 8, 0.1),  # Australian mobiles: eight zones at once
    ("+7916", 7, 0.05),  # Russian mobiles: from Kaliningrad's neighbour to Kamchatka
]


def numbers(total: int) -> list[str]:
    phones = []
    for prefix, digits, share in COUNTRIES:
        n, made = 0, 0
        while made < int(total * share):
            phone = f"{prefix}{(2 * 10 ** (digits - 1) + n * 7919) % 10 ** digits:0{digits}d}"
            n += 1
            if phonenumbers.is_valid_number(phonenumbers.parse(phone)) and not rules.unreachable(phone):
                phones.append(phone)
                made += 1
    return phones


def settle(now):
    """Every queued call ends: numbers ending in 1–3 go unanswered (retried), the rest complete."""
    queued = Call.objects.filter(state=Call.State.QUEUED)
    unanswered = queued.filter(phone__regex=r"[123]$")
    for campaign in Campaign.objects.filter(calls__state=Call.State.QUEUED).distinct():
        mine = queued.filter(campaign=campaign)
        ended = mine.count()
        retry = Contact.objects.filter(calls__in=unanswered.filter(campaign=campaign), attempts__lt=F("campaign__max_attempts"))
        retried = retry.update(state=Contact.State.PENDING, next_attempt_at=now + datetime.timedelta(hours=2))
        Contact.objects.filter(calls__in=mine, state=Contact.State.CALLING).update(state=Contact.State.DONE)
        Campaign.objects.filter(pk=campaign.pk).update(calls_live=F("calls_live") - ended,
                                                      contacts_done=F("contacts_done") + ended - retried)
    unanswered.update(state=Call.State.NO_ANSWER, ended_at=now)
    queued.update(state=Call.State.COMPLETED, ended_at=now)


@pytest.mark.usefixtures("private_media")
def test_a_week_of_calls_keeps_every_rule_and_the_forecast(acme, alice, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(dialer, "send_place_calls", lambda ids: None)
    phones = numbers(10_000)
    big = make_campaign(acme, name="Renewals", window_start=datetime.time(8), window_end=datetime.time(23),
                        weekdays=list(range(1, 8)), calls_per_minute=2000, max_concurrent=100_000, max_attempts=3)
    shared = make_campaign(acme, account=big.account, name="Collections", window_start=datetime.time(10),
                           window_end=datetime.time(16), weekdays=list(range(1, 7)), calls_per_minute=2000,
                           max_concurrent=100_000, max_attempts=3)
    call_abroad(big, 1, 44, 61, 7)  # the two campaigns share their caller ID
    imports.import_now(big, io.BytesIO(("phone\n" + "\n".join(phones)).encode()), region="IN")
    imports.import_now(shared, io.BytesIO(("phone\n" + "\n".join(phones[::5])).encode()), region="IN")
    opted_out = phones[3::97]
    DoNotCall.objects.bulk_create(DoNotCall(workspace=acme, phone=phone) for phone in opted_out)
    account = big.account
    account.max_allowed_streams, account.active_streams, account.streams_read_at = 10**6, 0, MONDAY
    account.save()

    before = {c.pk: forecast.forecast(Campaign.objects.select_related("workspace").get(pk=c.pk), now=MONDAY)
              for c in (big, shared)}
    for campaign in (big, shared):
        lifecycle.start_campaign(campaign, by=alice, now=MONDAY)

    now = MONDAY
    while now < MONDAY + datetime.timedelta(days=7):
        heartbeat.publish("stream-server", now=now)
        with django_capture_on_commit_callbacks(execute=True):
            dialer.dispatch(now=now)
        settle(now)
        now += STEP

    policy = rules.Policy.of(acme)
    calls_by_phone = defaultdict(list)
    for phone, at, zone in Call.objects.values_list("phone", "created_at", "contact__time_zone"):
        calls_by_phone[phone].append(at)
        for name in zone.split():  # inside the policy window in every zone of the number
            local = at.astimezone(ZoneInfo(name))
            assert policy.start <= local.time() < policy.end, (phone, at, name)
    for campaign_id, zone, at in Call.objects.values_list("campaign", "campaign__time_zone", "created_at"):
        window = big if campaign_id == big.pk else shared
        local = at.astimezone(ZoneInfo(zone))
        assert window.window_start <= local.time() < window.window_end
    for phone, times in calls_by_phone.items():
        for at in times:
            assert sum(at - rules.DAY < t <= at for t in times) <= policy.per_day, phone
            assert sum(at - rules.WEEK < t <= at for t in times) <= policy.per_week, phone
    assert not set(calls_by_phone) & set(opted_out)
    assert sum(len(times) for times in calls_by_phone.values()) > 10_000  # retries happened

    for campaign in (big, shared):
        predicted = before[campaign.pk]
        dialled = Contact.objects.filter(campaign=campaign, attempts__gt=0).count()
        skipped = dict(Hold.objects.filter(campaign=campaign, until__isnull=True).values_list("reason")
                       .annotate(n=Count("pk")))
        assert (dialled, skipped) == (predicted.dialled, dict(predicted.skipped)), campaign.name
        assert not Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).exists()
    assert before[shared.pk].skipped[Hold.Reason.NO_WINDOW] > 0  # New York's 09:00–21:00 never meets 10:00–16:00 in Kolkata
    assert Hold.objects.filter(reason=Hold.Reason.CAP).exists()  # the shared numbers waited for their caps
