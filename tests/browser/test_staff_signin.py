"""Staff sign-in in a real browser: a lead signs in with a password and a TOTP code, is asked for the code
again before approving a termination when the last one is old; a locked-out user is refused."""

import time

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from enforcement import services
from enforcement.actors import Actor
from enforcement.models import ActionStatus
from enforcement.signin import SESSION_VERIFIED_AT
from tests.browser.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def code_for(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


def new_page(browser, live_server):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    return context.new_page()


def password_step(page, username: str, password: str = PASSWORD):
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def test_totp_sign_in_and_step_up_before_approving_a_termination(browser, live_server, console_data):
    from playwright.sync_api import expect

    lead, case = console_data["lead"], console_data["suspend_case"]
    device = TOTPDevice.objects.create(user=lead, name="Authenticator app", confirmed=True)
    requester = UserFactory(username="rae.lead", role="tns_lead")
    termination = services.action_propose(actor=Actor.for_user(requester), case_id=case.pk, kind="terminate",
                                          reason="Click farm resumed after a final warning.")
    assert termination.status == ActionStatus.AWAITING_APPROVAL

    page = new_page(browser, live_server)
    password_step(page, "lee.lead")
    page.wait_for_url("**/admin/second-factor/**")
    page.goto("/admin/enforcement/case/")  # the password alone opens nothing
    page.wait_for_url("**/admin/second-factor/**")
    page.fill("#id_otp_token", code_for(device))
    page.click("#verify-submit")
    page.wait_for_url("**/admin/enforcement/case/")  # back where it was going
    expect(page.locator("#result_list")).to_be_visible()

    # The last second factor is now 16 minutes old.
    session_key = next(c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key)
    session[SESSION_VERIFIED_AT] = time.time() - 16 * 60
    session.save()

    page.goto(f"/admin/enforcement/case/{case.pk}/change/")
    page.locator(f"#action-{termination.pk} [data-verb=approve]").click()
    page.wait_for_url("**/admin/second-factor/?**")
    expect(page.locator("#step-up-notice")).to_be_visible()
    termination.refresh_from_db()
    assert termination.status == ActionStatus.AWAITING_APPROVAL

    page.fill("#id_otp_token", code_for(device, drift=1))  # the next time step: a code is never used twice
    page.click("#verify-submit")
    page.wait_for_url(f"**/admin/enforcement/case/{case.pk}/change/**")
    page.locator(f"#action-{termination.pk} [data-verb=approve]").click()
    expect(page.locator(".messagelist")).to_contain_text("approved")
    termination.refresh_from_db()
    assert termination.status != ActionStatus.AWAITING_APPROVAL and termination.approved_by == lead
    page.context.close()


def test_a_locked_out_user_is_refused(browser, live_server, console_data):
    from playwright.sync_api import expect

    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post("/admin/login/", {"username": "alex.agent", "password": "guess"}, REMOTE_ADDR="203.0.113.77")
    page = new_page(browser, live_server)
    password_step(page, "alex.agent")  # the right password
    expect(page.locator("#locked-out-message")).to_contain_text("Too many failed sign-ins")
    page.goto("/admin/enforcement/case/")
    assert "/admin/login/" in page.url
    page.context.close()
