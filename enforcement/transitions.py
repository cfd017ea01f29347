"""The allowed state transitions, checked by the services."""

from enforcement.models import Appeal, EnforcementAction

A = EnforcementAction.Status

ACTION_TRANSITIONS: dict[str, set[str]] = {
    A.AWAITING_APPROVAL: {A.SCHEDULED, A.CANCELLED},
    A.SCHEDULED: {A.APPLIED, A.FAILED, A.CANCELLED},
    A.FAILED: {A.SCHEDULED, A.CANCELLED},
    A.APPLIED: {A.REVERTED, A.EXPIRED},
    A.REVERTED: set(),
    A.EXPIRED: set(),
    A.CANCELLED: set(),
}

# Actions whose restrictions are in force on the keys.
IN_FORCE = {A.APPLIED}
# Actions that count as a strike against the account (unless overturned on appeal).
STRIKE_STATUSES = {A.APPLIED, A.EXPIRED, A.REVERTED}
# Actions still on their way to the keys.
PENDING = {A.AWAITING_APPROVAL, A.SCHEDULED, A.FAILED}

APPEAL_TRANSITIONS: dict[str, set[str]] = {
    Appeal.Status.PENDING: {Appeal.Status.UPHELD, Appeal.Status.OVERTURNED},
    Appeal.Status.UPHELD: set(),
    Appeal.Status.OVERTURNED: set(),
}


def can_transition(table: dict[str, set[str]], current: str, new: str) -> bool:
    return new in table.get(current, set())
