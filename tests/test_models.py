"""Constraints the workflow relies on, the append-only audit log, and token hashing."""

import hashlib

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import APIKey
from accounts.tokens import generate_token, hash_token, is_well_formed_prefix, kind_of, prefix_of
from enforcement.actors import SYSTEM
from enforcement.audit import audit_record
from enforcement.models import AuditEvent, Case, ServiceToken, Violation
from enforcement.services import service_token_create, service_token_revoke
from enforcement.tokens import service_token_authenticate
from tests.factories import AccountFactory, APIKeyFactory, rule

pytestmark = pytest.mark.django_db


def test_duplicate_key_prefix_is_refused(account):
    key = APIKeyFactory(account=account)
    with pytest.raises(IntegrityError), transaction.atomic():
        APIKey.objects.create(account=account, kind="secret", prefix=key.prefix, token_sha256="0" * 64)


def test_duplicate_token_hash_is_refused(account):
    key = APIKeyFactory(account=account)
    with pytest.raises(IntegrityError), transaction.atomic():
        APIKey.objects.create(account=account, kind="secret", prefix="sk_live_zzzzzzzz", token_sha256=key.token_sha256)


def test_key_kind_must_match_prefix(account):
    with pytest.raises(IntegrityError), transaction.atomic():
        APIKey.objects.create(account=account, kind="secret", prefix="pk_live_abcdefgh", token_sha256="1" * 64)


def _case(account, status="open"):
    from django.utils import timezone

    return Case.objects.create(account=account, severity="low", review_due_at=timezone.now(), status=status)


def test_duplicate_source_external_id_is_refused(account):
    case = _case(account)
    fields = {"account": account, "rule": rule("spam-fraud"), "case": case, "severity": "high", "source": "ids",
                  "external_id": "e-1", "reported_by": "t", "observed_at": case.review_due_at, "summary": "s"}
    Violation.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Violation.objects.create(**fields)
    Violation.objects.create(**{**fields, "source": "other"})  # another source may reuse the id


def test_one_open_case_per_account(account):
    _case(account, status="closed")
    _case(account, status="open")
    with pytest.raises(IntegrityError), transaction.atomic():
        _case(account, status="awaiting_approval")
    _case(account, status="closed")  # closed cases are history: any number
    _case(AccountFactory(), status="open")  # other accounts are independent


def test_audit_log_refuses_edits_in_code(account):
    with transaction.atomic():
        event = audit_record(actor=SYSTEM, verb="test.done", target=account, account=account)
    event.verb = "test.changed"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).verb == "test.done"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_audit_events_must_be_written_inside_a_transaction():
    account = AccountFactory()
    with pytest.raises(AssertionError):
        audit_record(actor=SYSTEM, verb="test.done", target=account)


@pytest.mark.postgres  # the database trigger exists on PostgreSQL only
def test_audit_log_refuses_edits_in_the_database(account):
    from django.db import DatabaseError

    with transaction.atomic():
        event = audit_record(actor=SYSTEM, verb="test.done", target=account, account=account)
    for sql in ("UPDATE enforcement_auditevent SET verb = 'x' WHERE id = %s",
                "DELETE FROM enforcement_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).verb == "test.done"


def test_api_key_tokens_are_never_stored(account):
    key = APIKeyFactory(account=account, kind="restricted")
    assert key.token.startswith("rk_live_") and len(key.token) == 40
    assert key.prefix == key.token[:16] and is_well_formed_prefix(key.prefix)
    assert key.token_sha256 == hashlib.sha256(key.token.encode()).hexdigest()
    row = APIKey.objects.filter(pk=key.pk).values().get()
    assert key.token not in str(row)


def test_token_format():
    for kind, prefix in (("publishable", "pk_live_"), ("secret", "sk_live_"), ("restricted", "rk_live_")):
        token = generate_token(kind)
        assert token.startswith(prefix) and len(token) == 40
        assert kind_of(token) == kind and prefix_of(token) == token[:16]
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert generate_token("secret") != generate_token("secret")


def test_service_tokens_store_only_a_hash():
    token, raw = service_token_create(actor=SYSTEM, name="ci", scopes=["cases:read"])
    row = ServiceToken.objects.filter(pk=token.pk).values().get()
    assert raw not in str(row)
    assert row["token_sha256"] == hashlib.sha256(raw.encode()).hexdigest()
    assert service_token_authenticate(raw) == token
    assert service_token_authenticate(raw + "x") is None
    assert service_token_authenticate("sk_live_whatever") is None
    service_token_revoke(actor=SYSTEM, token_id=token.pk)
    assert service_token_authenticate(raw) is None


def test_expired_service_token_is_refused():
    from datetime import timedelta

    from django.utils import timezone

    token, raw = service_token_create(
        actor=SYSTEM, name="old", scopes=["cases:read"], expires_at=timezone.now() - timedelta(1)
    )
    assert service_token_authenticate(raw) is None


def test_service_token_scopes_are_validated():
    from enforcement.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as exc:
        service_token_create(actor=SYSTEM, name="bad", scopes=["cases:read", "everything"])
    assert "scopes" in exc.value.fields
    assert not ServiceToken.objects.filter(name="bad").exists()


def test_rule_catalogue_covers_the_policy():
    from enforcement.models import Rule

    codes = set(Rule.objects.values_list("code", flat=True))
    assert {"covert-tracking", "special-category-data", "childrens-data", "secrets-in-events", "security-abuse",
            "key-exposure", "spam-fraud", "malware-illegal-content", "impersonation", "unlawful-use",
            "rate-limit-overuse", "sustained-rate-abuse", "security-research"} <= codes
    act_first = set(Rule.objects.filter(act_first=True).values_list("code", flat=True))
    assert act_first == {"security-abuse", "spam-fraud", "malware-illegal-content", "sustained-rate-abuse"}
    assert set(Rule.objects.filter(act_first=True).values_list("default_severity", flat=True)) == {"critical"}
    assert not Rule.objects.get(code="security-research").auto_action


def test_roles_have_the_right_capabilities(agent, lead, auditor):
    assert agent.has_perm("enforcement.propose_action") and not agent.has_perm("enforcement.approve_action")
    assert lead.has_perm("enforcement.approve_action") and lead.has_perm("enforcement.decide_appeal")
    assert auditor.has_perm("enforcement.view_case") and not auditor.has_perm("enforcement.work_case")
