"""Playwright driving Debian's headless Chromium against a live server.

Skipped, with the reason, when Chromium or Playwright is missing, and failed under ``CI_REQUIRE_SERVICES=1``
(``pytest.mark.browser``, see ``tests/required_services.py``); CI installs both. Screenshots go to
``test-artifacts/`` (or ``$TEST_ARTIFACTS_DIR``); with ``UPDATE_DOCS_SCREENSHOTS=1`` the ones named for
the docs are also copied to ``docs/``. ``console_data`` is the working day the browser tests share.
"""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from enforcement import services
from enforcement.actors import SYSTEM, Actor
from enforcement.models import Case
from enforcement.services import service_token_create
from tests.factories import AccountFactory, APIKeyFactory, UserFactory
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


def _account(name: str, email: str, public_id: str):
    account = AccountFactory(name=name, email=email, public_id=public_id)
    account.test_keys = [APIKeyFactory(account=account, kind=kind) for kind in ("secret", "publishable", "restricted")]
    return account


def _report(detector, account, rule, severity, summary, n, evidence=None):
    return services.violation_report(
        actor=detector, account=account, rule=rule, severity=severity, source="abuse-detector",
        external_id=f"det-{n}", summary=summary, evidence=evidence,
    ).violation.case


@pytest.fixture
def console_data():
    """Two staff, a detector and a queue that looks like a working day."""
    agent = UserFactory(username="alex.agent", role="tns_agent")
    lead = UserFactory(username="lee.lead", role="tns_lead")
    token, _ = service_token_create(actor=SYSTEM, name="abuse-detector", scopes=["violations:write"], trusted=False)
    detector = Actor.for_token(token)
    northwind = _account("Northwind Traders", "ops@northwind.example", "acct_northwind00001")
    clickstorm = _account("ClickStorm Media", "billing@clickstorm.example", "acct_clickstorm0002")
    throttle_case = _report(
        detector, northwind, "special-category-data", "high",
        "Event property 'diagnosis' carries health conditions on 3,112 signup events.", 1,
        evidence={"event": "signup", "property": "diagnosis", "sample": "type 2 diabetes",
                  "card_number": "4242 4242 4242 4242"},
    )
    suspend_case = _report(detector, clickstorm, "spam-fraud", "high",
                           "Click-farm pattern: 40k pageviews a minute from three ASNs on one key.", 2)
    others = [
        ("Delta Health Apps", "childrens-data", "critical", "Events from an app for under-13s carry names and ages."),
        ("Bluebird Shop", "secrets-in-events", "medium", "Checkout events carry full card numbers."),
        ("Echo Research Lab", "security-research", "low", "Scanner traffic from a known research group."),
        ("Foxglove Media", "covert-tracking", "medium", "Tracking snippet on pages with no privacy notice."),
    ]
    for n, (name, rule, severity, summary) in enumerate(others, start=3):
        case = _report(detector, _account(name, f"team{n}@example.com", f"acct_demo{n:011d}"), rule, severity,
                       summary, n)
        if rule == "secrets-in-events":
            Case.objects.filter(pk=case.pk).update(review_due_at=timezone.now() - timedelta(minutes=50))
        if rule == "covert-tracking":
            services.case_assign(actor=Actor.for_user(lead), case_id=case.pk, assignee_id=lead.pk)
    return {"agent": agent, "lead": lead, "throttle_case": throttle_case, "suspend_case": suspend_case,
            "northwind": northwind, "clickstorm": clickstorm}
