"""A campaign's cost and budget: Exotel's prices plus an estimate of the calls it has not priced yet,
totals per day of the workspace's calendar, the pause when the budget is reached, and the forecast."""

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import costs, forecast, lifecycle
from campaigns.models import Call, Campaign, CampaignEvent, InvalidTransition
from tests.conftest import make_call, make_campaign, make_contact

pytestmark = pytest.mark.django_db
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
# 20:00 UTC is already the next day in Kolkata (01:30): the day a call counts on is the workspace's.
LATE_EVENING_UTC = datetime.datetime(2026, 11, 30, 20, 0, tzinfo=datetime.UTC)


def priced(campaign, price: str, *, duration: int, ended_at=LATE_EVENING_UTC) -> Call:
    call = make_call(campaign, state=Call.State.COMPLETED, exotel_sid=f"s{Call.objects.count()}", duration=duration,
                     answered_at=ended_at - datetime.timedelta(seconds=duration), ended_at=ended_at)
    assert costs.store_price(call, Decimal(price), currency="INR")
    return call


def unpriced(campaign, *, duration: int | None, state=Call.State.COMPLETED) -> Call:
    return make_call(campaign, state=state, exotel_sid=f"u{Call.objects.count()}", duration=duration,
                     ended_at=timezone.now())


@pytest.fixture
def running(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.RUNNING, budget=Decimal("10.00"))
    campaign.refresh_from_db()
    return campaign


def test_priced_calls_are_totalled_per_day_of_the_workspaces_calendar(campaign, acme):
    assert acme.time_zone == "Asia/Kolkata"
    priced(campaign, "1.20", duration=61)  # two started minutes
    priced(campaign, "0.60", duration=5)
    priced(campaign, "0.60", duration=30, ended_at=LATE_EVENING_UTC - datetime.timedelta(hours=1))  # 00:30 IST

    spent = costs.spend(campaign)
    assert [(d.day, d.calls, d.amount, d.billed_minutes) for d in spent.days] == [
        (datetime.date(2026, 12, 1), 3, Decimal("2.4"), 4)]
    priced(campaign, "0.60", duration=30, ended_at=LATE_EVENING_UTC - datetime.timedelta(hours=3))  # 22:30 IST
    spent = costs.spend(campaign)
    assert [(d.day, d.amount) for d in spent.days] == [(datetime.date(2026, 12, 1), Decimal("2.4")),
                                                       (datetime.date(2026, 11, 30), Decimal("0.6"))]
    assert (spent.priced, spent.priced_calls, spent.total, spent.currency) == (Decimal("3.0"), 4, Decimal("3.0"), "INR")


def test_unpriced_calls_count_at_the_campaigns_own_rate_once_it_has_one(campaign):
    priced(campaign, "1.50", duration=100)  # 2 minutes: 0.75 a minute
    unpriced(campaign, duration=125)  # 3 started minutes
    unpriced(campaign, duration=10)  # 1
    unpriced(campaign, duration=None, state=Call.State.BUSY)  # never on the line: nothing to estimate
    unpriced(campaign, duration=40, state=Call.State.IN_PROGRESS)  # in flight: counted once it ends

    spent = costs.spend(campaign)
    assert (spent.unpriced_calls, spent.unpriced_minutes) == (2, 4)
    assert (spent.rate, spent.rate_source, spent.estimate) == (Decimal("0.75"), "campaign", Decimal("3.00"))
    assert spent.total == Decimal("4.50")
    assert "3.00 estimated for 2 calls without a price yet (4 min at 0.7500 a minute, from this campaign's" \
        in spent.breakdown


def test_without_priced_minutes_the_accounts_rate_estimates_and_without_it_nothing_does(campaign):
    unpriced(campaign, duration=90)
    spent = costs.spend(campaign)
    assert (spent.rate, spent.estimate, spent.total) == (None, None, Decimal(0))
    assert "1 ended calls without a price yet are not counted: no rate" in spent.breakdown

    campaign.account.rate_per_minute = Decimal("0.5")
    campaign.account.save()
    priced(campaign, "0", duration=0)  # priced, but no minutes on the line: no rate of its own yet
    spent = costs.spend(campaign)
    assert (spent.rate, spent.rate_source, spent.estimate) == (Decimal("0.5"), "account", Decimal("1.0"))
    assert "from the account's setting" in spent.breakdown


def test_reaching_the_budget_pauses_the_campaign_and_says_why_while_calls_in_flight_go_on(running, alice):
    priced(running, "6.00", duration=300)  # 1.20 a minute
    live = make_call(running, state=Call.State.IN_PROGRESS, exotel_sid="live", answered_at=timezone.now())
    unpriced(running, duration=100)  # 2 minutes: 2.40 estimated, 8.40 in all
    assert not costs.enforce_budget(running)
    assert Campaign.objects.get(pk=running.pk).state == Campaign.State.RUNNING

    unpriced(running, duration=61)  # 2 more: 10.80 >= 10.00
    assert costs.enforce_budget(running)

    running.refresh_from_db()
    event = CampaignEvent.objects.get(campaign=running, action="paused")
    assert running.state == Campaign.State.PAUSED and event.by is None
    assert event.note.startswith("Budget reached: 10.80 INR = 6.00 priced by Exotel (1 calls) + 4.80 estimated")
    assert running.last_error == event.note
    assert Call.objects.get(pk=live.pk).state == Call.State.IN_PROGRESS  # finishes on its own
    assert not costs.enforce_budget(running)  # paused already: nothing more happens

    with pytest.raises(InvalidTransition, match="The budget is spent"):
        lifecycle.resume_campaign(running, by=alice)
    Campaign.objects.filter(pk=running.pk).update(budget=Decimal("20"))
    running.refresh_from_db()
    lifecycle.resume_campaign(running, by=alice)
    assert running.state == Campaign.State.RUNNING


def test_the_price_task_holds_every_running_budgeted_campaign_of_the_account(running, acme):
    other = make_campaign(acme, account=running.account, budget=Decimal("1"))
    Campaign.objects.filter(pk=other.pk).update(state=Campaign.State.RUNNING)
    unbudgeted = make_campaign(acme, account=running.account)
    Campaign.objects.filter(pk=unbudgeted.pk).update(state=Campaign.State.RUNNING)
    for campaign in (other, unbudgeted):
        priced(campaign, "5", duration=60)

    assert costs.price_account(running.account_id) == 0  # no price due: no request made

    states = dict(Campaign.objects.values_list("pk", "state"))
    assert states == {running.pk: "running", other.pk: "paused", unbudgeted.pk: "running"}


def test_the_campaign_page_shows_the_cost_the_budget_and_the_days(bob_client, running):
    priced(running, "4.25", duration=200)
    unpriced(running, duration=30)
    page = bob_client.get(reverse("campaigns:detail", args=[running.pk])).content.decode()
    assert "5.31 INR</b> spent of a budget of 10.00 INR" in page
    assert "1.06 estimated for 1 calls without a price yet (1 min at 1.0625 a minute, from this campaign" in page
    assert "2026-12-01" in page and 'id="cost-days"' in page


def test_the_export_has_each_calls_price_and_currency(bob_client, campaign):
    call = priced(campaign, "0.6", duration=20)
    response = bob_client.get(reverse("campaigns:export", args=[campaign.pk]))
    header, row = b"".join(response.streaming_content).decode().splitlines()[:2]
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert (cells["id"], cells["price"], cells["price_currency"]) == (str(call.pk), "0.6000", "INR")


def test_the_budget_is_a_positive_amount(alice_client, campaign):
    from tests.campaigns.test_campaign_views import form_data

    response = alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), form_data(campaign, budget="-5"))
    assert "budget" in response.context["form"].errors
    response = alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), form_data(campaign, budget="250.50"))
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).budget == Decimal("250.50")


def test_the_forecast_prices_the_first_attempts_from_history_and_rate(campaign, acme):
    for n in range(4):
        make_contact(campaign, phone=f"+91987650{n:04d}")
    history = make_campaign(acme, account=campaign.account, name="Earlier")
    priced(history, "2.00", duration=150, ended_at=timezone.now())  # answered, 3 minutes: 0.6667 a minute
    unpriced(history, duration=None, state=Call.State.NO_ANSWER)
    machine = unpriced(history, duration=60)  # a machine's answer is billed too: 2 of 3 answered
    Call.objects.filter(pk=machine.pk).update(answered_by="machine", answered_at=timezone.now())

    cost = forecast.forecast(campaign, now=timezone.now()).cost
    assert (cost.calls, cost.history_calls, cost.answer_rate, cost.minutes_per_answer) == (
        4, 3, Decimal("0.6667"), Decimal("2"))
    assert (cost.rate, cost.rate_source) == (Decimal("0.6667"), "account history")
    assert cost.amount == Decimal("3.56")  # 4 × 0.6667 × 2 × 0.6667


def test_without_history_or_rate_the_forecast_says_what_is_missing(bob_client, campaign):
    make_contact(campaign)
    page = bob_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "No cost forecast yet: the workspace has no ended calls of the last 30 days" in page


def test_the_list_shows_each_campaigns_priced_cost_and_the_workspaces_days(bob_client, campaign, acme, globex):
    today = timezone.localdate(timezone=KOLKATA)
    noon_today = datetime.datetime.combine(today, datetime.time(12), tzinfo=KOLKATA)
    priced(campaign, "1.25", duration=60, ended_at=noon_today)
    priced(campaign, "0.50", duration=20, ended_at=noon_today - datetime.timedelta(days=1))
    priced(make_campaign(globex, name="Globex winback"), "9876.54", duration=60, ended_at=noon_today)

    page = bob_client.get(reverse("campaigns:list")).content.decode()
    assert "1.75 INR" in page and "9876.54" not in page
    assert f'{today:%Y-%m-%d}' in page and "1.25 INR" in page and "0.50 INR" in page
