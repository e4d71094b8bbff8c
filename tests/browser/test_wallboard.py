"""The wallboard in a real browser: it follows the campaigns without a reload, and says when it cannot."""

import pytest
from playwright.sync_api import expect

from campaigns import lifecycle
from campaigns.models import Campaign
from tests.browser.conftest import shoot, sign_in
from tests.conftest import make_call, make_campaign

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_board_follows_the_campaigns_and_says_when_it_is_stale(page, server, acme, alice):
    campaign = make_campaign(acme, name="Renewals", state=Campaign.State.RUNNING)
    sign_in(page, alice.email)
    page.get_by_role("link", name="Wallboard", exact=True).click()
    row = page.locator(f'tr[data-campaign="{campaign.pk}"]')
    expect(row.locator('[data-field="live"]')).to_have_text("0")

    # The engine moves on: calls go live and end, as its counters and rollups say.
    for state in ("ringing", "ringing", "busy"):
        make_call(campaign, state=state)
    Campaign.objects.filter(pk=campaign.pk).update(calls_total=3, calls_live=2, calls_busy=1)
    expect(row.locator('[data-field="live"]')).to_have_text("2", timeout=15_000)
    expect(row.locator('[data-field="hour"]')).to_have_text("3 placed, 0% answered")
    expect(row.locator('[data-field="failures"]')).to_have_text("busy 1")
    shoot(page, "wallboard")

    # It finishes: off the board, into the finished list, its page one click away.
    Campaign.objects.filter(pk=campaign.pk).update(calls_live=0)
    lifecycle.complete_if_done(campaign)
    expect(row).to_have_count(0, timeout=15_000)
    finished = page.locator("#finished").get_by_role("link", name="Renewals")
    expect(finished).to_be_visible()

    banner = page.locator("#stale")
    expect(banner).to_be_hidden()
    server.stop()
    expect(banner).to_be_visible(timeout=15_000)
    expect(banner).to_contain_text("may be stale")
    page.goto("about:blank")  # first: leaving aborts the poll in flight, one more failed request
    page.problems.clear()  # the polls that failed while the server was down were the point
