"""Who is acting: a staff member, a service token, or the system itself.

Every service takes a required ``actor``; what it may do comes from here, so the admin,
the API, tasks and commands all get the same answer.
"""

from dataclasses import dataclass, field
from typing import Any

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

TOKEN_SCOPE_FOR = {
    WORK_CASE: "cases:write",
    PROPOSE_ACTION: "actions:write",
    SUSPEND_ACTION: "actions:approve",
    APPROVE_ACTION: "actions:approve",
    DECIDE_APPEAL: "actions:approve",
    SUBMIT_APPEAL: "appeals:write",
    "report_violation": "violations:write",
}


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
        """Stable identity, used to tell a requester from an approver."""
        if self.kind == "user":
            return f"user:{self.user.pk}"
        if self.kind == "token":
            return f"token:{self.token.pk}"
        return "system"

    @property
    def is_trusted_source(self) -> bool:
        if self.kind == "user":
            return bool(self.user.is_staff)
        if self.kind == "token":
            return bool(self.token.trusted)
        return True

    def can(self, capability: str) -> bool:
        if self.kind == "system":
            # The system escalates and applies; it never approves or decides on its own.
            return capability in {WORK_CASE, PROPOSE_ACTION, "report_violation"}
        if self.kind == "token":
            return self.token.has_scope(TOKEN_SCOPE_FOR[capability])
        if not (self.user.is_active and self.user.is_staff):
            return False
        if capability == "report_violation":
            capability = WORK_CASE
        return self.user.has_perm(f"enforcement.{capability}")

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
            "actor_user": self.user if self.kind == "user" else None,
            "actor_token": self.token if self.kind == "token" else None,
            "actor_label": self.label,
        }


SYSTEM = Actor.system()
