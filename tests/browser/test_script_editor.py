"""An operator builds a scripted IVR in the browser, without JSON: steps with fields, a preview that
walks them, a transfer to the agents; a script naming a prompt the workspace lacks is refused with the
step and the prompt named."""

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign
from streams.models import Prompt
from tests.browser.conftest import shoot, sign_in
from tests.conftest import make_campaign
from transfers.models import AgentGroup

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BUILT = {"steps": [
    {"say": "greeting"},
    {"gather": {"timeout": 5, "branches": {"1": "person"}}},
    {"hangup": True},
    {"id": "person", "transfer": {"whisper": "Wants a person"}},
]}


def add_step(page, kind: str, number: int):
    page.get_by_label("New step").select_option(label=kind)
    page.get_by_role("button", name="Add step").click()
    return page.locator(f'.script-step[data-step="{number}"]')  # found again after each redraw


def test_an_operator_builds_a_script_with_a_transfer_and_a_missing_prompt_is_refused(page, acme, alice):
    campaign = make_campaign(acme)
    Prompt.objects.create(workspace=acme, name="greeting", audio="prompts/greeting.wav")
    AgentGroup.objects.create(workspace=acme, name="Front desk")
    sign_in(page, alice.email)
    page.goto(f"/campaigns/{campaign.pk}/edit/")
    page.get_by_label("Connect mode").select_option("legs")
    page.get_by_label("Transfers go to").select_option(label="Front desk")
    editor = page.locator("#script-editor")
    expect(editor).to_be_hidden()  # an echo bot has no script
    page.get_by_label("Bot kind").select_option("script")
    expect(editor).to_be_visible()
    expect(page.locator("#id_bot_settings")).to_be_hidden()  # steps, not JSON

    add_step(page, "Say a prompt", 1).get_by_label("Prompt").fill("greeting")
    gather = add_step(page, "Gather keys (menu, branches)", 2)
    add_step(page, "Hang up", 3)
    transfer = add_step(page, "Transfer to a person", 4)
    transfer.get_by_label("Id (to jump to)").fill("person")
    transfer.get_by_label("Id (to jump to)").press("Tab")  # the id is a target from now on
    transfer.get_by_label("Whisper to the agent (optional)").fill("Wants a person")
    gather.get_by_role("button", name="Add a branch").click()
    gather.get_by_label("Go to").select_option("person")

    page.get_by_role("button", name="Walk the script").click()
    trace = page.locator(".script-trace li")
    expect(trace).to_have_text(["Step 1: Plays prompt 'greeting'.", "Step 2: Waits for the caller's keys."])
    expect(page.locator(".script-step.current")).to_have_attribute("data-step", "2")
    page.get_by_role("button", name="1 → person").click()
    expect(trace.last).to_contain_text("Step 4 (person): hands the caller to a person; the agent hears:")
    expect(trace.last).to_contain_text("Keyed 1. Wants a person")
    expect(page.get_by_text("Transferred to a person.")).to_be_visible()
    shoot(page, "script-editor")

    page.get_by_role("button", name="Save").click()
    page.get_by_text("Campaign saved.").wait_for()
    campaign.refresh_from_db()
    assert (campaign.bot_kind, campaign.bot_settings) == ("script", BUILT)

    page.goto(f"/campaigns/{campaign.pk}/edit/")
    page.locator(".script-step").first.get_by_label("Prompt").fill("greting")
    page.get_by_role("button", name="Save").click()
    refusal = "Script step 1 (say): no prompt of this workspace is named 'greting'."
    expect(page.locator("[data-errors]")).to_have_text(refusal)
    expect(page.locator(".script-step").first.locator(".errorlist")).to_have_text(refusal)
    shoot(page, "script-editor-refused")
    campaign.refresh_from_db()
    assert campaign.bot_settings == BUILT

    # By hand, as JSON: a broken text is refused with its line and step, and shown as text to mend.
    page.get_by_role("button", name="JSON").click()
    page.locator("#id_bot_settings").fill('{"steps": [\n  {"say": "greeting"},\n  {"hangup": true,}\n]}')
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#id_bot_settings")).to_be_visible()
    expect(page.get_by_text("The JSON breaks at line 3, column 19, in step 2")).to_be_visible()
    assert Campaign.objects.get(pk=campaign.pk).bot_settings == BUILT
