"""Playwright driving Debian's headless Chromium against a live server.

Skipped, with the reason, when Chromium or Playwright is missing, and failed under ``CI_REQUIRE_SERVICES=1``
(``pytest.mark.browser``, see ``tests/required_services.py``); CI installs both. Screenshots go to
``test-artifacts/`` (or ``$TEST_ARTIFACTS_DIR``); with ``UPDATE_DOCS_SCREENSHOTS=1`` the ones named for
the docs are also copied to ``docs/``.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.required_services import CHROMIUM

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "test-artifacts"))
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


@pytest.fixture
def browser(live_server):
    """Started after the test database and live server, stopped before the database is flushed:
    Playwright's event loop must not be running while pytest-django sets up or tears down.
    Only for tests marked ``browser``: the mark has made sure Chromium and Playwright are there."""
    # Playwright's sync API keeps an asyncio loop on this thread; Django would take the test's own
    # ORM calls (setup, assertions) for async code. They are plain synchronous calls, so allow them.
    # While it runs, the test's ORM calls also get their own database connections (Django keeps them
    # per context); they are closed before Playwright stops, so none outlives the test.
    from django.db import connections
    from playwright import sync_api

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
                connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_session(browser, live_server):
    """``open_session(username)`` -> a logged-in page of a fresh browser context."""
    contexts = []

    def open_as(username: str):
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """``screenshot(page, name, docs=False)`` saves test-artifacts/<name>.png (and docs/<name>.png on request)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, docs: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, "the screenshot is empty"
        if docs and os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
            shutil.copyfile(path, ROOT / "docs" / f"{name}.png")
        return path

    return take
