"""The answer rate: answered calls over finished calls, on the campaign page, the overview and the chart."""

from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from campaigns import calls, queries
from campaigns.models import Call, Campaign, Contact
from tests.conftest import make_call, make_contact


def dialled(campaign) -> Call:
    """A call placed, counted live and in the total as the dispatcher counts it."""
    contact = make_contact(campaign, state=Contact.State.CALLING, attempts=1)
    Campaign.objects.filter(pk=campaign.pk).update(calls_total=F("calls_total") + 1, calls_live=F("calls_live") + 1)
    return make_call(campaign, contact=contact, attempt=1, state=Call.State.DIALING, dialed_at=timezone.now())


def ended(campaign, state) -> Call:
    call = dialled(campaign)
    if state == Call.State.COMPLETED:
        calls.advance(call, Call.State.IN_PROGRESS)
    calls.advance(call, state)
    return call


def rate_of(campaign) -> int | None:
    campaign.refresh_from_db()
    return queries.counters(campaign)["answer_rate"]


def test_calls_still_on_the_line_are_not_finished_calls(campaign):
    talking = [dialled(campaign) for _ in range(2)]
    for call in talking:
        calls.advance(call, Call.State.IN_PROGRESS)
    ended(campaign, Call.State.BUSY)

    assert rate_of(campaign) == 0  # was 200%: two answered over one finished

    calls.advance(talking[0], Call.State.COMPLETED)
    assert rate_of(campaign) == 50


def test_busy_and_failed_calls_count_against_the_rate(campaign):
    for state in (Call.State.COMPLETED, Call.State.BUSY, Call.State.FAILED, Call.State.NO_ANSWER):
        ended(campaign, state)

    assert rate_of(campaign) == 25


def test_no_finished_call_has_no_rate(campaign):
    calls.advance(dialled(campaign), Call.State.IN_PROGRESS)

    assert rate_of(campaign) is None


def test_the_overview_and_the_chart_count_the_same_way(acme, campaign, alice_client):
    unheard = ended(campaign, Call.State.COMPLETED)
    for state in (Call.State.COMPLETED, Call.State.BUSY, Call.State.FAILED):
        ended(campaign, state)
    for _ in range(2):
        calls.advance(dialled(campaign), Call.State.IN_PROGRESS)
    # Completed, though its `answered` callback never came: it was answered all the same.
    Call.objects.filter(pk=unheard.pk).update(answered_at=None)

    assert queries.overview(acme)["answer_rate"] == 50  # two answered of four finished; two still talking
    assert [p["answer_rate"] for p in queries.hourly(campaign) if p["n"]] == [50]
    assert "50%" in alice_client.get(reverse("campaigns:overview")).content.decode()
