"""Key state: what the actions in force impose on an account's keys, handed to ``accounts`` to write.

``accounts.services.key_states_recompute`` is the one writer of a key's effective state; this module
is the one place that turns enforcement actions into the restrictions it folds.
"""

from django.db import transaction

from accounts.models import Account, KeyStatus
from accounts.services import Restriction, key_states_recompute
from enforcement.models import ActionKind, EnforcementAction
from enforcement.transitions import IN_FORCE

RESTRICTED_STATUS = {
    ActionKind.THROTTLE: KeyStatus.THROTTLED,
    ActionKind.SUSPEND: KeyStatus.SUSPENDED,
    ActionKind.TERMINATE: KeyStatus.REVOKED,
}


def restriction_of(action: EnforcementAction) -> Restriction | None:
    """What one action in force imposes (None for a warning); use with ``keys`` prefetched."""
    if action.kind not in RESTRICTED_STATUS:
        return None
    return Restriction(
        status=RESTRICTED_STATUS[action.kind], rate_limit=action.rate_limit_per_minute,
        ip_rate_limit=action.ip_rate_limit_per_minute, key_ids=frozenset(k.pk for k in action.keys.all()) or None,
    )


def restricts_key(action: EnforcementAction, key_id: int) -> bool:
    """Does this action (in force) restrict this key? Account-wide actions restrict every key."""
    restriction = restriction_of(action)
    return restriction is not None and (restriction.key_ids is None or key_id in restriction.key_ids)


def restricting_actions(actions: list[EnforcementAction], key_ids: list[int]) -> dict[int, list[EnforcementAction]]:
    """For each key id, the actions (in force, ``keys`` prefetched) that restrict it, in the order given: one
    pass over the actions and their keys (``restricts_key`` of every pair, without trying every pair)."""
    everywhere: list[int] = []
    on_key: dict[int, list[int]] = {key_id: [] for key_id in key_ids}
    for position, action in enumerate(actions):
        restriction = restriction_of(action)
        if restriction is None:
            continue
        if restriction.key_ids is None:
            everywhere.append(position)
            continue
        for key_id in restriction.key_ids:
            if key_id in on_key:
                on_key[key_id].append(position)
    return {
        key_id: [actions[position] for position in sorted(everywhere + positions)]
        for key_id, positions in on_key.items()
    }


def restrictions_for(account_id: int) -> tuple[list[Restriction], str]:
    """What the actions in force impose on an account's keys, and the account's status."""
    actions = (
        EnforcementAction.objects.filter(account_id=account_id, status__in=IN_FORCE)
        .exclude(kind=ActionKind.WARNING)
        .prefetch_related("keys")
    )
    restrictions, account_status = [], Account.Status.ACTIVE
    for action in actions:
        restriction = restriction_of(action)
        restrictions.append(restriction)
        if restriction.key_ids is None and action.kind == ActionKind.TERMINATE:
            account_status = Account.Status.CLOSED
        elif (restriction.key_ids is None and action.kind == ActionKind.SUSPEND
              and account_status != Account.Status.CLOSED):
            account_status = Account.Status.SUSPENDED
    return restrictions, account_status


def account_keys_recompute(*, account_id: int, key_ids: list[int] | None = None) -> int:
    """Recompute the effective state of an account's keys from every action in force."""
    with transaction.atomic():
        restrictions, account_status = restrictions_for(account_id)
        return key_states_recompute(
            account_id=account_id, restrictions=restrictions, account_status=account_status, key_ids=key_ids
        )


def all_keys_recompute() -> tuple[int, int]:
    """Recompute every account's keys; returns (accounts, keys changed)."""
    accounts = changed = 0
    for account_id in Account.objects.values_list("pk", flat=True).iterator():
        changed += account_keys_recompute(account_id=account_id)
        accounts += 1
    return accounts, changed
