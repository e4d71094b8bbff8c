"""Prompts and the relay bot set up in a real browser: an MP3 uploaded and played back by the page's
player; the relay's address typed and its connection tested from the server."""

import io

import numpy as np
import pytest
import soundfile
from playwright.sync_api import expect

from streams.models import Prompt
from tests.browser.conftest import shoot, sign_in
from tests.streams.test_relay_connection import Bot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def mp3(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    out = io.BytesIO()
    soundfile.write(out, 0.4 * np.sin(2 * np.pi * 440 * t), rate, format="MP3")
    return out.getvalue()


def test_an_operator_uploads_a_prompt_and_listens_to_it(page, alice, acme, tmp_path):
    sign_in(page, alice.email)
    page.get_by_role("link", name="Prompts").click()
    page.get_by_text("No prompt yet.").wait_for()
    (tmp_path / "greeting.mp3").write_bytes(mp3(2))
    upload = page.locator("#prompt-upload")
    upload.get_by_label("Name").fill("greeting")
    upload.get_by_label("Audio file").set_input_files(str(tmp_path / "greeting.mp3"))
    upload.get_by_role("button", name="Upload").click()
    page.get_by_text("Prompt greeting saved").wait_for()

    prompt = Prompt.objects.get(workspace=acme, name="greeting")
    player = page.get_by_label("Listen to greeting")
    expect(player).to_have_attribute("src", f"/streams/prompts/{prompt.pk}/audio.wav")
    # What the player's source serves, the browser decodes: its length is the upload's. (Fetched apart from the
    # <audio> element, which keeps its request open while the page lives and so would be aborted at the end.)
    duration = player.evaluate("""async audio => {
        const answer = await fetch(audio.src);
        const decoded = await new OfflineAudioContext(1, 1, 24000).decodeAudioData(await answer.arrayBuffer());
        return decoded.duration;
    }""")
    assert abs(duration - 2) < 0.1
    expect(page.locator(f"#prompt-{prompt.pk}")).to_contain_text("not used")
    shoot(page, "prompts")

    (tmp_path / "notes.txt").write_text("not audio")
    upload.get_by_label("Name").fill("notes")
    upload.get_by_label("Audio file").set_input_files(str(tmp_path / "notes.txt"))
    upload.get_by_role("button", name="Upload").click()
    page.get_by_text("The file is not a WAV or MP3 file that can be decoded").wait_for()
    assert not Prompt.objects.filter(name="notes").exists()


def test_the_relay_connection_is_tested_from_the_form(page, alice, campaign):
    bot = Bot()
    try:
        sign_in(page, alice.email)
        page.goto(f"/campaigns/{campaign.pk}/edit/")
        relay = page.get_by_role("group", name="Relay to your own bot")
        expect(relay).to_be_hidden()  # an echo campaign has no relay to set
        page.locator("#id_bot_kind").select_option("relay")
        expect(relay).to_be_visible()
        page.get_by_label("Your bot's address").fill(f"ws://127.0.0.1:{bot.port}/agent")
        page.get_by_role("button", name="Test the connection").click()
        expect(page.locator("#relay-test-result")).to_have_text(
            f"Connected: 127.0.0.1:{bot.port} accepted the WebSocket handshake.")
        assert bot.paths == ["/agent"]
        shoot(page, "campaign-relay")
    finally:
        bot.stop()
    page.get_by_role("button", name="Test the connection").click()
    expect(page.locator("#relay-test-result")).to_have_text(
        f"Connection refused: nothing accepts connections at 127.0.0.1:{bot.port}.")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Campaign saved.").wait_for()
    campaign.refresh_from_db()
    assert campaign.bot_settings == {"url": f"ws://127.0.0.1:{bot.port}/agent"}
