"""A campaign's test call in the browser, with the simulator's account: Chromium's fake microphone
(a steady tone) is the caller, the campaign's echo bot answers it, and its audio reaches the page.

What crossed the socket is read from the frames Playwright saw; what the bot heard, from the
stream's record."""

import base64
import json

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from playwright.sync_api import expect

from campaigns.models import Call, Campaign
from exotel.audio import pcm_to_wav
from streams import prompts
from streams.models import StreamSession
from tests import processes
from tests.browser.conftest import MICROPHONE_HZ, dominant_hz, microphone_page, shoot, sign_in
from tests.conftest import make_campaign
from tests.streams.exotel_side import tone

pytestmark = pytest.mark.browser


@pytest.fixture
def page(server, orm_beside_playwright, browser_with_microphone):
    with microphone_page(browser_with_microphone, server.url) as page:
        yield page


def watch_test_call(page) -> tuple[list, list]:
    """The frames the page sends and receives on its test call's socket (not the campaign's live feed)."""
    sent, received = [], []

    def opened(ws):
        if ws.url.endswith("/test-call"):
            ws.on("framesent", lambda frame: sent.append(frame))  # a bound builtin cannot be a handler
            ws.on("framereceived", lambda frame: received.append(frame))

    page.on("websocket", opened)
    return sent, received


def media_payloads(frames: list) -> bytes:
    return b"".join(base64.b64decode(f["media"]["payload"]) for f in map(json.loads, frames) if f["event"] == "media")


def seconds(page, name: str) -> float:
    return float(page.locator(f"#test-call [data-{name}]").inner_text())


def test_the_microphone_reaches_the_bot_and_the_bot_is_heard(page, acme, alice):
    campaign = make_campaign(acme)  # its account's API is on loopback: the simulator's
    sent, received = watch_test_call(page)

    sign_in(page, alice.email)
    page.goto(campaign.get_absolute_url())
    page.get_by_role("link", name="Test call").click()
    page.get_by_role("button", name="Start the test call").click()
    expect(page.locator("#test-call [data-status]")).to_have_text("On the call: speak to the bot.", timeout=20_000)
    processes.wait_until(lambda: seconds(page, "heard") >= 2.0, timeout=30, what="two seconds of the bot's audio")
    shoot(page, "test-call")
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#test-call [data-status]")).to_have_text("The call has ended.", timeout=20_000)

    assert [json.loads(f)["event"] for f in sent[:2]] == ["connected", "start"]
    spoken, echoed = media_payloads(sent), media_payloads(received)
    assert abs(dominant_hz(spoken) - MICROPHONE_HZ) < 20  # the fake microphone went out as the caller's audio
    assert abs(dominant_hz(echoed) - MICROPHONE_HZ) < 20  # and came back from the bot
    assert seconds(page, "heard") == pytest.approx(len(echoed) / 16000, abs=0.05)  # the page counted all it got

    session = processes.wait_until(lambda: StreamSession.objects.filter(ended_at__isnull=False).first(),
                                   timeout=15, what="the test call's record")
    assert session.call_id is None and session.bot_kind == "echo" and session.stop_reason == "callended"
    assert session.bytes_in == len(spoken) and session.bytes_out > 0
    assert not Call.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).calls_total == 0


# The caller (the microphone's steady tone) talks over the first prompt; the second is heard out, and
# a key pressed on the page chooses the branch.
SCRIPT = {"steps": [
    {"say": "hello"}, {"say": "hello", "barge_in": False},
    {"gather": {"timeout": 60, "branches": {"1": "yes"}}}, {"hangup": True},
    {"id": "yes", "disposition": "pressed_one"}, {"say": "hello", "barge_in": False}, {"hangup": True}]}
PROMPT_HZ = 700


def test_a_script_is_interrupted_heard_out_and_answered_with_a_key(page, acme, alice):
    prompts.save_prompt(acme, "hello", ContentFile(pcm_to_wav(tone(1000, hz=PROMPT_HZ, level=0.3), 8000), name="h.wav"))
    campaign = make_campaign(acme, bot_kind=Campaign.BotKind.SCRIPT, bot_settings=SCRIPT)
    _, received = watch_test_call(page)

    sign_in(page, alice.email)
    page.goto(reverse("campaigns:test_call", args=[campaign.pk]))
    page.get_by_role("button", name="Start the test call").click()
    processes.wait_until(lambda: seconds(page, "heard") >= 0.5, timeout=30, what="the second prompt")
    page.get_by_role("button", name="1", exact=True).click()
    expect(page.locator("#test-call [data-status]")).to_have_text("The call has ended.", timeout=30_000)

    events = [json.loads(f)["event"] for f in received]
    assert "clear" in events  # the barge-in, which the page obeyed: the first prompt's mark never came back
    assert abs(dominant_hz(media_payloads(received)) - PROMPT_HZ) < 20
    session = processes.wait_until(lambda: StreamSession.objects.filter(ended_at__isnull=False).first(),
                                   timeout=15, what="the test call's record")
    assert session.bot_kind == "script" and session.call_id is None
    assert len(session.barge_in_ms) == 1 and session.dtmf_digits == "1" and session.disposition == "pressed_one"
    # Each prompt heard out was marked back by the page once played, as Exotel does.
    assert [mark["name"] for mark in session.marks] == ["say-2", "say-3"]
    assert session.stop_reason == "hung_up"


def test_a_viewer_is_not_offered_the_test_call(page, acme, bob):
    campaign = make_campaign(acme)
    sign_in(page, bob.email)
    page.goto(campaign.get_absolute_url())
    expect(page.get_by_role("link", name="Test call")).to_have_count(0)
    assert page.request.get(reverse("campaigns:test_call", args=[campaign.pk])).status == 403
