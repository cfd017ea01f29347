"""A key's effective state: derived from the restrictions in force, written by ``key_states_recompute`` alone.

The caller (enforcement) says what is in force as ``Restriction``s; this module folds them (the most
restrictive wins) and writes only the keys whose state changes, then publishes them to the edge.
It knows nothing of cases or actions.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Least
from django.utils import timezone

from accounts import edge
from accounts.models import STATUS_RANK, Account, APIKey, KeyStatus


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
