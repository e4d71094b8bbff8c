"""The caller IDs' circuit breaker: trips on failures, a trial call after the cool-down, the campaign pauses when all are."""

import datetime

from campaigns import breaker
from campaigns.models import Call, Campaign
from tenancy.models import Exophone
from tests.campaigns.test_dispatcher import NOON_FRIDAY, start, tick
from tests.campaigns.test_pools import BANGALORE, MUMBAI, pool_of
from tests.conftest import make_call, make_campaign

Breaker = Exophone.Breaker


def ended(campaign, exophone, state, n, **fields):
    """Calls another campaign placed from `exophone` (the same numbers, not the same contacts)."""
    earlier = make_campaign(campaign.workspace, name="Earlier", account=campaign.account, exophones=[exophone])
    for _ in range(n):
        make_call(earlier, exophone=exophone, state=state, created_at=NOON_FRIDAY, **fields)


def test_a_number_whose_calls_fail_is_paused_and_the_pool_dials_from_the_others(
        campaign, alice, sent, settings, django_capture_on_commit_callbacks):
    settings.EXOPHONE_BREAKER_MIN_CALLS, settings.EXOPHONE_BREAKER_COOLDOWN_SECONDS = 4, 60
    failing, healthy = pool_of(campaign, BANGALORE, MUMBAI)
    ended(campaign, failing, Call.State.FAILED, 3)
    ended(campaign, failing, Call.State.BUSY, 1)  # the callee's answer: not the number's failure
    ended(campaign, healthy, Call.State.NO_ANSWER, 4)
    start(campaign, alice, contacts=4, calls_per_minute=600, max_concurrent=50, pace_credit=4, paced_at=NOON_FRIDAY)

    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 4
    failing.refresh_from_db()
    assert failing.breaker == Breaker.OPEN and failing.breaker_until == NOON_FRIDAY + datetime.timedelta(seconds=60)
    assert failing.breaker_reason.startswith("3 of its last 4 calls failed (75%")
    assert set(Call.objects.filter(state=Call.State.QUEUED).values_list("exophone", flat=True)) == {healthy.pk}
    assert breaker.health_of([healthy], now=NOON_FRIDAY)[healthy.pk].failure_rate == 0


def test_after_the_cool_down_one_trial_call_decides(campaign, alice, sent, settings,
                                                    django_capture_on_commit_callbacks):
    [number] = pool_of(campaign, BANGALORE)
    Exophone.objects.filter(pk=number.pk).update(breaker=Breaker.OPEN, breaker_reason="failing",
                                                 breaker_until=NOON_FRIDAY, breaker_changed_at=NOON_FRIDAY)
    start(campaign, alice, contacts=5, calls_per_minute=600, max_concurrent=50, pace_credit=5, paced_at=NOON_FRIDAY)

    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 1  # on trial: one call only
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 0  # its outcome not known yet
    trial = Call.objects.get()
    Call.objects.filter(pk=trial.pk).update(state=Call.State.COMPLETED)
    later = NOON_FRIDAY + datetime.timedelta(seconds=5)
    assert tick(later, django_capture_on_commit_callbacks) == 4
    number.refresh_from_db()
    assert (number.breaker, number.breaker_reason) == (Breaker.CLOSED, "")


def test_a_failed_trial_pauses_the_number_again(campaign, alice, sent, settings, django_capture_on_commit_callbacks):
    [number] = pool_of(campaign, BANGALORE)
    Exophone.objects.filter(pk=number.pk).update(breaker=Breaker.HALF_OPEN, breaker_changed_at=NOON_FRIDAY)
    ended(campaign, number, Call.State.FAILED, 1)
    breaker.review(now=NOON_FRIDAY)  # no running campaign uses it yet: nothing judged
    start(campaign, alice, contacts=2)
    breaker.review(now=NOON_FRIDAY)
    number.refresh_from_db()
    assert number.breaker == Breaker.OPEN and "trial call" in number.breaker_reason


def test_a_campaign_whose_every_number_is_paused_pauses_with_the_reason(campaign, alice, sent,
                                                                        django_capture_on_commit_callbacks):
    pool_of(campaign, BANGALORE)
    Exophone.objects.update(breaker=Breaker.OPEN, breaker_reason="12 of its last 20 calls failed",
                            breaker_until=NOON_FRIDAY + datetime.timedelta(minutes=5))
    start(campaign, alice, contacts=2, calls_per_minute=600, pace_credit=2, paced_at=NOON_FRIDAY)
    assert tick(NOON_FRIDAY, django_capture_on_commit_callbacks) == 0
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED
    assert "Every caller ID of the pool is paused" in campaign.last_error and "12 of its last 20" in campaign.last_error


def test_exotels_5xx_refusals_count_against_the_number(campaign):
    [number] = pool_of(campaign, BANGALORE)
    ended(campaign, number, Call.State.QUEUED, 2, exotel_status=503)
    ended(campaign, number, Call.State.FAILED, 1, exotel_status=400)
    ended(campaign, number, Call.State.COMPLETED, 1, answered_at=NOON_FRIDAY)
    health = breaker.health_of([number], now=NOON_FRIDAY)[number.pk]
    assert (health.finished, health.failed, health.http_4xx, health.http_5xx, health.answered) == (4, 3, 1, 2, 1)
