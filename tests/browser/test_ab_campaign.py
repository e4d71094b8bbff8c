"""An A/B campaign in a real browser: two variants added on their page, the campaign run against the
simulator, and each variant's rates and time to first audio shown on the campaign page."""

import datetime
import json
import re
import time

import pytest
from playwright.sync_api import expect

from campaigns.models import Call, Campaign, Variant
from streams.models import StreamSession
from tests.browser.conftest import shoot, sign_in
from tests.browser.test_live_campaign import ACCOUNT, page, world  # noqa: F401 (fixtures)
from tests.conftest import make_account, make_campaign, make_contact

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
PHONES = [f"+9197{i:08d}" for i in range(1, 13)]
VARIANTS = {
    "Echo": ("echo", {}),
    "Script": ("script", {"steps": [{"disposition": "interested"}, {"pause": 0.5}, {"hangup": True}]}),
}


def add_variant(tab, campaign, name: str) -> None:
    kind, settings = VARIANTS[name]
    tab.goto(campaign.get_absolute_url())
    tab.get_by_role("link", name="Add a variant").click()
    tab.locator("#id_name").fill(name)
    tab.locator("#id_weight").fill("1")
    tab.locator("#id_bot_kind").select_option(kind)
    tab.locator("#id_bot_settings").fill(json.dumps(settings))
    tab.get_by_role("button", name="Save variant").click()
    tab.get_by_text(f"Variant {name} saved.").wait_for()


def wait_for_streams_to_close(campaign, timeout: float = 30) -> None:
    """Dispositions and first audio are saved as each stream closes, a moment after its call ends."""
    deadline = time.monotonic() + timeout
    while StreamSession.objects.filter(call__campaign=campaign, ended_at__isnull=True).exists():
        assert time.monotonic() < deadline, "a stream of the campaign never closed"
        time.sleep(0.2)


def test_two_variants_run_against_the_simulator_and_the_page_shows_both(page, world, acme, alice):  # noqa: F811
    simulator, _ = world
    account = make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2],
                           api_base_url=simulator.url)
    campaign = make_campaign(acme, account=account, calls_per_minute=240, max_concurrent=4,
                             window_start=datetime.time(0, 0), window_end=datetime.time(23, 59, 59),
                             weekdays=[1, 2, 3, 4, 5, 6, 7])
    for phone in PHONES:
        make_contact(campaign, phone=phone)
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=len(PHONES))

    sign_in(page, alice.email)
    for name in VARIANTS:
        add_variant(page, campaign, name)
    assert list(Variant.objects.filter(campaign=campaign).values_list("name", "bot_kind")) == [
        ("Echo", "echo"), ("Script", "script")]
    page.locator("#variants").wait_for()  # the A/B section arrived beside the page
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Campaign running.").wait_for()
    expect(page.locator('#campaign [data-counter="contacts_done"]').first).to_have_text(str(len(PHONES)),
                                                                                         timeout=90_000)
    wait_for_streams_to_close(campaign)
    page.reload()

    placed = {name: Call.objects.filter(campaign=campaign, variant__name=name).count() for name in VARIANTS}
    assert sum(placed.values()) == len(PHONES) and all(placed.values()), placed
    for name, calls in placed.items():
        row = page.locator(f'#variants tr[data-variant="{name}"]')
        expect(row.locator('[data-rate="answer"]')).to_contain_text("100.0% (", timeout=15_000)
        expect(row.locator("td").nth(3)).to_have_text(str(calls))
    expect(page.locator('#variants tr[data-variant="Script"] [data-rate="interested"]')).to_contain_text("100.0% (")
    expect(page.locator('#variants tr[data-variant="Echo"] [data-rate="interested"]')).to_have_text(
        re.compile(r"^0\.0% \("))
    expect(page.locator('#comparisons li[data-variant="Script"]')).to_contain_text("too few calls to tell")
    # The echo bot speaks (the caller's own audio back): its calls' time to first audio is measured.
    echo = page.locator('#first-audio tr[data-first-audio="Echo"]')
    expect(echo.locator("td").nth(1)).to_have_text(str(placed["Echo"]))
    expect(echo.locator("td").nth(2)).to_contain_text(" ms")
    shoot(page, "campaign-ab-test")
