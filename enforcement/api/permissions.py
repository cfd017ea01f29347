"""Which scope each route needs, checked for service tokens and staff sessions alike.

A view declares ``required_scopes``, keyed by HTTP method or by viewset action name
(an action name wins over the method), each value one scope, a tuple of scopes that are
all needed, or ``AnyOf(...)`` scopes of which one will do::

    class GateCheckView(APIView):
        permission_classes = [ScopePermission]
        required_scopes = {"POST": "gate:check"}

A token passes when it holds every scope. A staff session passes when the member has a
role (agent, lead or auditor) and, for a writing scope, the capability that scope stands for
(so an auditor reads but writes nothing). The services check the finer rules themselves
(who may suspend, four eyes on terminations). Object permissions do not filter lists: list
views must scope their querysets themselves.
"""

from rest_framework.permissions import BasePermission

from enforcement.actors import APPROVE_ACTION, MANAGE_INVENTORY, PROPOSE_ACTION, SUBMIT_APPEAL, WORK_CASE
from enforcement.api.auth import actor_of
from enforcement.api.throttling import throttle_unauthenticated
from enforcement.models import ServiceToken

S = ServiceToken.Scope

# The capability a staff member needs for a scope; None: any role will do (reading). The gate takes from a
# customer key's buckets, so only those who work cases may call it (not an auditor).
STAFF_CAPABILITY_FOR_SCOPE: dict[str, str | None] = {
    S.VIOLATIONS_WRITE: "report_violation",
    S.CASES_READ: None,
    S.CASES_WRITE: WORK_CASE,
    S.ACTIONS_WRITE: PROPOSE_ACTION,
    S.ACTIONS_APPROVE: APPROVE_ACTION,
    S.APPEALS_WRITE: SUBMIT_APPEAL,
    S.INVENTORY_WRITE: MANAGE_INVENTORY,
    S.GATE_CHECK: WORK_CASE,
    S.AUDIT_READ: None,
}


class AnyOf(tuple):
    """Scopes of which one is enough (the view then narrows its queryset to what that one allows)."""

    def __new__(cls, *scopes: str):
        return super().__new__(cls, scopes)


def required_scopes_for(view, request) -> tuple[str, ...] | None:
    """The scopes a request needs (all of them, or one of an ``AnyOf``); None when the view declares nothing."""
    table = getattr(view, "required_scopes", None) or {}
    action = getattr(view, "action", None)
    method = request.method.upper()
    for key in (action, method, "GET" if method == "HEAD" else None):
        if key and key in table:
            value = table[key]
            if isinstance(value, str):
                return (value,)
            return value if isinstance(value, AnyOf) else tuple(value)
    return None


def token_has_scope(request, scope: str) -> bool:
    """For narrowing querysets: does the caller's token hold ``scope``? Staff sessions: True."""
    return not isinstance(request.auth, ServiceToken) or request.auth.has_scope(scope)


class ScopePermission(BasePermission):
    message = "You may not do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            throttle_unauthenticated(request)  # before the 401: DRF's throttles run after permissions
            return False  # DRF answers 401 (the token authenticator names the scheme)
        if request.method.upper() == "OPTIONS":
            return True  # describes the route, changes and reveals nothing
        scopes = required_scopes_for(view, request)
        if scopes is None:
            if request.method.upper() not in view.allowed_methods:
                return True  # the view answers 405
            self.message = "This route declares no scope; nobody may call it."
            return False
        if isinstance(request.auth, ServiceToken):
            missing = [scope for scope in scopes if not request.auth.has_scope(scope)]
            if isinstance(scopes, AnyOf) and len(missing) < len(scopes):
                return True
            if missing:
                joined = " or ".join(missing) if isinstance(scopes, AnyOf) else ", ".join(missing)
                self.message = f"This token lacks the scope(s): {joined}."
                return False
            return True
        return self._staff_may(request, scopes)

    def _staff_may(self, request, scopes: tuple[str, ...]) -> bool:
        user = request.user
        actor = actor_of(request)
        if not (user.is_active and user.is_staff) or actor.role is None:
            self.message = "Your account has no trust and safety role."
            return False
        allowed = [self._role_allows(actor, scope) for scope in scopes]
        if any(allowed) if isinstance(scopes, AnyOf) else all(allowed):
            return True
        refused = [scope for scope, ok in zip(scopes, allowed, strict=True) if not ok]
        self.message = f"Your role does not allow {' or '.join(refused)}."
        return False

    @staticmethod
    def _role_allows(actor, scope: str) -> bool:
        capability = STAFF_CAPABILITY_FOR_SCOPE.get(scope, "")
        return capability != "" and (capability is None or actor.can(capability))
