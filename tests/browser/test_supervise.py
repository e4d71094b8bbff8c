"""Live supervision in Chromium with a fake microphone: a supervisor hears a call the simulator is on
(the caller's audio reaches the page), takes it over (the microphone's tone reaches the simulator's
caller, as its recording of the call shows), hands back and has the script jump to its goodbye.

The call is placed as the dialer places it; the simulator answers and streams it to daphne."""

import io
import json
import wave

import httpx
import numpy as np
import pytest
from playwright.sync_api import expect

from campaigns import dialer
from campaigns.models import Campaign
from streams.models import Intervention, StreamSession
from tests import processes
from tests.browser.conftest import MICROPHONE_HZ, dominant_hz, microphone_page, sign_in
from tests.conftest import make_account, make_call, make_campaign, make_contact

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
ACCOUNT = ("acme1", "key-123456789", "token-987654321")
CALLER = "+919876500077"
# The bot waits in silence until a supervisor sends it to "bye": the line carries nobody's voice but theirs.
SCRIPT = {"steps": [{"id": "wait", "pause": 60}, {"goto": "wait"},
                    {"id": "bye", "disposition": "supervised"}, {"hangup": True}]}


@pytest.fixture
def world(transactional_db, tmp_path, settings):
    """The simulator, whose callee talks without a pause and never hangs up, and daphne."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"numbers": {CALLER: {
        "outcome": "answer", "ring_seconds": 0.2, "hangup_after": None,
        "script": [{"at": 0.2, "speech": 600, "sound": "tone"}]}}}))
    started = [processes.start_simulator(tmp_path, ":".join(ACCOUNT), config=config)]
    try:
        started.append(processes.start_daphne(tmp_path, MEDIA_ROOT=settings.MEDIA_ROOT))
        settings.PUBLIC_BASE_URL = started[1].url  # where the call's stream and callbacks go
        yield started
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture
def page(world, orm_beside_playwright, browser_with_microphone):
    with microphone_page(browser_with_microphone, world[1].url) as page:
        yield page


def seconds(page, track: str) -> float:
    return float(page.locator(f'#supervise [data-heard="{track}"]').inner_text())


def bot_track(wav_bytes: bytes) -> bytes:
    """The right channel of the simulator's dual recording: what the caller heard from the line."""
    with wave.open(io.BytesIO(wav_bytes)) as recording:
        assert (recording.getnchannels(), recording.getframerate()) == (2, 8000)
        frames = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
    return frames[1::2].tobytes()


def test_a_supervisor_hears_the_caller_takes_over_and_is_heard_by_the_caller(page, world, acme, alice):
    simulator, _ = world
    account = make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2],
                           api_base_url=simulator.url)
    campaign = make_campaign(acme, account=account, bot_kind=Campaign.BotKind.SCRIPT, bot_settings=SCRIPT,
                             recording=Campaign.Recording.DUAL, state=Campaign.State.RUNNING)
    call = make_call(campaign, contact=make_contact(campaign, phone=CALLER))
    dialer.place_call(call.pk)
    processes.wait_until(lambda: StreamSession.objects.filter(call=call).exists(), timeout=30,
                         what="the simulator to stream the answered call")
    caller_audio = []  # track 0 of the supervision socket's binary frames (streams.supervision)
    page.on("websocket", lambda ws: "/live/calls/" in ws.url and ws.on(
        "framereceived", lambda f: isinstance(f, bytes) and f[0] == 0 and caller_audio.append(f[4:])))

    sign_in(page, alice.email)
    page.goto(f"/calls/{call.pk}/supervise/")
    page.get_by_role("button", name="Listen").click()
    status = page.locator("#supervise [data-status]")
    expect(status).to_have_text("Listening. The bot is speaking.", timeout=20_000)
    processes.wait_until(lambda: seconds(page, "caller") >= 1.0, timeout=30, what="the caller's audio")
    assert np.abs(np.frombuffer(b"".join(caller_audio), dtype="<i2")).max() > 1000  # a voice, not silence

    page.get_by_role("button", name="Take over").click()
    expect(status).to_have_text("You are speaking to the caller; the bot is muted.", timeout=20_000)
    # The line's audio is now the microphone's, as the stream sends it to the caller.
    processes.wait_until(lambda: seconds(page, "line") >= 2.0, timeout=30, what="two seconds of the microphone")
    page.get_by_role("button", name="Hand back to the bot").click()
    expect(status).to_have_text("Listening. The bot is speaking.", timeout=20_000)
    page.get_by_label("Jump to step").select_option("bye")
    page.get_by_role("button", name="Whisper").click()
    expect(status).to_have_text("The call has ended.", timeout=20_000)

    ended = processes.wait_until(
        lambda: next((c for c in httpx.get(f"{simulator.url}/_sim/calls").json()
                      if c["number"] == CALLER and c["recording_url"]), None),
        timeout=30, what="the simulator to end the call and keep its recording")
    assert ended["ended_by"] == "bot"
    heard_by_caller = bot_track(httpx.get(ended["recording_url"]).content)
    assert abs(dominant_hz(heard_by_caller) - MICROPHONE_HZ) < 20  # the supervisor's microphone, on the call
    session = processes.wait_until(lambda: StreamSession.objects.filter(call=call, ended_at__isnull=False).first(),
                                   timeout=15, what="the stream's record")
    assert session.disposition == "supervised"
    processes.wait_until(lambda: Intervention.objects.filter(call=call, kind="whisper").exists(), timeout=15,
                         what="the whisper recorded")
    kinds = list(Intervention.objects.filter(call=call).order_by("at", "pk").values_list("kind", flat=True))
    assert kinds == ["listen", "take_over", "hand_back", "whisper"]
