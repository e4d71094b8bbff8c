"""Caller-ID pools: rotation (also across dispatchers), countries a number may call, local numbers first."""

import threading

import pytest
from django.db import connection, transaction

from campaigns import dialer, forecast, pools
from campaigns.models import Call, Campaign, Contact, Hold
from tenancy.models import Exophone
from tests.campaigns.test_dispatcher import NOON_FRIDAY, start, tick
from tests.conftest import make_campaign, make_contact, wait_for_a_lock_waiter

BANGALORE, MUMBAI, DELHI = "+918040000001", "+912240000001", "+911140000001"


def numbers(campaign, *phones):
    return [Exophone.objects.create(workspace=campaign.workspace, account=campaign.account, number=phone)
            for phone in phones]


def pool_of(campaign, *phones):
    exophones = numbers(campaign, *phones)
    campaign.exophones.set(exophones)
    return exophones


def caller_ids(**filters):
    return [call.exophone.number for call in Call.objects.filter(**filters).select_related("exophone").order_by("pk")]


def test_calls_rotate_over_the_pool_least_recently_used_first(campaign, alice, sent,
                                                             django_capture_on_commit_callbacks):
    pool_of(campaign, BANGALORE, MUMBAI, DELHI)
    start(campaign, alice, contacts=9, calls_per_minute=600, max_concurrent=50, pace_credit=5, paced_at=NOON_FRIDAY)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 5
    Campaign.objects.filter(pk=campaign.pk).update(pace_credit=4)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 4
    # The second tick goes on where the first stopped: Delhi had waited longest, then Bangalore.
    assert caller_ids() == [BANGALORE, MUMBAI, DELHI, BANGALORE, MUMBAI] + [DELHI, BANGALORE, MUMBAI, DELHI]


def test_a_pool_does_not_multiply_the_campaigns_pacing(campaign, alice, sent, django_capture_on_commit_callbacks):
    pool_of(campaign, BANGALORE, MUMBAI, DELHI)
    start(campaign, alice, contacts=9, calls_per_minute=600, max_concurrent=2, pace_credit=5, paced_at=NOON_FRIDAY)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 2  # the campaign's cap, not 2 per number


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_sharing_numbers_rotate_as_one(acme, alice, sent):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL's")
    first = make_campaign(acme, name="First")
    pool = pool_of(first, BANGALORE, MUMBAI)
    second = make_campaign(acme, name="Second", account=first.account, exophones=pool)
    for campaign in (first, second):
        start(campaign, alice, contacts=1, calls_per_minute=600, pace_credit=1, paced_at=NOON_FRIDAY)

    def plan_second():
        try:
            dialer.plan_campaign(second.pk, now=NOON_FRIDAY, streams_left=None)
        finally:
            connection.close()

    other = threading.Thread(target=plan_second)
    with transaction.atomic():
        dialer.plan_campaign(first.pk, now=NOON_FRIDAY, streams_left=None)  # holds the pool's rows until commit
        other.start()
        wait_for_a_lock_waiter("the second dispatcher to wait for the pool")
    other.join(timeout=60)
    assert sorted(caller_ids()) == sorted([BANGALORE, MUMBAI])


def test_contacts_no_number_may_call_are_skipped_with_the_reason(campaign, alice, sent,
                                                                 django_capture_on_commit_callbacks):
    [bangalore] = pool_of(campaign, BANGALORE)
    american = make_contact(campaign, phone="+14155550123")
    start(campaign, alice, contacts=1, calls_per_minute=600, pace_credit=5, paced_at=NOON_FRIDAY)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=2)
    assert forecast.forecast(campaign, now=NOON_FRIDAY).skipped == {pools.COUNTRY_NOT_ALLOWED: 1}  # before launch

    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 1
    american.refresh_from_db()
    assert (american.state, american.outcome) == (Contact.State.SKIPPED, pools.COUNTRY_NOT_ALLOWED)
    assert Hold.objects.get().contact == american
    assert caller_ids() == [BANGALORE]
    campaign.refresh_from_db()
    assert campaign.contacts_done == 1


def test_a_number_may_be_allowed_other_countries(campaign, alice):
    [bangalore] = pool_of(campaign, BANGALORE)
    assert pools.calling_codes(campaign) == {91}  # its own country by default
    bangalore.allowed_countries = [91, 1]
    bangalore.save()
    assert pools.calling_codes(campaign) == {91, 1}
    assert pools.in_countries("+14155550123", {91, 1}) and not pools.in_countries("+971501234567", {91, 1})


def test_a_contact_waits_while_the_only_numbers_that_may_call_it_are_paused(campaign, alice, sent,
                                                                            django_capture_on_commit_callbacks):
    bangalore, abroad = pool_of(campaign, BANGALORE, "+918040000002")
    Exophone.objects.filter(pk=abroad.pk).update(allowed_countries=[1], breaker=Exophone.Breaker.OPEN,
                                                 breaker_until=NOON_FRIDAY.replace(hour=23))
    american = make_contact(campaign, phone="+14155550123")
    start(campaign, alice, contacts=1, calls_per_minute=600, pace_credit=5, paced_at=NOON_FRIDAY)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 1
    american.refresh_from_db()
    assert american.state == Contact.State.PENDING  # not skipped: a number of the pool may call it later


def test_a_local_number_is_preferred_where_the_data_tells_the_area(campaign, alice, sent,
                                                                   django_capture_on_commit_callbacks):
    pool_of(campaign, BANGALORE, MUMBAI)
    for phone in ("+912266666666", "+912266666667", "+918040000099"):
        make_contact(campaign, phone=phone)
    make_contact(campaign, phone="+919812345678")  # a mobile: only "India" is known, so plain rotation
    start(campaign, alice, contacts=0, calls_per_minute=600, pace_credit=4, paced_at=NOON_FRIDAY,
          prefer_local_caller_id=True)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 4
    dialled_from = dict(Call.objects.values_list("phone", "exophone__number"))
    assert dialled_from["+912266666666"] == dialled_from["+912266666667"] == MUMBAI
    assert dialled_from["+918040000099"] == BANGALORE
    assert dialled_from["+919812345678"] in (BANGALORE, MUMBAI)
    assert pools.area_of("+919812345678") == ""
    assert pools.area_of(BANGALORE) == "Bangalore, Karnataka"
