"""A campaign against the simulator reaches its cost budget: it pauses itself, and the page says so and why.

Beat, worker, applier, daphne and the simulator run as real processes on loopback. The simulator
prices every ended call at once (1.00 a started minute), and the price sweep runs every second.
"""

import datetime
import json
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from campaigns.models import Call, Campaign, CampaignEvent
from tests import processes
from tests.browser.conftest import shoot, sign_in, watched_page
from tests.conftest import make_account, make_campaign, make_contact

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
ACCOUNT = ("acme1", "key-123456789", "token-987654321")
PHONES = [f"+9198{i:08d}" for i in range(1, 11)]
PRICES_AT_ONCE = {"PRICE_SWEEP_SECONDS": "1", "PRICE_FIRST_CHECK_SECONDS": "0", "PRICE_RETRY_SECONDS": "1"}


@pytest.fixture
def world(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"default": {"outcome": "answer", "ring_seconds": 0.3, "hangup_after": 1.0},
                                  "price": {"per_minute": "1.00", "delay": 0}}))
    with processes.running_product(tmp_path, ":".join(ACCOUNT), config=config, **PRICES_AT_ONCE) as world:
        yield world


@pytest.fixture
def page(world, orm_beside_playwright, browser):
    with watched_page(browser, world[1].url) as page:
        yield page


def test_a_campaign_that_reaches_its_budget_pauses_itself_and_the_page_says_why(page, world, acme, alice):
    simulator, _ = world
    account = make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2],
                           api_base_url=simulator.url)
    campaign = make_campaign(acme, account=account, calls_per_minute=30, max_concurrent=1, budget=Decimal("2.00"),
                             window_start=datetime.time(0, 0), window_end=datetime.time(23, 59, 59),
                             weekdays=[1, 2, 3, 4, 5, 6, 7])
    for phone in PHONES:
        make_contact(campaign, phone=phone)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=len(PHONES))

    sign_in(page, alice.email)
    page.goto(campaign.get_absolute_url())
    expect(page.locator("#cost")).to_contain_text("0.00 INR spent of a budget of 2.00 INR")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Campaign running.").wait_for()

    # Two answered minutes at 1.00 reach the budget; the page's polling shows the pause.
    expect(page.locator('#campaign [data-counter="state_label"]')).to_have_text("Paused", timeout=90_000)
    page.reload()
    expect(page.get_by_role("alert").filter(has_text="Budget reached:")).to_be_visible()
    expect(page.locator("#budget-reached")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="paused: Budget reached")).to_have_count(1)
    shoot(page, "campaign-budget-reached")

    event = CampaignEvent.objects.get(campaign=campaign, action="paused")
    assert event.by is None and "of a budget of 2.00 INR" in event.note
    # Paused, not cancelled: the rest of the contacts wait, and a call in flight at the pause finished.
    assert Call.objects.filter(campaign=campaign).count() < len(PHONES)
    processes.wait_until(lambda: not Call.objects.filter(campaign=campaign, state__in=Call.LIVE_STATES).exists(),
                         timeout=30, what="the calls in flight to finish")
    assert Call.objects.filter(campaign=campaign, price__isnull=False).exists()
