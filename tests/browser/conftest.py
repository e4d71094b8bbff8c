"""Headless Chromium (Debian's package) driven by Playwright against a real daphne.

Screenshots of the key pages go to tests/artifacts/ (git-ignored); every page must load without a
console error or a failed request, which the `page` fixture asserts at teardown.
"""

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from exotel.audio import pcm_to_wav
from tests import processes
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
# Chromium's fake capture device instead of a sound card, and its permission prompt answered "allow".
FAKE_MICROPHONE = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
MICROPHONE_HZ = 1500  # above the simulator's voices (harmonics of 120-240 Hz up to the fifth), below 4 kHz
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PHONE_WIDTH = {"width": 360, "height": 740}


@contextlib.contextmanager
def chromium(*extra_args: str):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args])
        yield browser
        browser.close()


@pytest.fixture
def browser():
    """A Chromium per test. Playwright's sync API keeps an event loop running in this thread while
    it lives: request it after the database fixtures, so it stops before they flush, and before any
    asyncio test of another module runs."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def microphone(tmp_path) -> Path:
    """A WAV of a steady MICROPHONE_HZ tone, which Chromium's fake capture device plays (looped) as the microphone."""
    rate, seconds = 48000, 2
    t = np.arange(rate * seconds) / rate
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * MICROPHONE_HZ * t)).astype("<i2").tobytes()
    path = tmp_path / "microphone.wav"
    path.write_bytes(pcm_to_wav(pcm, rate))
    return path


@pytest.fixture
def browser_with_microphone(microphone):
    """A Chromium whose microphone is `microphone`, granted without a prompt."""
    with chromium(*FAKE_MICROPHONE, f"--use-file-for-fake-audio-capture={microphone}") as browser:
        yield browser


def dominant_hz(pcm: bytes, rate: int = 8000) -> float:
    """The frequency of the strongest component of 16-bit PCM."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


@pytest.fixture
def server(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    daphne = processes.start_daphne(tmp_path, MEDIA_ROOT=settings.MEDIA_ROOT)
    yield daphne
    daphne.stop()


@pytest.fixture
def orm_beside_playwright(monkeypatch):
    """The test's ORM calls run between browser steps, as plain synchronous code, yet Django sees
    Playwright's running loop and would refuse them. Set after the servers started, so that they
    keep Django's check."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@contextlib.contextmanager
def watched_page(browser, base_url: str):
    """A page that must load without a console error or a failed request (asserted when it closes)."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # An aborted request is the page's own doing (a poll cut short by leaving the page), not a failure.
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED"
            and problems.append(f"request failed: {r.url} {r.failure}"))
    page.problems = problems
    yield page
    context.close()
    assert problems == [], problems


@contextlib.contextmanager
def microphone_page(browser, base_url: str):
    """`watched_page` in a Chromium with a fake microphone (`browser_with_microphone`), its audio worklets let run."""
    with watched_page(browser, base_url) as page:
        release_audio_worklets(page)
        yield page


def release_audio_worklets(page) -> None:
    """Let the page's AudioWorklets start. Playwright 1.55 auto-attaches to a page's workers with a
    filter that leaves worklets out and asks every target to wait for its debugger; Chromium holds
    an AudioWorklet waiting all the same, so `audioWorklet.addModule()` never settles and never even
    fetches the module (microsoft/playwright#37592, reverted upstream in #37607). getUserMedia itself
    resolves: with the fake device and fake UI flags it is granted at once. So we attach to the
    page's worklets ourselves and tell each to run."""
    cdp = page.context.new_cdp_session(page)
    run = json.dumps({"id": 1, "method": "Runtime.runIfWaitingForDebugger"})
    cdp.on("Target.attachedToTarget", lambda event: cdp.send(
        "Target.sendMessageToTarget", {"sessionId": event["sessionId"], "message": run}))
    cdp.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": False,
                                      "filter": [{"type": "worklet"}]})


@pytest.fixture
def page(server, orm_beside_playwright, browser):
    with watched_page(browser, server.url) as page:
        yield page


def shoot(page, name: str) -> None:
    """A desktop and a 360 px screenshot of the current page."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size(PHONE_WIDTH)
    page.screenshot(path=str(ARTIFACTS / f"{name}-360.png"), full_page=True)
    # Nothing may stick out sideways at phone width (tables scroll inside their wrapper).
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.set_viewport_size(size)
    assert overflow <= 0, f"{name} is {overflow}px wider than a 360 px screen"


def sign_in(page, email: str) -> None:
    page.goto("/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    signed_in(page)


def signed_in(page) -> None:
    # "**/" would match /login/ itself: wait until the sign-in's redirect has left it.
    page.wait_for_url(lambda url: not url.split("?")[0].endswith("/login/"))
