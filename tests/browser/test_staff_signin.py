"""Staff sign-in in a real browser: a lead signs in with a password and a TOTP code, is asked for the code
again before approving a termination when the last one is old; a locked-out user is refused; a passkey is
enrolled, signed in with and used for the step-up through Chromium's virtual authenticator."""

import base64
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from enforcement import services
from enforcement.actors import Actor
from enforcement.models import ActionStatus, AuditEvent
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


def second_factor_given_minutes_ago(page, minutes: int) -> None:
    """Age the browser session's last second factor (the step-up window is 15 minutes)."""
    session_key = next(c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key)
    session[SESSION_VERIFIED_AT] = time.time() - minutes * 60
    session.save()


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
    second_factor_given_minutes_ago(page, 16)

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


# --------------------------------------------------------------------------- passkeys


def virtual_authenticator(page) -> tuple:
    """Chromium's virtual authenticator (the DevTools WebAuthn domain), as a platform authenticator with a
    verified user: it answers the browser's passkey prompts by itself."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def test_passkey_enrolment_sign_in_and_step_up_with_chromiums_virtual_authenticator(
        browser, live_server, console_data, settings, screenshot):
    from playwright.sync_api import expect

    # The relying party is the host the test server answers on; the browser signs that origin.
    settings.STAFF_2FA = "required"
    settings.OTP_WEBAUTHN_RP_ID = urlsplit(live_server.url).hostname
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    lead, case = console_data["lead"], console_data["suspend_case"]
    requester = UserFactory(username="rae.lead", role="tns_lead")
    termination = services.action_propose(actor=Actor.for_user(requester), case_id=case.pk, kind="terminate",
                                          reason="Click farm resumed after a final warning.")

    page = new_page(browser, live_server)
    cdp, authenticator = virtual_authenticator(page)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # First sign-in: the password opens only the enrolment, where a passkey is registered.
    password_step(page, "lee.lead")
    page.wait_for_url("**/admin/second-factor/enrol/**")
    expect(page.locator("#totp-qr svg")).to_be_visible()  # the app's QR code beside it
    expect(page.locator("#passkey-register-button")).to_be_visible()
    screenshot(page, "second-factor", docs=True)
    page.click("#passkey-register-button")
    page.wait_for_url("**/admin/second-factor/recovery-codes/**")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    credential = WebAuthnCredential.objects.get(user=lead)
    assert credential.confirmed and credential.last_used_at is None
    enrolled_count = credential.sign_count
    assert AuditEvent.objects.filter(verb="second_factor.enrolled", target_id=str(lead.pk),
                                     after__kind="passkey").exists()
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(stored) == 1 and stored[0]["rpId"] == settings.OTP_WEBAUTHN_RP_ID
    assert base64.b64decode(stored[0]["credentialId"]) == bytes(credential.credential_id)
    page.click("#continue")
    page.wait_for_url("**/admin/")
    page.goto("/admin/second-factor/mine/")
    expect(page.locator("#my-devices tr[data-kind=passkey]")).to_have_count(1)

    # Signing in again: the password, then the passkey.
    page.click("#logout-form button")
    password_step(page, "lee.lead")
    page.wait_for_url("**/admin/second-factor/?**")
    page.goto("/admin/enforcement/case/")  # the password alone opens nothing
    page.wait_for_url("**/admin/second-factor/?**")
    page.click("#passkey-verification-button")
    page.wait_for_url("**/admin/enforcement/case/")
    expect(page.locator("#result_list")).to_be_visible()
    used = AuditEvent.objects.filter(verb="signin.second_factor", target_id=str(lead.pk)).latest("pk")
    assert used.after["kind"] == "passkey" and used.after["device"] == credential.persistent_id
    credential.refresh_from_db()
    assert credential.last_used_at is not None and credential.sign_count > enrolled_count  # a fresh signature

    # Step-up with the passkey before approving a termination, once the last one is 16 minutes old.
    second_factor_given_minutes_ago(page, 16)
    page.goto(f"/admin/enforcement/case/{case.pk}/change/")
    page.locator(f"#action-{termination.pk} [data-verb=approve]").click()
    page.wait_for_url("**/admin/second-factor/?**")
    expect(page.locator("#step-up-notice")).to_be_visible()
    termination.refresh_from_db()
    assert termination.status == ActionStatus.AWAITING_APPROVAL
    page.click("#passkey-verification-button")
    page.wait_for_url(f"**/admin/enforcement/case/{case.pk}/change/**")
    page.locator(f"#action-{termination.pk} [data-verb=approve]").click()
    expect(page.locator(".messagelist")).to_contain_text("approved")
    termination.refresh_from_db()
    assert termination.approved_by == lead
    assert errors == []
    page.context.close()
