"""Prices from Exotel's Call Details against the real simulator: empty until Exotel has rated the call,
then stored once with the account's currency and added to the day's total; a 429 or a timeout backs
the call off and ends the account's batch.

Calls are placed for real through the simulator and streamed to a bot that only listens (a thread
here); their status callbacks are lost (no web server), so they are settled by reconciliation,
the path a lost callback takes in production.
"""

import datetime
import logging
import threading
import zoneinfo
from decimal import Decimal

import httpx
import pytest
import websockets.sync.server
from django.db.models import F
from django.utils import timezone

from campaigns import costs, dialer, reconcile
from campaigns.models import Call, Campaign, Contact, CostRollup
from tests import processes
from tests.conftest import make_account, make_call, make_campaign, make_contact

TALKS, BUSY = "+919700000011", "+919700000012"
SIMULATOR_CONFIG = {
    "default": {"outcome": "answer", "ring_seconds": 0.1, "hangup_after": 1.5},
    "numbers": {BUSY: {"outcome": "busy", "ring_seconds": 0.1}},
}
LATER = datetime.timedelta(hours=2)  # past any expected end: reconciliation asks about the call


@pytest.fixture(scope="module")
def listening_bot():
    """A stream endpoint that takes the call's audio and says nothing, until the caller hangs up."""
    def listen(connection):
        for _ in connection:
            pass

    # Exotel's status callbacks reach it too, as plain POSTs it refuses: they are lost, as intended.
    quiet = logging.getLogger("tests.listening_bot")
    quiet.setLevel(logging.CRITICAL)
    with websockets.sync.server.serve(listen, "127.0.0.1", 0, logger=quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()


@pytest.fixture
def campaign(acme, sim, listening_bot, settings):
    settings.PUBLIC_BASE_URL = listening_bot
    account = make_account(acme, api_base_url=sim.url, currency="INR")
    campaign = make_campaign(acme, account=account)
    # More contacts than these tests call, so that it runs on after a call ends (no completion).
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.RUNNING, contacts_total=100)
    campaign.refresh_from_db()
    return campaign


def set_price(sim, *, per_minute: str, delay: float) -> None:
    httpx.put(f"{sim.url}/_sim/price", json={"per_minute": per_minute, "delay": delay}).raise_for_status()


@pytest.fixture(autouse=True)
def exotel_prices_at_once(sim):
    set_price(sim, per_minute="0.75", delay=0)


def ended_call(campaign, phone) -> Call:
    """A call placed through the simulator, ended there and settled here from Exotel's Call Details."""
    contact = make_contact(campaign, phone=phone, state=Contact.State.CALLING, attempts=1)
    call = make_call(campaign, contact=contact, attempt=1)
    Campaign.objects.filter(pk=campaign.pk).update(calls_total=F("calls_total") + 1, calls_live=F("calls_live") + 1)
    dialer.place_call(call.pk)
    call.refresh_from_db()

    def ended():
        calls = {c["sid"]: c for c in httpx.get(f"{campaign.account.api_base_url}/_sim/calls").json()}
        return calls[call.exotel_sid]["status"] in ("completed", "busy")
    processes.wait_until(ended, timeout=15, what=f"call {call.exotel_sid} to end in the simulator")
    reconcile.reconcile_account(campaign.account_id, now=timezone.now() + LATER)
    call.refresh_from_db()
    assert call.state in (Call.State.COMPLETED, Call.State.BUSY) and call.ended_at
    return call


def first_check(call: Call) -> datetime.datetime:
    return call.ended_at + datetime.timedelta(seconds=120)  # PRICE_FIRST_CHECK_SECONDS' default


def test_a_price_is_asked_for_until_exotel_has_rated_the_call_then_stored_once(campaign, sim):
    set_price(sim, per_minute="0.75", delay=3600)
    call = ended_call(campaign, TALKS)
    assert call.state == Call.State.COMPLETED and call.duration
    assert not costs.due_for_price(now=call.ended_at).filter(pk=call.pk).exists()  # Exotel needs minutes

    now = first_check(call)
    assert costs.fetch_prices(campaign.account_id, now=now) == 0  # not rated yet: Price is empty
    call.refresh_from_db()
    assert call.price is None and call.price_checks == 1
    assert call.price_due_at == now + datetime.timedelta(seconds=60)
    assert costs.fetch_prices(campaign.account_id, now=now + datetime.timedelta(seconds=59)) == 0  # backing off

    set_price(sim, per_minute="0.75", delay=0)
    assert costs.fetch_prices(campaign.account_id, now=call.price_due_at) == 1
    call.refresh_from_db()
    assert (call.price, call.price_currency, call.price_due_at) == (Decimal("0.7500"), "INR", None)
    day = call.ended_at.astimezone(zoneinfo.ZoneInfo(campaign.workspace.time_zone)).date()
    rollup = CostRollup.objects.get(campaign=campaign)
    assert (rollup.day, rollup.calls, rollup.amount, rollup.billed_minutes) == (day, 1, Decimal("0.75"), 1)

    # Priced: never asked about again, and storing it again adds nothing.
    assert costs.fetch_prices(campaign.account_id, now=call.ended_at + LATER) == 0
    assert not costs.store_price(call, Decimal("0.75"), currency="INR")
    assert CostRollup.objects.get(campaign=campaign).amount == Decimal("0.75")


def test_an_unanswered_call_costs_nothing_and_says_so(campaign, sim):
    call = ended_call(campaign, BUSY)
    assert costs.fetch_prices(campaign.account_id, now=first_check(call)) == 1
    call.refresh_from_db()
    assert call.price == Decimal(0) and costs.spend(campaign).priced_calls == 1


@pytest.mark.parametrize("fault", [
    {"endpoint": "call_details", "kind": "status", "status": 429, "retry_after": "1", "message": "Too many requests",
     "times": 1},
    {"endpoint": "call_details", "kind": "timeout", "delay": 30, "times": 1},
], ids=["429", "timeout"])
def test_a_refused_or_timed_out_request_backs_the_call_off_and_ends_the_batch(campaign, sim, fault, monkeypatch):
    monkeypatch.setattr(reconcile, "DETAILS_TIMEOUT", httpx.Timeout(1.0))  # the timeout case waits this long
    first, second = ended_call(campaign, TALKS), ended_call(campaign, "+919700000013")
    now = max(first_check(first), first_check(second))
    httpx.put(f"{sim.url}/_sim/faults", json=[fault]).raise_for_status()

    assert costs.fetch_prices(campaign.account_id, now=now) == 0

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.price, first.price_checks, first.price_due_at) == (None, 1, now + datetime.timedelta(seconds=60))
    assert (second.price, second.price_checks) == (None, 0)  # not asked: the batch stopped
    # The next sweep asks about the other call; the first one's turn comes after its backoff.
    assert costs.fetch_prices(campaign.account_id, now=now) == 1
    assert costs.fetch_prices(campaign.account_id, now=first.price_due_at) == 1
    assert set(Call.objects.filter(campaign=campaign).values_list("price", flat=True)) == {Decimal("0.75")}


def test_waits_double_up_to_their_ceiling_and_old_or_legs_calls_are_never_asked(campaign, settings):
    now = timezone.now()
    call = make_call(campaign, state=Call.State.COMPLETED, exotel_sid="s1", ended_at=now, duration=30)
    for checks, wait in [(0, 60), (1, 120), (2, 240), (5, 1800), (9, 1800)]:
        Call.objects.filter(pk=call.pk).update(price_checks=checks)
        call.refresh_from_db()
        costs.check_later(call, now=now)
        call.refresh_from_db()
        assert call.price_due_at == now + datetime.timedelta(seconds=wait)

    give_up = datetime.timedelta(seconds=settings.PRICE_GIVE_UP_SECONDS)
    legs = make_call(campaign, state=Call.State.COMPLETED, exotel_sid="", leg_sid="L1", ended_at=now)
    live = make_call(campaign, state=Call.State.IN_PROGRESS, exotel_sid="s2")
    due = set(costs.due_for_price(now=now + give_up - datetime.timedelta(seconds=1)).values_list("pk", flat=True))
    assert due == {call.pk} and legs.pk not in due and live.pk not in due
    assert not costs.due_for_price(now=now + give_up + datetime.timedelta(seconds=1)).exists()  # given up
