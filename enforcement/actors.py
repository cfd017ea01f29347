"""Who is acting: a staff member, a service token, or the system itself.

Every service takes a required ``actor``; what it may do comes from here, so the admin,
the API, tasks and commands all get the same answer.
"""

from dataclasses import dataclass, field
from typing import Any

from enforcement.errors import Forbidden

ROLE_AGENT = "tns_agent"
ROLE_LEAD = "tns_lead"
ROLE_AUDITOR = "tns_auditor"
ROLES = (ROLE_AGENT, ROLE_LEAD, ROLE_AUDITOR)

# Capabilities are Django permissions of the enforcement app, granted to the role groups
# by a data migration; service tokens get them through their scopes.
WORK_CASE = "work_case"  # report, assign, comment, resolve, dismiss
PROPOSE_ACTION = "propose_action"  # warn and throttle
SUSPEND_ACTION = "suspend_action"  # suspend without approval, revert suspensions
APPROVE_ACTION = "approve_action"  # approve suspensions and terminations
DECIDE_APPEAL = "decide_appeal"
SUBMIT_APPEAL = "submit_appeal"
REPORT_VIOLATION = "report_violation"  # staff: WORK_CASE
EDIT_RULES = "change_rule"  # the rule catalogue (people only)
MANAGE_TOKENS = "change_servicetoken"  # create and revoke service tokens (people and the operator)
MANAGE_INVENTORY = "manage_inventory"  # upsert accounts and keys, revoke a key

TOKEN_SCOPE_FOR = {
    WORK_CASE: "cases:write",
    PROPOSE_ACTION: "actions:write",
    SUSPEND_ACTION: "actions:approve",
    APPROVE_ACTION: "actions:approve",
    DECIDE_APPEAL: "actions:approve",
    SUBMIT_APPEAL: "appeals:write",
    REPORT_VIOLATION: "violations:write",
    MANAGE_INVENTORY: "inventory:write",
    EDIT_RULES: None,  # a rule edit is a person's decision
    MANAGE_TOKENS: None,  # a token never mints tokens
}
# The system escalates, applies, mirrors inventory and acts for the operator's commands;
# it never approves or decides on its own.
SYSTEM_CAPABILITIES = {WORK_CASE, PROPOSE_ACTION, REPORT_VIOLATION, MANAGE_INVENTORY, MANAGE_TOKENS}


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "token" or "system"
    label: str
    user: Any = None
    token: Any = None
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_user(cls, user) -> "Actor":
        return cls(kind="user", label=user.get_username(), user=user)

    @classmethod
    def for_token(cls, token) -> "Actor":
        return cls(kind="token", label=f"token:{token.name}", token=token)

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(kind="system", label=label)

    @property
    def identity(self) -> str:
        """Stable identity of this very actor: the same person or token retrying is recognised by it."""
        if self.kind == "user":
            return f"user:{self.user.pk}"
        if self.kind == "token":
            return f"token:{self.token.pk}"
        return "system"

    @property
    def identities(self) -> frozenset[str]:
        """Everyone this actor stands for, to tell a requester from an approver: a token counts as its creator."""
        if self.kind == "token":
            return identities_of(user_id=None, token_id=self.token.pk, token_creator_id=self.token.created_by_id)
        return frozenset({self.identity})

    @property
    def is_trusted_source(self) -> bool:
        """A report from a trusted source may act first: a lead, a token created trusted, the system.
        An agent's report never does (its suspension waits for a lead)."""
        if self.kind == "user":
            return self.can(SUSPEND_ACTION)
        if self.kind == "token":
            return bool(self.token.trusted)
        return True

    @property
    def user_or_none(self):
        """The staff member acting, for a foreign key; None for a token or the system."""
        return self.user if self.kind == "user" else None

    @property
    def token_or_none(self):
        """The service token acting, for a foreign key; None for a person or the system."""
        return self.token if self.kind == "token" else None

    def can(self, capability: str) -> bool:
        if self.kind == "system":
            return capability in SYSTEM_CAPABILITIES
        if self.kind == "token":
            scope = TOKEN_SCOPE_FOR[capability]
            return scope is not None and self.token.has_scope(scope)
        if not (self.user.is_active and self.user.is_staff):
            return False
        if capability == REPORT_VIOLATION:
            capability = WORK_CASE
        return self.user.has_perm(f"enforcement.{capability}")

    def require(self, capability: str, message: str) -> None:
        """Raise ``Forbidden`` unless this actor has the capability."""
        if not self.can(capability):
            raise Forbidden(message)

    @property
    def role(self) -> str | None:
        if "role" not in self._cache:
            self._cache["role"] = self._compute_role()
        return self._cache["role"]

    def _compute_role(self) -> str | None:
        if self.kind != "user":
            return None
        if self.user.is_superuser:
            return ROLE_LEAD
        names = set(self.user.groups.values_list("name", flat=True))
        for role in (ROLE_LEAD, ROLE_AGENT, ROLE_AUDITOR):
            if role in names:
                return role
        return None

    def audit_fields(self) -> dict:
        return {
            "actor_type": self.kind,
            "actor_user": self.user_or_none,
            "actor_token": self.token_or_none,
            "actor_label": self.label,
        }


def identities_of(*, user_id: int | None, token_id: int | None, token_creator_id: int | None) -> frozenset[str]:
    """The identities behind a recorded requester or approver (a person, or a token and its creator)."""
    if user_id is not None:
        return frozenset({f"user:{user_id}"})
    if token_id is not None:
        creator = {f"user:{token_creator_id}"} if token_creator_id is not None else set()
        return frozenset({f"token:{token_id}", *creator})
    return frozenset()


SYSTEM = Actor.system()
