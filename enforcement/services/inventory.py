"""The inventory mirrored from the platform: accounts and their API keys, upserted and revoked with audit events.

The rows are ``accounts``' models; these are the audited, actor-checked verbs that change them (``accounts``
knows nothing of actors or audit). A key's effective state is still written only by
``accounts.services.key_states_recompute``, through ``account_keys_recompute``.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import edge
from accounts.models import Account, APIKey
from accounts.tokens import KIND_PREFIXES, is_well_formed_prefix
from enforcement.actors import MANAGE_INVENTORY, Actor
from enforcement.audit import audit_record, snapshot
from enforcement.errors import Conflict, NotFound, ValidationFailed
from enforcement.services.key_state import account_keys_recompute
from enforcement.services.locks import for_update, lock_account

ACCOUNT_FIELDS = ["name", "email", "status"]
KEY_FIELDS = [
    "kind",
    "label",
    "base_rate_limit_per_minute",
    "base_ip_rate_limit_per_minute",
    "status",
    "rate_limit_per_minute",
    "ip_rate_limit_per_minute",
]


def account_get(public_id: str) -> Account:
    try:
        return Account.objects.get(public_id=public_id)
    except Account.DoesNotExist:
        raise NotFound(f"No account {public_id!r}.") from None


@transaction.atomic
def account_upsert(*, actor: Actor, public_id: str, name: str, email: str) -> tuple[Account, bool]:
    actor.require(MANAGE_INVENTORY, "You may not change accounts.")
    account = for_update(Account.objects).filter(public_id=public_id).first()
    if account is None:
        account = Account.objects.create(public_id=public_id, name=name, email=email)
        audit_record(
            actor=actor, verb="account.created", target=account, account=account,
            after=snapshot(account, ACCOUNT_FIELDS),
        )
        return account, True
    before = snapshot(account, ACCOUNT_FIELDS)
    if (account.name, account.email) == (name, email):
        return account, False
    account.name, account.email = name, email
    account.save(update_fields=["name", "email", "updated_at"])
    audit_record(
        actor=actor, verb="account.updated", target=account, account=account,
        before=before, after=snapshot(account, ACCOUNT_FIELDS),
    )
    return account, False


def key_upsert(
    *,
    actor: Actor,
    prefix: str,
    account: Account,
    kind: str,
    token_sha256: str,
    rate_limit_per_minute: int,
    ip_rate_limit_per_minute: int,
    label: str = "",
) -> tuple[APIKey, bool]:
    actor.require(MANAGE_INVENTORY, "You may not change keys.")
    fields: dict[str, list[str]] = {}
    if not is_well_formed_prefix(prefix):
        fields["prefix"] = ["Must be pk_live_, sk_live_ or rk_live_ followed by 8 letters or digits."]
    elif kind in KIND_PREFIXES and not prefix.startswith(KIND_PREFIXES[kind]):
        fields["kind"] = [f"A {kind} key's prefix starts with {KIND_PREFIXES[kind]}."]
    if kind not in KIND_PREFIXES:
        fields["kind"] = ["Must be publishable, secret or restricted."]
    if len(token_sha256) != 64 or any(c not in "0123456789abcdef" for c in token_sha256):
        fields["token_sha256"] = ["Must be 64 lowercase hexadecimal characters."]
    if fields:
        raise ValidationFailed("The key is not valid.", fields=fields)
    try:
        with transaction.atomic():
            return _key_upsert(
                actor=actor, prefix=prefix, account=account, kind=kind, token_sha256=token_sha256,
                rate_limit=rate_limit_per_minute, ip_rate_limit=ip_rate_limit_per_minute, label=label,
            )
    except IntegrityError:
        raise Conflict(
            "Another key already has this token hash.", fields={"token_sha256": ["Already in use."]}
        ) from None


def _key_upsert(*, actor, prefix, account, kind, token_sha256, rate_limit, ip_rate_limit, label):
    lock_account(account.pk)  # the lock order: the account before its keys
    key = for_update(APIKey.objects).filter(prefix=prefix).first()
    if key is None:
        key = APIKey.objects.create(
            account=account, prefix=prefix, kind=kind, token_sha256=token_sha256, label=label,
            base_rate_limit_per_minute=rate_limit, base_ip_rate_limit_per_minute=ip_rate_limit,
            rate_limit_per_minute=rate_limit, ip_rate_limit_per_minute=ip_rate_limit,
        )
        created = True
        audit_record(actor=actor, verb="key.created", target=key, account=account,
                     after=snapshot(key, KEY_FIELDS))
    else:
        if key.account_id != account.pk:
            raise Conflict("This key belongs to another account.", fields={"account": ["Does not match."]})
        if key.kind != kind:
            raise Conflict("A key's kind cannot change.", fields={"kind": ["Does not match."]})
        before = snapshot(key, KEY_FIELDS)
        changed = {
            "token_sha256": token_sha256,
            "label": label or key.label,
            "base_rate_limit_per_minute": rate_limit,
            "base_ip_rate_limit_per_minute": ip_rate_limit,
        }
        if all(getattr(key, name) == value for name, value in changed.items()):
            return key, False
        new_token = key.token_sha256 != token_sha256
        for name, value in changed.items():
            setattr(key, name, value)
        if new_token:
            key.state_version += 1  # the edge finds a key by its token hash: a new hash is a new edge record
        key.save(update_fields=[*changed, *(["state_version"] if new_token else []), "updated_at"])
        created = False
        audit_record(actor=actor, verb="key.updated", target=key, account=account, before=before,
                     after=snapshot(key, KEY_FIELDS))
    # New limits or a new key: the effective state follows from what is in force.
    account_keys_recompute(account_id=account.pk, key_ids=[key.pk])
    edge.publish_keys_on_commit([key.pk])  # a new key may not change state, yet the edge must learn it
    key.refresh_from_db()
    return key, created


@transaction.atomic
def key_revoke(*, actor: Actor, key_id: int, reason: str) -> APIKey:
    """Revoke a key in its own right (e.g. exposed publicly). Permanent: the customer rolls a new one."""
    actor.require(MANAGE_INVENTORY, "You may not revoke keys.")
    account_id = APIKey.objects.filter(pk=key_id).values_list("account_id", flat=True).first()
    if account_id is None:
        raise NotFound(f"No key {key_id}.")
    account = lock_account(account_id)  # the lock order: the account before its keys
    key = for_update(APIKey.objects).get(pk=key_id)
    key.account = account
    if key.revoked_at is not None:
        return key
    before = snapshot(key, ["status", "revoked_at"])
    key.revoked_at = timezone.now()
    key.revoked_reason = reason[:200]
    key.save(update_fields=["revoked_at", "revoked_reason", "updated_at"])
    account_keys_recompute(account_id=key.account_id, key_ids=[key.pk])
    edge.publish_keys_on_commit([key.pk])  # at once, not behind the worker's queue
    key.refresh_from_db()
    audit_record(actor=actor, verb="key.revoked", target=key, account=key.account, before=before,
                 after=snapshot(key, ["status", "revoked_at"]), note=reason)
    return key
