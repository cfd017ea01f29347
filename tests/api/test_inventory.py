"""Accounts and keys mirrored from the platform (PUT upserts), and an account's standing."""

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, APIKey
from enforcement import services
from enforcement.models import AuditEvent
from tests.api.helpers import assert_error
from tests.factories import AccountFactory, APIKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform(make_client):
    return make_client("inventory:write")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def key_body(account_id: str, **extra) -> dict:
    return {
        "account": account_id, "kind": "secret", "token_sha256": sha("sk_live_4eC39HqL" + "x" * 24),
        "rate_limit_per_minute": 600, "ip_rate_limit_per_minute": 60, **extra,
    }


# --------------------------------------------------------------------------- accounts


def test_account_upsert_creates_then_updates(platform):
    response = platform.put("/api/v1/accounts/acct_new1/", {"name": "Acme", "email": "ops@acme.example"},
                            format="json")
    assert response.status_code == 201
    assert response.json() | {"created_at": None, "updated_at": None} == {
        "public_id": "acct_new1", "name": "Acme", "email": "ops@acme.example", "status": "active",
        "created_at": None, "updated_at": None,
    }
    response = platform.put("/api/v1/accounts/acct_new1/", {"name": "Acme Ltd", "email": "ops@acme.example"},
                            format="json")
    assert response.status_code == 200 and response.json()["name"] == "Acme Ltd"
    # The same again changes nothing and records nothing.
    audits = AuditEvent.objects.filter(target_type="account").count()
    assert platform.put("/api/v1/accounts/acct_new1/", {"name": "Acme Ltd", "email": "ops@acme.example"},
                        format="json").status_code == 200
    assert AuditEvent.objects.filter(target_type="account").count() == audits == 2
    assert AuditEvent.objects.filter(verb="account.created", actor_label=f"token:{platform.token.name}").exists()


def test_account_upsert_validation_changes_nothing(platform):
    error = assert_error(platform.put("/api/v1/accounts/acct_bad/", {"name": "", "email": "not-an-email"},
                                      format="json"), 400, "validation_error", fields=["name", "email"])
    assert error["fields"]["email"] == ["Enter a valid email address."]
    assert not Account.objects.filter(public_id="acct_bad").exists()


def test_account_upsert_needs_inventory_write(make_client, anon_client, staff_client, auditor):
    body = {"name": "Acme", "email": "ops@acme.example"}
    assert_error(anon_client.put("/api/v1/accounts/acct_x/", body, format="json"), 401, "not_authenticated")
    assert_error(make_client("cases:write", "violations:write").put("/api/v1/accounts/acct_x/", body,
                                                                     format="json"), 403, "forbidden")
    assert_error(staff_client(auditor).put("/api/v1/accounts/acct_x/", body, format="json"), 403, "forbidden")
    assert not Account.objects.filter(public_id="acct_x").exists()


def test_account_upsert_twice_leaves_one_account(platform):
    """PUT is idempotent by nature: the same body twice leaves one account."""
    for _ in range(2):
        platform.put("/api/v1/accounts/acct_twice/", {"name": "Twice", "email": "t@example.com"}, format="json")
    assert Account.objects.filter(public_id="acct_twice").count() == 1


# --------------------------------------------------------------------------- keys


def test_key_upsert_creates_then_updates_limits(platform, account):
    response = platform.put("/api/v1/keys/sk_live_4eC39HqL/", key_body(account.public_id, label="server"),
                            format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["prefix"] == "sk_live_4eC39HqL" and body["account"] == account.public_id
    assert (body["kind"], body["status"], body["rate_limit_per_minute"], body["label"]) == (
        "secret", "active", 600, "server")
    assert "token_sha256" not in body
    response = platform.put("/api/v1/keys/sk_live_4eC39HqL/",
                            key_body(account.public_id, rate_limit_per_minute=1200), format="json")
    assert response.status_code == 200
    assert response.json()["rate_limit_per_minute"] == 1200 and response.json()["label"] == "server"
    assert APIKey.objects.get(prefix="sk_live_4eC39HqL").base_rate_limit_per_minute == 1200


def test_key_effective_limits_follow_the_actions_in_force(platform, account, as_lead, report):
    platform.put("/api/v1/keys/sk_live_4eC39HqL/", key_body(account.public_id), format="json")
    case_id = report(account).violation.case_id
    throttle = services.action_propose(actor=as_lead, case_id=case_id, kind="throttle", reason="Too fast.",
                                       rate_limit_per_minute=30)
    services.action_apply(action_id=throttle.pk)
    body = platform.put("/api/v1/keys/sk_live_4eC39HqL/", key_body(account.public_id, rate_limit_per_minute=900),
                        format="json").json()
    assert (body["status"], body["rate_limit_per_minute"], body["base_rate_limit_per_minute"]) == (
        "throttled", 30, 900)


@pytest.mark.parametrize(
    ("path", "change", "fields"),
    [
        ("/api/v1/keys/pk_live_4eC39HqL/", {}, ["kind"]),  # a secret kind under a publishable prefix
        ("/api/v1/keys/sk_live_short/", {}, ["prefix"]),
        ("/api/v1/keys/sk_live_4eC39HqL/", {"token_sha256": "ABC"}, ["token_sha256"]),
        ("/api/v1/keys/sk_live_4eC39HqL/", {"account": "acct_nobody"}, ["account"]),
        ("/api/v1/keys/sk_live_4eC39HqL/", {"rate_limit_per_minute": 0, "kind": "master"},
         ["rate_limit_per_minute", "kind"]),
    ],
)
def test_key_upsert_validation(platform, account, path, change, fields):
    response = platform.put(path, {**key_body(account.public_id), **change}, format="json")
    assert_error(response, 400, "validation_error", fields=fields)
    assert not APIKey.objects.exists()


def test_key_upsert_conflicts(platform, account):
    other = AccountFactory()
    existing = APIKeyFactory(account=account, kind="secret")
    # The same prefix under another account, or a token hash already used by another key.
    assert_error(platform.put(f"/api/v1/keys/{existing.prefix}/", key_body(other.public_id), format="json"),
                 409, "conflict", fields=["account"])
    assert_error(platform.put("/api/v1/keys/sk_live_Zz9Zz9Zz/",
                              key_body(account.public_id, token_sha256=existing.token_sha256), format="json"),
                 409, "conflict", fields=["token_sha256"])


def test_key_upsert_needs_inventory_write(make_client, account):
    assert_error(make_client("cases:read").put("/api/v1/keys/sk_live_4eC39HqL/", key_body(account.public_id),
                                               format="json"), 403, "forbidden")


# --------------------------------------------------------------------------- standing


def test_standing_shows_status_strikes_case_actions_and_keys(make_client, account, keys, as_lead, report):
    reader = make_client("cases:read")
    response = reader.get(f"/api/v1/accounts/{account.public_id}/standing/")
    assert response.status_code == 200
    assert response.json() == {
        "account": account.public_id, "status": "active", "strikes": 0, "strike_window_days": 90,
        "open_case": None, "active_actions": [],
        "keys": [
            {"prefix": k.prefix, "kind": k.kind, "status": "active", "rate_limit_per_minute": 1000,
             "ip_rate_limit_per_minute": 100}
            for k in sorted(keys, key=lambda k: k.prefix)
        ],
    }
    case_id = report(account).violation.case_id
    suspension = services.action_propose(actor=as_lead, case_id=case_id, kind="suspend", reason="Abuse.")
    services.action_apply(action_id=suspension.pk)
    with CaptureQueriesContext(connection) as queries:
        body = reader.get(f"/api/v1/accounts/{account.public_id}/standing/").json()
    assert body["status"] == "suspended" and body["strikes"] == 1
    assert body["open_case"]["id"] == case_id and body["open_case"]["status"] == "actioned"
    assert [(a["id"], a["kind"], a["status"]) for a in body["active_actions"]] == [
        (suspension.pk, "suspend", "applied")]
    assert {k["status"] for k in body["keys"]} == {"suspended"}
    assert len(queries) <= 10


def test_standing_of_an_unknown_account_is_404(make_client):
    assert_error(make_client("cases:read").get("/api/v1/accounts/acct_nobody/standing/"), 404, "not_found")


def test_standing_needs_cases_read(make_client, account):
    assert_error(make_client("inventory:write").get(f"/api/v1/accounts/{account.public_id}/standing/"), 403,
                 "forbidden")
