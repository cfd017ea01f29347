"""Staff sign-in: lockout after repeated failures, short sessions, the second factor (enrolment, sign-in,
``STAFF_2FA=required``), step-up before approving a termination, and the audit trail of all of it."""

import re
import time
from datetime import timedelta

import pytest
import segno
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from enforcement import services
from enforcement.actors import Actor
from enforcement.models import AuditEvent, EnforcementAction, Rule
from enforcement.signin import SESSION_SIGNED_IN_AT, SESSION_VERIFIED_AT
from tests.admin.conftest import report
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"
LOGIN = "/admin/login/"


def sign_in(client: Client, username: str, password: str = PASSWORD, address: str = "198.51.100.7"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"},
                       REMOTE_ADDR=address)


def code_for(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


def wrong_codes(device: TOTPDevice, count: int) -> list[str]:
    """Codes that no time step near now accepts."""
    right = {code_for(device, drift) for drift in range(-3, 4)}
    return [code for code in (f"{n:06d}" for n in range(count + len(right))) if code not in right][:count]


def events(verb: str, user=None):
    rows = AuditEvent.objects.filter(verb=verb)
    return rows.filter(target_type="user", target_id=str(user.pk)) if user is not None else rows


# --------------------------------------------------------------------------- lockout


def test_ten_failures_lock_the_user_out_with_an_audit_event_and_a_lead_unlocks(agent, lead):
    client = Client()
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        assert sign_in(client, "agent", "wrong-password").status_code in {200, 429}
    assert events("signin.failed", agent).count() == 10
    assert events("signin.locked_out", agent).exists()

    refused = sign_in(Client(), "agent", address="203.0.113.50")  # the right password, from elsewhere
    assert refused.status_code == 429
    assert b"Too many failed sign-ins" in refused.content
    assert "_auth_user_id" not in refused.wsgi_request.session

    lead_client = Client()
    assert sign_in(lead_client, "lead", address="192.0.2.1").status_code == 302
    page = lead_client.get("/admin/second-factor/staff/")
    assert page.status_code == 200 and b"user agent" in page.content
    lead_client.post("/admin/second-factor/staff/", {"what": "unlock_user", "value": "agent"})
    unlocked = events("signin.unlocked", agent).get()
    assert unlocked.actor_user == lead

    assert sign_in(Client(), "agent", address="203.0.113.50").status_code == 302
    assert events("signin", agent).exists()


def test_failures_from_one_address_lock_that_address_for_everyone(agent, lead):
    for n in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), f"nobody-{n}", "wrong", address="203.0.113.9")
    assert events("signin.failed").filter(note="username: nobody-0").exists()
    assert sign_in(Client(), "lead", address="203.0.113.9").status_code == 429
    assert sign_in(Client(), "lead", address="203.0.113.10").status_code == 302


def test_an_agent_may_not_unlock(agent_client):
    assert agent_client.get("/admin/second-factor/staff/").status_code == 403


# --------------------------------------------------------------------------- sessions


def test_sessions_end_with_the_browser_when_idle_and_at_an_absolute_limit():
    assert django_settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert django_settings.SESSION_COOKIE_AGE == 30 * 60  # the idle timeout ...
    assert django_settings.SESSION_SAVE_EVERY_REQUEST is True  # ... moves with each request
    assert django_settings.SESSION_MAX_HOURS == 12


def test_a_session_past_its_absolute_limit_is_signed_out(agent):
    client = Client()
    sign_in(client, "agent")
    assert client.get("/admin/").status_code == 200
    session = client.session
    session[SESSION_SIGNED_IN_AT] = time.time() - 12 * 3600 - 1
    session.save()
    answer = client.get("/admin/enforcement/case/")
    assert answer.status_code == 302 and answer["Location"].startswith(LOGIN)
    assert events("signout", agent).exists()
    assert client.get("/admin/").status_code == 302


def test_sign_in_and_sign_out_are_audited(agent):
    client = Client()
    sign_in(client, "agent")
    client.post("/admin/logout/")
    assert events("signin", agent).get().actor_user == agent
    assert events("signout", agent).get().after["address"] == "127.0.0.1"


# --------------------------------------------------------------------------- the second factor


def enrol(client: Client, user) -> TOTPDevice:
    page = client.get("/admin/second-factor/enrol/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert page.context["key"]
    done = client.post("/admin/second-factor/enrol/", {"otp_token": code_for(device), "next": "/admin/"})
    assert done.status_code == 200 and len(done.context["codes"]) == 10
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_required_second_factor_refuses_every_console_page_and_api_call_to_a_password_alone(settings, agent,
                                                                                            trusted_detector):
    settings.STAFF_2FA = "required"
    client = Client()
    assert sign_in(client, "agent").status_code == 302
    for page in ("/admin/", "/admin/enforcement/case/", "/admin/enforcement/auditevent/", "/admin/second-factor/mine/"):
        answer = client.get(page)
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/second-factor/"), page
    assert client.get("/admin/second-factor/").status_code == 302  # no device yet: on to enrolment
    for path in ("/api/v1/cases/", "/api/v1/violations/", "/api/schema/"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert answer.json()["error"]["code"] == "second_factor_required"
    answer = client.post("/api/v1/violations/", {}, content_type="application/json")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "second_factor_required"
    # A service token is no session: unaffected.
    token_call = Client().get("/api/v1/cases/", HTTP_AUTHORIZATION=f"Bearer {trusted_detector.raw}")
    assert token_call.status_code == 200

    enrol(client, agent)
    assert events("second_factor.enrolled", agent).exists()
    assert client.get("/admin/enforcement/case/").status_code == 200
    assert client.get("/api/v1/cases/").status_code == 200


def test_with_a_device_the_password_alone_is_not_enough_and_a_recovery_code_works_once(settings, agent):
    # A wrong code delays the next try on each device by a second otherwise.
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0
    client = Client()
    sign_in(client, "agent")
    device = enrol(client, agent)
    client.post("/admin/logout/")

    client = Client()
    sign_in(client, "agent")
    assert client.get("/admin/").status_code == 302
    wrong = client.post("/admin/second-factor/", {"otp_token": "000000", "next": "/admin/"})
    assert wrong.status_code == 200 and events("signin.second_factor_failed", agent).exists()
    ok = client.post("/admin/second-factor/", {"otp_token": code_for(device, drift=1), "next": "/admin/"})
    assert ok.status_code == 302 and ok["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

    recovery = StaticDevice.objects.get(user=agent).token_set.first().token
    other = Client()
    sign_in(other, "agent")
    assert other.post("/admin/second-factor/", {"otp_token": recovery}).status_code == 302
    assert other.get("/admin/").status_code == 200
    again = Client()
    sign_in(again, "agent")
    again.post("/admin/second-factor/", {"otp_token": recovery})
    assert again.get("/admin/").status_code == 302  # used once, gone


def test_a_password_alone_cannot_add_a_device_beside_an_enrolled_one(agent):
    client = Client()
    sign_in(client, "agent")
    enrol(client, agent)
    other = Client()
    sign_in(other, "agent")
    assert other.get("/admin/second-factor/enrol/")["Location"].startswith("/admin/second-factor/?")
    assert TOTPDevice.objects.filter(user=agent).count() == 1


def test_a_lead_removes_someones_device_and_the_user_removes_their_own(agent, lead):
    agent_client = Client()
    sign_in(agent_client, "agent")
    enrol(agent_client, agent)
    lead_client = Client()
    sign_in(lead_client, "lead")
    lead_client.post("/admin/second-factor/staff/", {"what": "remove", "user": agent.pk})
    assert not TOTPDevice.objects.filter(user=agent).exists()
    assert events("second_factor.removed", agent).get().actor_user == lead

    device = enrol(lead_client, lead)
    assert device.user == lead
    lead_client.post("/admin/second-factor/mine/")
    assert not TOTPDevice.objects.filter(user=lead, confirmed=True).exists()
    assert events("second_factor.removed", lead).get().actor_user == lead


# --------------------------------------------------------------------------- step-up


def test_approving_a_termination_asks_for_the_second_factor_again_when_it_is_old(lead, second_lead, account, keys):
    case = report(Actor.for_user(second_lead), account, severity="critical").violation.case
    action = services.action_propose(actor=Actor.for_user(second_lead), case_id=case.pk, kind="terminate",
                                     reason="Repeated fraud after a suspension.")
    assert action.status == EnforcementAction.Status.AWAITING_APPROVAL
    client = Client()
    sign_in(client, "lead")
    device = enrol(client, lead)
    session = client.session
    session[SESSION_VERIFIED_AT] = time.time() - 16 * 60
    session.save()

    url = f"/admin/enforcement/enforcementaction/{action.pk}/approve/"
    back = f"/admin/enforcement/case/{case.pk}/change/"
    answer = client.post(url, {"next": back})
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/second-factor/?")
    action.refresh_from_db()
    assert action.status == EnforcementAction.Status.AWAITING_APPROVAL

    verified = client.post(answer["Location"], {"otp_token": code_for(device, drift=1), "next": back})
    assert verified["Location"] == back
    client.post(url, {"next": back})
    action.refresh_from_db()
    assert action.status != EnforcementAction.Status.AWAITING_APPROVAL and action.approved_by == lead


@pytest.mark.parametrize("path", ["/admin/enforcement/servicetoken/add/", "rule"])
def test_creating_a_token_and_editing_rules_ask_for_a_recent_second_factor(lead, path):
    if path == "rule":
        path = f"/admin/enforcement/rule/{Rule.objects.order_by('pk').first().pk}/change/"
    client = Client()
    sign_in(client, "lead")
    assert client.get(path).status_code == 200  # no device, STAFF_2FA optional: nothing to repeat
    enrol(client, lead)
    assert client.get(path).status_code == 200  # just given
    session = client.session
    session[SESSION_VERIFIED_AT] = time.time() - 16 * 60
    session.save()
    answer = client.get(path)
    assert answer.status_code == 302 and "step_up=1" in answer["Location"]


def test_demo_users_still_sign_in_with_a_password_under_optional(db):
    UserFactory(username="demo.agent", role="tns_agent")
    client = Client()
    assert sign_in(client, "demo.agent").status_code == 302
    assert client.get("/admin/").status_code == 200


# --------------------------------------------------------------------------- wrong codes and the lockout


def test_ten_wrong_codes_after_the_right_password_lock_out_and_then_the_right_code_is_refused(settings, agent):
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0
    client = Client()
    sign_in(client, "agent")
    device = enrol(client, agent)

    attacker = Client()
    assert sign_in(attacker, "agent", address="203.0.113.20").status_code == 302  # the right password
    for code in wrong_codes(device, 10):
        answer = attacker.post("/admin/second-factor/", {"otp_token": code, "next": "/admin/"},
                               REMOTE_ADDR="203.0.113.20")
    assert answer.status_code == 429 and b"Too many failed sign-ins" in answer.content
    failed = events("signin.second_factor_failed", agent)
    assert failed.count() == 10 and {event.after["method"] for event in failed} == {"code"}
    assert failed.latest("pk").after["locked"] is True
    assert events("signin.locked_out", agent).exists()

    # The right code is refused now: the session was signed out, and signing in again is locked.
    right = attacker.post("/admin/second-factor/", {"otp_token": code_for(device, drift=1), "next": "/admin/"},
                          REMOTE_ADDR="203.0.113.20")
    assert right.status_code == 302 and right["Location"].startswith(LOGIN)
    assert attacker.get("/admin/").status_code == 302
    assert sign_in(Client(), "agent", address="198.51.100.99").status_code == 429
    assert not events("signin.second_factor", agent).exists()


def test_signing_in_again_with_the_password_does_not_clear_the_wrong_codes(settings, agent):
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0
    client = Client()
    sign_in(client, "agent")
    device = enrol(client, agent)
    codes = iter(wrong_codes(device, 10))
    for _round in range(2):
        attacker = Client()
        assert sign_in(attacker, "agent").status_code == 302
        for _ in range(5):
            answer = attacker.post("/admin/second-factor/", {"otp_token": next(codes)})
    assert answer.status_code == 429  # 5 + 5, across two password sign-ins


def test_a_locked_out_session_is_refused_the_second_factor_step(settings, agent):
    """Locked by address by someone else's failures: a session waiting at the step gets the lockout page."""
    client = Client()
    sign_in(client, "agent", address="203.0.113.30")
    device = enrol(client, agent)
    waiting = Client()
    sign_in(waiting, "agent", address="203.0.113.30")
    for n in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), f"guess-{n}", "wrong", address="203.0.113.30")
    answer = waiting.post("/admin/second-factor/", {"otp_token": code_for(device, drift=1)},
                          REMOTE_ADDR="203.0.113.30")
    assert answer.status_code == 429
    assert waiting.get("/admin/").status_code == 302


def test_a_full_sign_in_clears_the_earlier_failures(settings, agent):
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0
    client = Client()
    sign_in(client, "agent")
    device = enrol(client, agent)
    for _ in range(9):
        sign_in(Client(), "agent", "wrong-password")
    again = Client()
    sign_in(again, "agent")
    assert again.post("/admin/second-factor/", {"otp_token": code_for(device, drift=1)}).status_code == 302
    for _ in range(9):
        sign_in(Client(), "agent", "wrong-password")
    assert sign_in(Client(), "agent").status_code == 302  # 9 since the last full sign-in: not locked


# --------------------------------------------------------------------------- enrolment's QR code


def test_totp_enrolment_shows_a_qr_code_of_the_setup_link(agent):
    client = Client()
    sign_in(client, "agent")
    page = client.get("/admin/second-factor/enrol/")
    device = TOTPDevice.objects.get(user=agent, confirmed=False)
    uri = device.config_url
    assert uri.startswith("otpauth://totp/") and f"secret={page.context['key']}" in uri
    html = page.content.decode()
    assert f'<code id="totp-url" class="wrap">{escape(uri)}</code>' in html
    svg = html[html.index('<div id="totp-qr">'):]
    svg = svg[svg.index("<svg"):svg.index("</svg>") + 6]
    assert 'class="totp-qr"' in svg and "<path" in svg and len(svg) > 1000
    # The same code segno draws for this exact link (a QR code of anything else would differ).
    expected = segno.make(uri, error="m")
    assert svg == expected.svg_inline(scale=4, border=2, title="Setup link for an authenticator app",
                                      svgclass="totp-qr")
    assert segno.make(uri.replace(page.context["key"], "A" * len(page.context["key"])), error="m").svg_inline(
        scale=4, border=2, title="Setup link for an authenticator app", svgclass="totp-qr") != svg
    # Its size is that of a QR code for a link this long (version 6 or more for ~100 characters).
    assert expected.version >= 6 and f'width="{(expected.symbol_size(scale=4, border=2))[0]}"' in svg


def test_required_second_factor_refuses_a_password_alone_every_admin_page_and_api_route(settings, agent, lead,
                                                                                        account):
    """Every registered admin list, the console's own pages and every route of the API's schema (ids made up:
    the refusal comes before any lookup), read or write."""
    from django.contrib import admin
    from drf_spectacular.generators import SchemaGenerator

    settings.STAFF_2FA = "required"
    client = Client()
    assert sign_in(client, "lead").status_code == 302
    pages = [reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
             for model in admin.site._registry]
    pages += [reverse(f"admin:{name}") for name in ("index", "metrics", "metrics_report", "second_factor_devices",
                                                     "second_factor_staff", "second_factor_recovery_codes")]
    assert len(pages) > 15
    for page in pages:
        answer = client.get(page)
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/second-factor/"), page
    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = [(re.sub(r"\{[^}]+\}", "1", path), method) for path, methods in schema["paths"].items()
              for method in methods if method in {"get", "post", "put", "patch", "delete"}]
    assert len(routes) > 20
    for path, method in routes:
        answer = getattr(client, method)(path, {}, content_type="application/json")
        assert answer.status_code == 403, (method, path)
        assert answer.json()["error"]["code"] == "second_factor_required", (method, path)


def test_an_idle_session_ends(agent):
    client = Client()
    sign_in(client, "agent")
    assert client.get("/admin/").status_code == 200
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))  # 30 minutes without a request
    answer = client.get("/admin/enforcement/case/")
    assert answer.status_code == 302 and answer["Location"].startswith(LOGIN)


def test_an_operator_lifts_a_lockout_with_a_command(agent):
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), "agent", "wrong-password")
    assert sign_in(Client(), "agent").status_code == 429
    call_command("axes_reset_username", "agent")
    assert sign_in(Client(), "agent").status_code == 302
