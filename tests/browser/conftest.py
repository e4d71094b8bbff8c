"""Headless Chromium (Debian's package) driven by Playwright against a real daphne.

Screenshots of the key pages go to tests/artifacts/ (git-ignored); every page must load without a
console error or a failed request, which the `page` fixture asserts at teardown.
"""

from pathlib import Path

import pytest

from tests import processes
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PHONE_WIDTH = {"width": 360, "height": 740}


@pytest.fixture
def browser():
    """A Chromium per test. Playwright's sync API keeps an event loop running in this thread while
    it lives: request it after the database fixtures, so it stops before they flush, and before any
    asyncio test of another module runs."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


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


@pytest.fixture
def page(server, orm_beside_playwright, browser):
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.problems = problems
    yield page
    context.close()
    assert problems == [], problems


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
