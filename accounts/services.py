"""Writes to accounts and keys. Enforcement changes keys only through these functions."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Least
from django.utils import timezone

from accounts import edge
from accounts.models import STATUS_RANK, Account, APIKey, KeyStatus
from accounts.tokens import KIND_PREFIXES, is_well_formed_prefix
from enforcement.actors import Actor
from enforcement.audit import audit_record, snapshot
from enforcement.errors import Conflict, NotFound, ValidationFailed

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


@dataclass(frozen=True)
class Restriction:
    """What one action in force imposes: a status floor and, for throttles, limit caps."""

    status: str
    rate_limit: int | None = None
    ip_rate_limit: int | None = None
    key_ids: frozenset[int] | None = None  # None: every key of the account


@dataclass(frozen=True)
class KeyState:
    status: str = KeyStatus.ACTIVE
    rate_limit: int | None = None
    ip_rate_limit: int | None = None

    def plus(self, restriction: Restriction) -> "KeyState":
        status = max(self.status, restriction.status, key=STATUS_RANK.__getitem__)
        return KeyState(
            status=status,
            rate_limit=_min_or_none(self.rate_limit, restriction.rate_limit),
            ip_rate_limit=_min_or_none(self.ip_rate_limit, restriction.ip_rate_limit),
        )


def _min_or_none(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def fold_restrictions(restrictions: Iterable[Restriction]) -> KeyState:
    state = KeyState()
    for restriction in restrictions:
        state = state.plus(restriction)
    return state


def account_get(public_id: str) -> Account:
    try:
        return Account.objects.get(public_id=public_id)
    except Account.DoesNotExist:
        raise NotFound(f"No account {public_id!r}.") from None


@transaction.atomic
def account_upsert(*, actor: Actor, public_id: str, name: str, email: str) -> tuple[Account, bool]:
    account = Account.objects.select_for_update().filter(public_id=public_id).first()
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
    key = APIKey.objects.select_for_update().filter(prefix=prefix).first()
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
    from enforcement.services import account_keys_recompute

    account_keys_recompute(account_id=account.pk, key_ids=[key.pk])
    edge.publish_keys_on_commit([key.pk])  # a new key may not change state, yet the edge must learn it
    key.refresh_from_db()
    return key, created


@transaction.atomic
def key_revoke(*, actor: Actor, key_id: int, reason: str) -> APIKey:
    """Revoke a key in its own right (e.g. exposed publicly). Permanent: the customer rolls a new one."""
    key = APIKey.objects.select_for_update().get(pk=key_id)
    if key.revoked_at is not None:
        return key
    before = snapshot(key, ["status", "revoked_at"])
    key.revoked_at = timezone.now()
    key.revoked_reason = reason[:200]
    key.save(update_fields=["revoked_at", "revoked_reason", "updated_at"])
    from enforcement.services import account_keys_recompute

    account_keys_recompute(account_id=key.account_id, key_ids=[key.pk])
    edge.publish_keys_on_commit([key.pk])  # at once, not behind the worker's queue
    key.refresh_from_db()
    audit_record(actor=actor, verb="key.revoked", target=key, account=key.account, before=before,
                 after=snapshot(key, ["status", "revoked_at"]), note=reason)
    return key


def _state_assignments(state: KeyState) -> dict:
    rate = F("base_rate_limit_per_minute")
    ip_rate = F("base_ip_rate_limit_per_minute")
    if state.rate_limit is not None:
        rate = Least(rate, Value(state.rate_limit))
    if state.ip_rate_limit is not None:
        ip_rate = Least(ip_rate, Value(state.ip_rate_limit))
    status = Case(When(revoked_at__isnull=False, then=Value(KeyStatus.REVOKED.value)), default=Value(state.status))
    return {"status": status, "rate_limit_per_minute": rate, "ip_rate_limit_per_minute": ip_rate}


def _apply_state(queryset, state: KeyState, now) -> int:
    values = _state_assignments(state)
    differs = Q()
    for name, expression in values.items():
        differs |= ~Q(**{name: expression})
    return queryset.filter(differs).update(
        **values, state_version=F("state_version") + 1, state_changed_at=now, updated_at=now
    )


def key_states_recompute(
    *,
    account_id: int,
    restrictions: list[Restriction],
    account_status: str,
    key_ids: Iterable[int] | None = None,
) -> int:
    """Derive every key's effective state from the restrictions in force; the one writer of it.

    Keys that no action names share one state and get one UPDATE; keys named by actions
    get one UPDATE per distinct state. Only rows whose state changes are written (and get
    a new ``state_version``). Returns how many keys changed.
    """
    assert transaction.get_connection().in_atomic_block
    now = timezone.now()
    keys = APIKey.objects.filter(account_id=account_id)
    if key_ids is not None:
        keys = keys.filter(pk__in=list(key_ids))
    named: set[int] = set()
    for restriction in restrictions:
        if restriction.key_ids is not None:
            named |= restriction.key_ids
    account_wide = [r for r in restrictions if r.key_ids is None]
    base_state = fold_restrictions(account_wide)
    changed = _apply_state(keys.exclude(pk__in=named) if named else keys, base_state, now)
    by_state: dict[KeyState, list[int]] = {}
    for key_id in named:
        state = fold_restrictions(
            [*account_wide, *(r for r in restrictions if r.key_ids is not None and key_id in r.key_ids)]
        )
        by_state.setdefault(state, []).append(key_id)
    for state, ids in by_state.items():
        changed += _apply_state(keys.filter(pk__in=ids), state, now)
    Account.objects.filter(pk=account_id).exclude(status=account_status).update(
        status=account_status, updated_at=now
    )
    if changed:
        edge.publish_account_on_commit(account_id)
    return changed
