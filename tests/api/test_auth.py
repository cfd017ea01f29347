"""Who may call the API: service tokens and staff sessions, scopes, throttling, and the one error shape."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from enforcement import services
from enforcement.actors import SYSTEM
from enforcement.models import AuditEvent, Case, EnforcementAction, ServiceToken
from enforcement.services import service_token_revoke
from tests.api.helpers import assert_error
from tests.factories import missing_pk

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- tokens


def test_no_credentials_is_401_naming_the_scheme(anon_client):
    response = anon_client.get("/api/v1/cases/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("header", ["Bearer mmst_not-a-real-token", "Bearer", "Bearer a b", "Bearer \u00e9t\u00e9"])
def test_a_bad_token_is_401(anon_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(anon_client.get("/api/v1/cases/"), 401, "authentication_failed")


def test_revoked_and_expired_tokens_are_401(make_client):
    revoked = make_client("cases:read")
    assert revoked.get("/api/v1/cases/").status_code == 200
    service_token_revoke(actor=SYSTEM, token_id=revoked.token.pk)
    assert_error(revoked.get("/api/v1/cases/"), 401, "authentication_failed")

    expired = make_client("cases:read")
    ServiceToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(expired.get("/api/v1/cases/"), 401, "authentication_failed")


def test_a_request_records_when_the_token_was_last_used(make_client):
    from enforcement.tasks import record_token_use

    client = make_client("cases:read")
    assert client.token.last_used_at is None
    client.get("/api/v1/cases/")
    client.token.refresh_from_db()
    assert client.token.last_used_at is None  # not written on the request path
    assert record_token_use() == 1  # the beat's pass, once a minute
    client.token.refresh_from_db()
    assert client.token.last_used_at is not None


def test_a_token_without_the_scope_is_403_and_says_which(make_client):
    client = make_client("violations:write")
    error = assert_error(client.get("/api/v1/cases/"), 403, "forbidden")
    assert "cases:read" in error["message"]


def test_each_route_declares_its_scope(make_client, account):
    """One token per scope: each scope opens exactly its routes (sampled)."""
    routes = [
        ("get", "/api/v1/cases/", None, "cases:read"),
        ("get", "/api/v1/rules/", None, "cases:read"),
        ("get", "/api/v1/audit-events/", None, "audit:read"),
        ("put", f"/api/v1/accounts/{account.public_id}/", {"name": "N", "email": "n@example.com"}, "inventory:write"),
        ("get", f"/api/v1/accounts/{account.public_id}/standing/", None, "cases:read"),
        ("post", "/api/v1/appeals/", {"action": missing_pk(EnforcementAction), "message": "m"}, "appeals:write"),
    ]
    for method, path, body, scope in routes:
        allowed = make_client(scope)
        others = make_client(*[s for s in ServiceToken.Scope.values if s != scope])
        assert getattr(allowed, method)(path, body, format="json").status_code not in (401, 403), path
        assert_error(getattr(others, method)(path, body, format="json"), 403, "forbidden")


# --------------------------------------------------------------------------- staff sessions


def test_staff_sessions_work_with_their_role(staff_client, lead, auditor, outsider, account, report):
    case_id = report(account).violation.case_id
    assert staff_client(lead).get("/api/v1/cases/").status_code == 200
    # An auditor reads everything and writes nothing.
    assert staff_client(auditor).get(f"/api/v1/cases/{case_id}/").status_code == 200
    assert staff_client(auditor).get("/api/v1/audit-events/").status_code == 200
    auditor_client = APIClient()
    auditor_client.force_login(auditor)
    assert_error(auditor_client.post(f"/api/v1/cases/{case_id}/comment/", {"body": "hi"}, format="json"), 403,
                 "forbidden")
    # Staff without a role see nothing.
    assert_error(staff_client(outsider).get("/api/v1/cases/"), 403, "forbidden")


def test_a_session_post_needs_the_csrf_token(staff_client, agent, account, report):
    case_id = report(account).violation.case_id
    client = staff_client(agent)
    error = assert_error(client.post(f"/api/v1/cases/{case_id}/comment/", {"body": "hi"}, format="json"), 403,
                         "forbidden")
    assert "CSRF" in error["message"]
    client.get("/api/v1/cases/", HTTP_ACCEPT="text/html")  # the browsable API sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(f"/api/v1/cases/{case_id}/comment/", {"body": "hi"}, format="json",
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert response.json()["author"] == "agent"


def test_the_browsable_api_renders_for_staff(lead):
    client = APIClient()
    client.force_login(lead)
    response = client.get("/api/v1/cases/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower()


# --------------------------------------------------------------------------- one error shape


def test_unknown_path_method_and_media_type_use_the_error_shape(full_client):
    assert_error(full_client.get("/api/v1/nothing-here/"), 404, "not_found")
    assert_error(full_client.get(f"/api/v1/cases/{missing_pk(Case)}/"), 404, "not_found")
    assert_error(full_client.delete("/api/v1/cases/"), 405, "method_not_allowed")
    assert_error(full_client.post("/api/v1/violations/", "x=1", content_type="application/x-www-form-urlencoded"),
                 415, "unsupported_media_type")
    assert_error(full_client.post("/api/v1/violations/", "{not json", content_type="application/json"), 400,
                 "parse_error")
    assert_error(full_client.get("/api/v1/cases/?cursor=garbage"), 400, "invalid_cursor", fields=["cursor"])


def test_an_unexpected_error_is_a_500_without_a_traceback(full_client, monkeypatch, account):
    def boom(**kwargs):
        raise RuntimeError("secret internals /srv/app/enforcement/services.py line 12")

    monkeypatch.setattr(services, "violation_report", boom)
    full_client.raise_request_exception = False
    response = full_client.post(
        "/api/v1/violations/",
        {"account": account.public_id, "rule": "spam-fraud", "source": "s", "external_id": "1", "summary": "x"},
        format="json",
    )
    error = assert_error(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode() and "fields" not in error


def test_django_level_404_and_500_under_api_are_json(rf):
    from enforcement.api.exceptions import handler404, handler500

    not_found = handler404(rf.get("/api/v1/nowhere/"), Exception("x"))
    assert not_found.status_code == 404 and not_found["Content-Type"] == "application/json"
    crashed = handler500(rf.get("/api/v1/cases/"))
    assert crashed.status_code == 500 and b'"server_error"' in crashed.content
    assert handler404(rf.get("/admin/nowhere/"), Exception("x"))["Content-Type"].startswith("text/html")


# --------------------------------------------------------------------------- throttling


def test_throttling_is_per_token_and_answers_429_with_retry_after(settings, make_client):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"principal": "3/min", "anonymous": "2/min"},
    }
    busy, calm = make_client("cases:read"), make_client("cases:read")
    for _ in range(3):
        assert busy.get("/api/v1/cases/").status_code == 200
    response = busy.get("/api/v1/cases/")
    assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert calm.get("/api/v1/cases/").status_code == 200


def test_throttling_can_be_switched_off(settings, make_client):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"principal": None}}
    client = make_client("cases:read")
    assert all(client.get("/api/v1/rules/").status_code == 200 for _ in range(20))


# --------------------------------------------------------------------------- management commands


def test_create_service_token_prints_the_token_alone_on_its_last_line():
    out, err = StringIO(), StringIO()
    call_command("create_service_token", "ci", "--scopes", "cases:read,audit:read", "--trusted",
                 "--expires-in-days", "30", stdout=out, stderr=err)
    raw = out.getvalue().strip().splitlines()[-1]
    token = ServiceToken.objects.get(name="ci")
    assert raw.startswith("mmst_") and raw not in token.token_sha256
    assert token.scopes == ["audit:read", "cases:read"] and token.trusted and token.expires_at is not None
    assert raw not in err.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/audit-events/").status_code == 200
    assert AuditEvent.objects.filter(verb="service_token.created", target_id=str(token.pk)).exists()


def test_create_service_token_refuses_unknown_scopes_and_duplicates():
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_service_token", "x", "--scopes", "cases:read,everything", stdout=StringIO(),
                     stderr=StringIO())
    call_command("create_service_token", "dup", "--scopes", "cases:read", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="exists"):
        call_command("create_service_token", "dup", "--scopes", "cases:read", stdout=StringIO(), stderr=StringIO())
    assert not ServiceToken.objects.filter(name="x").exists()


def test_revoke_service_token_command(make_client):
    client = make_client("cases:read")
    call_command("revoke_service_token", client.token.name, stdout=StringIO())
    assert_error(client.get("/api/v1/cases/"), 401, "authentication_failed")
    with pytest.raises(CommandError):
        call_command("revoke_service_token", "no-such-token", stdout=StringIO())
