"""Passkeys as the second factor, against the console's real endpoints and py_webauthn's real verification
(a software authenticator signs): enrolment with recovery codes, sign-in, step-up, what a password alone may
not do, failed assertions counting toward the lockout, and removal by the user and by a lead."""

import time

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from enforcement.signin import SESSION_VERIFIED_AT
from tests.admin.test_staff_signin import code_for, enrol, events, sign_in
from tests.factories import UserFactory
from tests.soft_authenticator import BEGIN_AUTHENTICATION, BEGIN_REGISTRATION, SoftAuthenticator


@pytest.fixture(autouse=True)
def relying_party(settings):
    settings.OTP_WEBAUTHN_RP_ID = "testserver"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = ["http://testserver"]
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0


def enrol_passkey(client, user) -> tuple[SoftAuthenticator, WebAuthnCredential]:
    authenticator = SoftAuthenticator()
    answer = authenticator.register(client)
    assert answer.status_code == 200, answer.content
    return authenticator, WebAuthnCredential.objects.get(pk=answer.json()["id"], user=user)


def test_a_passkey_enrols_on_first_sign_in_with_recovery_codes_once_then_signs_in(settings, agent):
    settings.STAFF_2FA = "required"
    client = Client()
    sign_in(client, "agent")
    enrol_page = client.get("/admin/second-factor/enrol/")
    assert b'id="passkey-registration-placeholder"' in enrol_page.content
    assert b"django_otp_webauthn/otp_webauthn_register.js" in enrol_page.content  # served by us, no CDN
    authenticator, credential = enrol_passkey(client, agent)
    enrolled = events("second_factor.enrolled", agent).get()
    assert enrolled.after["kind"] == "passkey" and enrolled.after["recovery_codes"] == 10
    assert enrolled.after["device"] == credential.persistent_id

    codes_page = client.get("/admin/second-factor/recovery-codes/?next=/admin/")
    assert codes_page.status_code == 200 and len(codes_page.context["codes"]) == 10
    assert StaticDevice.objects.get(user=agent).token_set.count() == 10
    assert client.get("/admin/second-factor/recovery-codes/?next=/admin/")["Location"] == "/admin/"  # once
    assert client.get("/admin/enforcement/case/").status_code == 200  # the enrolment verified the session
    listed = client.get("/admin/second-factor/mine/")
    assert sorted(row["kind"] for row in listed.context["devices"]) == ["passkey", "recovery codes"]

    later = Client()
    sign_in(later, "agent")
    assert later.get("/admin/").status_code == 302
    verify_page = later.get("/admin/second-factor/?next=/admin/enforcement/case/")
    assert b'id="passkey-verification-placeholder"' in verify_page.content
    answer = authenticator.sign_in(later, next_path="/admin/enforcement/case/")
    assert answer.status_code == 200 and answer.json()["redirect_url"] == "/admin/enforcement/case/"
    assert later.get("/admin/enforcement/case/").status_code == 200
    assert later.get("/api/v1/cases/").status_code == 200
    used = events("signin.second_factor", agent).get()
    assert used.after == {"device": credential.persistent_id, "kind": "passkey", "address": "127.0.0.1"}
    credential.refresh_from_db()
    assert credential.sign_count == 1 and credential.last_used_at is not None


def test_a_passkey_gives_the_step_up_before_a_grave_act(lead):
    client = Client()
    sign_in(client, "lead")
    authenticator, _ = enrol_passkey(client, lead)
    session = client.session
    session[SESSION_VERIFIED_AT] = time.time() - 16 * 60
    session.save()
    assert "step_up=1" in client.get("/admin/enforcement/servicetoken/add/")["Location"]
    assert authenticator.sign_in(client).status_code == 200
    assert client.get("/admin/enforcement/servicetoken/add/").status_code == 200


def test_a_password_alone_cannot_add_a_passkey_beside_a_second_factor(agent):
    client = Client()
    sign_in(client, "agent")
    enrol(client, agent)  # an authenticator app

    other = Client()
    sign_in(other, "agent")  # the password only
    refused = SoftAuthenticator().register(other)
    assert refused.status_code == 403 and refused.json()["code"] == "user_not_verified"

    # With the app's code, but 16 minutes ago: asked for it again first.
    session = client.session
    session[SESSION_VERIFIED_AT] = time.time() - 16 * 60
    session.save()
    stale = client.post(BEGIN_REGISTRATION)
    assert stale.status_code == 403 and stale.json()["code"] == "step_up_required"
    assert not WebAuthnCredential.objects.filter(user=agent).exists()

    device = TOTPDevice.objects.get(user=agent)
    client.post("/admin/second-factor/", {"otp_token": code_for(device, drift=1), "next": "/admin/"})
    enrol_passkey(client, agent)  # a recent second factor: added beside the app
    added = events("second_factor.enrolled", agent).latest("pk")
    assert added.after["kind"] == "passkey" and "recovery_codes" not in added.after  # the codes stay as they were


def test_passkey_endpoints_are_for_signed_in_staff_only(db):
    anonymous = Client()
    passwordless = anonymous.post(BEGIN_AUTHENTICATION)
    assert passwordless.status_code == 403 and passwordless.json()["code"] == "passwordless_login_disabled"
    assert anonymous.post(BEGIN_REGISTRATION).status_code in {401, 403}
    UserFactory(username="not.staff", is_staff=False)
    customer = Client()
    customer.post("/admin/login/", {"username": "not.staff", "password": "correct-horse-battery"})
    assert customer.post(BEGIN_REGISTRATION).status_code in {401, 403}
    assert not WebAuthnCredential.objects.exists()


def test_failed_passkey_assertions_count_toward_the_lockout_and_then_the_right_one_is_refused(agent):
    client = Client()
    sign_in(client, "agent")
    authenticator, _ = enrol_passkey(client, agent)

    attacker = Client()
    assert sign_in(attacker, "agent").status_code == 302  # the right password
    for attempt in range(django_settings.AXES_FAILURE_LIMIT):
        answer = authenticator.sign_in(attacker, tamper=True)
        if attempt < django_settings.AXES_FAILURE_LIMIT - 1:
            assert answer.status_code == 422, answer.content
    assert answer.status_code == 429 and answer.json()["code"] == "locked_out"
    assert "Too many failed sign-ins" in answer.json()["detail"]
    failed = events("signin.second_factor_failed", agent)
    assert failed.count() == 10 and {event.after["method"] for event in failed} == {"passkey"}
    assert events("signin.locked_out", agent).exists()

    assert "_auth_user_id" not in attacker.session  # signed out
    assert authenticator.sign_in(attacker).status_code == 403  # nobody to verify any more
    assert sign_in(Client(), "agent", address="203.0.113.60").status_code == 429  # the name is locked
    assert not events("signin.second_factor", agent).exists()


def test_a_passkey_of_someone_else_is_refused(agent, lead):
    agent_client, lead_client = Client(), Client()
    sign_in(agent_client, "agent")
    enrol_passkey(agent_client, agent)
    sign_in(lead_client, "lead")
    leads_authenticator, _ = enrol_passkey(lead_client, lead)

    other = Client()
    sign_in(other, "agent")
    answer = leads_authenticator.sign_in(other)  # the lead's passkey, in the agent's session
    assert answer.status_code in {400, 403, 422}
    assert other.get("/admin/").status_code == 302
    assert events("signin.second_factor_failed", agent).get().after["method"] == "passkey"


def test_the_user_removes_one_passkey_and_the_last_device_takes_the_recovery_codes(agent):
    client = Client()
    sign_in(client, "agent")
    totp = enrol(client, agent)
    _, credential = enrol_passkey(client, agent)

    client.post("/admin/second-factor/mine/", {"device": credential.persistent_id})
    assert not WebAuthnCredential.objects.filter(user=agent).exists()
    assert TOTPDevice.objects.filter(pk=totp.pk).exists() and StaticDevice.objects.filter(user=agent).exists()
    assert events("second_factor.removed", agent).get().after["devices"] == [credential.persistent_id]

    answer = client.post("/admin/second-factor/mine/", {"device": totp.persistent_id})
    assert answer["Location"] == "/admin/second-factor/enrol/"
    assert not StaticDevice.objects.filter(user=agent).exists()  # codes alone are no second factor


def test_a_lead_removes_someones_passkey(agent, lead):
    agent_client = Client()
    sign_in(agent_client, "agent")
    _, credential = enrol_passkey(agent_client, agent)
    lead_client = Client()
    sign_in(lead_client, "lead")
    page = lead_client.get("/admin/second-factor/staff/")
    agent_row = next(row for row in page.context["rows"] if row["user"] == agent)
    assert "passkey" in {device["kind"] for device in agent_row["devices"]}
    lead_client.post("/admin/second-factor/staff/", {"what": "remove_device", "user": agent.pk,
                                                     "device": credential.persistent_id})
    assert not WebAuthnCredential.objects.filter(user=agent).exists()
    removed = events("second_factor.removed", agent).get()
    assert removed.actor_user == lead and credential.persistent_id in removed.after["devices"]
