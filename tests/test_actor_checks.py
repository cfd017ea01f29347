"""Every service that changes state takes an actor and checks it: the verbs outside the case workflow too
(inventory, service tokens, the outbox, the rule catalogue). A refusal changes nothing."""

import pytest

from accounts.models import Account, APIKey
from accounts.tokens import generate_token, hash_token, prefix_of
from enforcement import notifications, services
from enforcement.actors import SYSTEM, Actor
from enforcement.errors import Forbidden
from enforcement.models import AuditEvent, Notification, Rule, ServiceToken

pytestmark = pytest.mark.django_db


def token_actor(*scopes: str) -> Actor:
    token, _ = services.service_token_create(actor=SYSTEM, name=f"t-{len(scopes)}-{'-'.join(scopes)}"[:100],
                                             scopes=scopes)
    return Actor.for_token(token)


def upsert_account(actor, public_id="acct_checked000001"):
    return services.account_upsert(actor=actor, public_id=public_id, name="Checked Ltd", email="owner@checked.test")


def upsert_key(actor, account):
    token = generate_token("secret")
    return services.key_upsert(actor=actor, prefix=prefix_of(token), account=account, kind="secret",
                               token_sha256=hash_token(token), rate_limit_per_minute=100,
                               ip_rate_limit_per_minute=10)


def test_inventory_needs_inventory_write_or_a_lead(as_agent, as_lead, auditor):
    refused_actors = (as_agent, Actor.for_user(auditor), token_actor("violations:write", "cases:write"))
    audit_rows = AuditEvent.objects.count()
    for refused in refused_actors:
        with pytest.raises(Forbidden):
            upsert_account(refused)
    assert not Account.objects.exists() and AuditEvent.objects.count() == audit_rows
    account, created = upsert_account(token_actor("inventory:write"))
    assert created
    with pytest.raises(Forbidden):
        upsert_key(as_agent, account)
    key, _ = upsert_key(as_lead, account)
    with pytest.raises(Forbidden):
        services.key_revoke(actor=as_agent, key_id=key.pk, reason="agents may not")
    assert APIKey.objects.get(pk=key.pk).revoked_at is None
    services.key_revoke(actor=SYSTEM, key_id=key.pk, reason="leaked")  # the GitHub endpoint acts as the system
    assert APIKey.objects.get(pk=key.pk).status == "revoked"


def test_service_tokens_are_made_and_revoked_by_leads_and_the_operator_only(as_agent, as_lead, lead):
    with pytest.raises(Forbidden):
        services.service_token_create(actor=as_agent, name="mine", scopes=["cases:read"])
    with pytest.raises(Forbidden):  # a token never mints tokens, whatever its scopes
        services.service_token_create(actor=token_actor(*ServiceToken.Scope.values), name="minted",
                                      scopes=["cases:read"])
    assert not ServiceToken.objects.filter(name__in=["mine", "minted"]).exists()
    token, raw = services.service_token_create(actor=as_lead, name="lead-made", scopes=["cases:read"])
    assert token.created_by == lead and raw.startswith("mmst_")
    with pytest.raises(Forbidden):
        services.service_token_revoke(actor=as_agent, token_id=token.pk)
    assert ServiceToken.objects.get(pk=token.pk).revoked_at is None
    assert services.service_token_revoke(actor=as_lead, token_id=token.pk).revoked_at is not None


def test_resending_an_email_needs_a_case_worker(account, as_agent, auditor):
    [row] = notifications.notify_account(template="customer_key_revoked", event_key="t:1", account=account,
                                         context=notifications.sample_context("customer_key_revoked"))
    Notification.objects.filter(pk=row.pk).update(status=Notification.Status.FAILED)
    with pytest.raises(Forbidden):
        notifications.notification_resend(actor=Actor.for_user(auditor), notification_id=row.pk)
    assert Notification.objects.get(pk=row.pk).status == Notification.Status.FAILED
    notifications.notification_resend(actor=as_agent, notification_id=row.pk)
    assert Notification.objects.get(pk=row.pk).status == Notification.Status.PENDING


def test_rules_are_edited_by_people_who_may_and_never_by_a_token(as_agent, as_lead):
    rule = Rule.objects.get(code="spam-fraud")
    rule.title = "Spam, scraping and fraudulent inflation"
    for refused in (as_agent, token_actor(*ServiceToken.Scope.values), SYSTEM):
        with pytest.raises(Forbidden):
            services.rule_save(actor=refused, rule=rule)
    assert Rule.objects.get(pk=rule.pk).title != rule.title
    services.rule_save(actor=as_lead, rule=rule)
    assert Rule.objects.get(pk=rule.pk).title == rule.title


def test_actor_helpers_name_the_person_or_the_token():
    token_actor_ = token_actor("cases:read")
    assert token_actor_.user_or_none is None and token_actor_.token_or_none is token_actor_.token
    assert SYSTEM.user_or_none is None and SYSTEM.token_or_none is None


def test_each_rule_edit_is_a_new_version_and_the_history_is_kept(as_lead):
    rule = Rule.objects.get(code="spam-fraud")
    assert rule.version == 1 and list(rule.versions.values_list("version", flat=True)) == [1]
    rule.ladder_overrides = {"low": "throttle"}
    services.rule_save(actor=as_lead, rule=rule)
    services.rule_save(actor=as_lead, rule=rule)  # nothing changed: no new version
    rule.refresh_from_db()
    assert rule.version == 2
    assert [(v.version, v.policy["ladder_overrides"]) for v in rule.versions.order_by("version")] == [
        (1, {}), (2, {"low": "throttle"})
    ]
