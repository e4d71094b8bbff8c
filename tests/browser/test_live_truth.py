"""The campaign page tells the truth while it lives: a lost server is said, and an old message goes.

A real daphne serves the page in headless Chromium; it is stopped and started again under the page.
"""

import pytest
from playwright.sync_api import expect

from campaigns import lifecycle
from tests import processes
from tests.browser.conftest import sign_in
from tests.conftest import make_campaign, make_contact

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_lost_server_is_said_until_it_answers_again(page, server, acme, alice, tmp_path, settings):
    campaign = make_campaign(acme)
    sign_in(page, alice.email)
    page.goto(campaign.get_absolute_url())
    banner = page.locator("#stale")
    expect(banner).to_be_hidden()

    server.stop()
    expect(banner).to_be_visible(timeout=15_000)
    expect(banner).to_contain_text("may be stale")
    port = int(server.url.rsplit(":", 1)[1])
    again = processes.start_daphne(tmp_path, port=port, name="daphne-again", MEDIA_ROOT=settings.MEDIA_ROOT)
    try:
        # The poll answers within 2 s; the live socket comes back on its backoff (at most 30 s).
        expect(banner).to_be_hidden(timeout=45_000)
        page.problems.clear()  # the requests that failed while the server was down were the point
        page.goto("about:blank")  # before the server stops again
    finally:
        again.stop()


def test_a_message_about_the_last_click_goes_when_the_state_moves_on(page, acme, alice):
    campaign = make_campaign(acme)
    make_contact(campaign)
    sign_in(page, alice.email)
    page.goto(campaign.get_absolute_url())
    page.get_by_role("button", name="Start").click()
    flash = page.get_by_text("Campaign running.")
    flash.wait_for()
    campaign.refresh_from_db()
    lifecycle.pause_campaign(campaign, by=alice)  # from elsewhere: another operator, the breaker
    expect(page.locator('#campaign [data-counter="state_label"]')).to_have_text("Paused", timeout=15_000)
    expect(flash).to_have_count(0)
