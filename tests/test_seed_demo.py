import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.models import Account, APIKey
from accounts.tokens import hash_token
from enforcement.models import AuditEvent, Case, EnforcementAction, Violation

pytestmark = pytest.mark.django_db


def counts():
    return [m.objects.count() for m in (Account, APIKey, Case, Violation, EnforcementAction, AuditEvent,
                                        get_user_model())]


def test_seed_demo_is_idempotent_and_prints_working_logins_and_tokens(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    first = counts()
    call_command("seed_demo")
    assert capsys.readouterr().out == out
    assert counts() == first
    assert {"open", "awaiting_customer", "awaiting_approval", "actioned", "closed"} <= set(
        Case.objects.values_list("status", flat=True))
    assert set(APIKey.objects.values_list("kind", flat=True)) == {"publishable", "secret", "restricted"}
    assert "throttled" in set(APIKey.objects.values_list("status", flat=True))
    printed_tokens = [line.split()[0] for line in out.splitlines() if "_live_" in line]
    assert len(printed_tokens) == 4
    for token in printed_tokens:
        assert APIKey.objects.filter(token_sha256=hash_token(token)).exists()
    lead = get_user_model().objects.get(username="lee.lead")
    assert lead.check_password("demo-password-2026") and lead.groups.filter(name="tns_lead").exists()
