"""The estimated finish of a running campaign: contacts left, the observed rate, pacing, windows, retries."""

import datetime
import zoneinfo

import pytest
from django.urls import reverse

from campaigns import estimate, rollups, rules
from campaigns.models import Campaign, Contact
from streams import heartbeat
from tests.conftest import make_campaign, make_contact

pytestmark = pytest.mark.django_db

KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=KOLKATA)  # a Friday, noon in Kolkata


def running(campaign, **counters) -> Campaign:
    fields = {"state": Campaign.State.RUNNING, "contacts_total": 100, "contacts_done": 40, "calls_live": 0,
              **counters}
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    return Campaign.objects.select_related("workspace").get(pk=campaign.pk)


def placed(campaign, n: int, *, at: datetime.datetime) -> None:
    rollups.count_placed(campaign.workspace_id, campaign.pk, n, at=at)


def estimate_of(campaign, *, held=False, now=NOW):
    policy = rules.Policy.of(campaign.workspace)
    hour = estimate.last_hour([campaign.pk], now=now)
    return estimate.for_campaigns([campaign], policy=policy, held=held, hour=hour, now=now)[campaign.pk]


def test_the_contacts_left_go_at_the_rate_observed_over_the_last_hour(campaign):
    campaign = running(campaign, calls_per_minute=10, calls_live=4)  # 100 - 40 done - 4 on a call = 56 left
    placed(campaign, 60, at=NOW - datetime.timedelta(minutes=30))  # the quarter from 11:30: 2 a minute
    result = estimate_of(campaign)
    assert (result.left, result.observed, result.rate) == (56, True, 2.0)
    assert result.finish_at == NOW + datetime.timedelta(minutes=28)
    assert "56 contacts left" in result.basis and "as placed over the last hour" in result.basis


def test_without_calls_in_the_last_hour_the_pacing_is_assumed_and_an_observed_rate_never_exceeds_it(campaign):
    campaign = running(campaign, calls_per_minute=6)
    placed(campaign, 500, at=NOW - datetime.timedelta(hours=2))  # before the hour: not observed
    result = estimate_of(campaign)
    assert (result.observed, result.rate, result.finish_at) == (False, 6, NOW + datetime.timedelta(minutes=10))
    assert "the most the pacing allows" in result.basis
    placed(campaign, 900, at=NOW - datetime.timedelta(minutes=10))  # 60 a minute, faster than the pacing allows
    assert estimate_of(campaign).rate == 6


def test_concurrent_calls_cap_the_rate_when_they_fill_up_before_the_pacing(campaign):
    # 2 at once, answered calls of 60 s on average: 2 a minute however fast the pacing.
    campaign = running(campaign, calls_per_minute=30, max_concurrent=2, calls_answered=10, talk_seconds=600)
    result = estimate_of(campaign)
    assert result.rate == 2 and result.finish_at == NOW + datetime.timedelta(minutes=30)
    assert "the most 2 calls at once of 60 s on average allows" in result.basis


def test_the_calling_hours_stop_the_clock_overnight(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(window_start=datetime.time(9), window_end=datetime.time(21))
    campaign = running(campaign, calls_per_minute=1, contacts_total=60, contacts_done=0)
    evening = datetime.datetime(2026, 11, 27, 20, 30, tzinfo=KOLKATA)
    result = estimate_of(campaign, now=evening)
    # 30 tonight until 21:00, the other 30 from Saturday 09:00.
    assert result.finish_at == datetime.datetime(2026, 11, 28, 9, 30, tzinfo=KOLKATA)
    late = estimate_of(campaign, now=datetime.datetime(2026, 11, 27, 22, 0, tzinfo=KOLKATA))
    assert late.opens_at == datetime.datetime(2026, 11, 28, 9, 0, tzinfo=KOLKATA)
    assert "outside calling hours until" in late.basis


def test_a_retry_due_later_than_the_rest_is_the_finish(campaign):
    campaign = running(campaign, calls_per_minute=10, contacts_total=2, contacts_done=0)
    make_contact(campaign)
    retry_at = NOW + datetime.timedelta(hours=3)
    make_contact(campaign, attempts=1, next_attempt_at=retry_at, outcome="busy")
    make_contact(campaign, state=Contact.State.DONE, next_attempt_at=NOW + datetime.timedelta(days=9))  # not pending
    assert estimate_of(campaign).finish_at == retry_at


def test_it_says_why_when_no_honest_figure_exists(campaign):
    paused = running(campaign, state=Campaign.State.PAUSED)
    assert estimate_of(paused).label == "unknown while paused" and estimate_of(paused).finish_at is None
    assert "dialling is held" in estimate_of(running(campaign), held=True).label
    gated = running(campaign, last_error="Dialling held: a do-not-call file is being imported.")
    assert "do-not-call file" in estimate_of(gated).label
    ended = running(campaign, ends_at=NOW - datetime.timedelta(days=1), last_error="")
    assert "do not let it finish" in estimate_of(ended).label
    done = running(campaign, contacts_done=100, calls_live=2, ends_at=None)
    assert estimate_of(done).label == "when the 2 live calls end"


def test_the_campaign_page_and_its_poll_show_the_estimate(alice_client, campaign):
    running(campaign, calls_per_minute=10)
    heartbeat.publish("test-server")
    page = alice_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "estimated finish" in page and "60 contacts left, one more attempt each" in page
    polled = alice_client.get(reverse("campaigns:counters", args=[campaign.pk])).json()
    assert polled["finish"].startswith("about ") and "60 contacts left" in polled["finish_basis"]
    heartbeat.withdraw("test-server")
    assert "dialling is held" in alice_client.get(reverse("campaigns:counters", args=[campaign.pk])).json()["finish"]


def test_the_estimates_of_many_campaigns_cost_the_same_queries_as_of_one(acme, django_assert_num_queries):
    policy = rules.Policy.of(acme)
    few = [running(make_campaign(acme, name="A"))]
    with django_assert_num_queries(2):
        estimate.for_campaigns(few, policy=policy, held=False, hour=estimate.last_hour([c.pk for c in few], now=NOW),
                               now=NOW)
    many = few + [running(make_campaign(acme, name=f"C{i}")) for i in range(5)]
    for c in many:
        placed(c, 5, at=NOW)
    with django_assert_num_queries(2):
        estimates = estimate.for_campaigns(many, policy=policy, held=False,
                                           hour=estimate.last_hour([c.pk for c in many], now=NOW), now=NOW)
    assert all(e.finish_at for e in estimates.values())
