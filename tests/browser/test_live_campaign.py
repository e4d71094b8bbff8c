"""A campaign run watched in a real browser: the counters move without a reload, then a call is heard.

Beat, worker, daphne and the simulator run as real processes on loopback; the browser only clicks.
"""

import datetime
import json

import pytest
from playwright.sync_api import expect

from campaigns.models import Call, Campaign
from tests import processes
from tests.browser.conftest import shoot, sign_in, watched_page
from tests.conftest import make_account, make_campaign, make_contact

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
ACCOUNT = ("acme1", "key-123456789", "token-987654321")
PHONES = [f"+9198{i:08d}" for i in range(1, 7)]


@pytest.fixture
def world(transactional_db, tmp_path, settings):
    """The simulator answering every call for two seconds of echo, and the whole app around it."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"default": {"outcome": "answer", "ring_seconds": 0.3, "hangup_after": 2.0}}))
    with processes.running_product(tmp_path, ":".join(ACCOUNT), config=config) as world:
        yield world


@pytest.fixture
def page(world, orm_beside_playwright, browser):
    with watched_page(browser, world[1].url) as page:
        yield page


def counter(page, name: str) -> int:
    return int(page.locator(f'#campaign [data-counter="{name}"]').first.inner_text())


def test_the_counters_move_without_a_reload_and_a_finished_call_plays(page, world, acme, alice):
    simulator, _ = world
    account = make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2],
                           api_base_url=simulator.url)
    campaign = make_campaign(acme, account=account, recording=Campaign.Recording.SINGLE, calls_per_minute=120,
                             max_concurrent=2, window_start=datetime.time(0, 0),
                             window_end=datetime.time(23, 59, 59), weekdays=[1, 2, 3, 4, 5, 6, 7])
    for phone in PHONES:
        make_contact(campaign, phone=phone)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=len(PHONES))

    sign_in(page, alice.email)
    page.goto(campaign.get_absolute_url())
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    assert counter(page, "calls_total") == 0
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Campaign running.").wait_for()
    page.evaluate("window.loadedOnce = true")  # the click's redirect was a load; none from here on

    # Locator assertions, not wait_for_function: the pages' policy forbids the eval that one needs.
    expect(page.locator('#campaign [data-counter="calls_total"]').first).not_to_have_text("0", timeout=30_000)
    page.locator("#live-calls tbody tr").first.wait_for(timeout=20_000)  # a live call is listed
    shoot(page, "campaign-running")
    expect(page.locator('#campaign [data-counter="contacts_done"]').first).to_have_text(str(len(PHONES)),
                                                                                         timeout=60_000)
    assert page.evaluate("window.loadedOnce") is True
    assert counter(page, "calls_answered") == len(PHONES)
    assert page.locator('#campaign [data-counter="state_label"]').inner_text() == "Completed"
    page.locator("#disposition-table").wait_for()  # the charts arrived beside the page
    expect(page.locator("#live-calls tbody tr")).to_have_count(0, timeout=10_000)
    shoot(page, "campaign-completed")

    page.get_by_role("link", name="Browse calls").click()
    page.locator("#calls tbody a").first.click()
    call = Call.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert call.state == Call.State.COMPLETED
    player = page.locator("audio.recording")
    player.wait_for()
    page.get_by_role("heading", name="Recording").click()  # a user gesture, so play() is allowed
    played = page.evaluate("""async () => {
        const audio = document.querySelector('audio.recording');
        await audio.play();
        await new Promise(r => setTimeout(r, 700));
        return {duration: audio.duration, time: audio.currentTime, error: audio.error && audio.error.code};
    }""")
    assert played["error"] is None and played["duration"] > 0.5 and played["time"] > 0.2, played
    shoot(page, "call-detail")
