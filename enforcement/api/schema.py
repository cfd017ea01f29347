"""OpenAPI generation: every operation documents its scope and the error answers it can give.

The error answers all share the one error shape (``Error``), so a client generated from the
schema can read any 4xx the same way.
"""

from types import SimpleNamespace

from drf_spectacular.openapi import AutoSchema

from enforcement.api.permissions import AnyOf, ScopePermission, required_scopes_for
from enforcement.api.serializers import ErrorSerializer

BODY_METHODS = {"POST", "PUT", "PATCH"}


IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Retrying a POST with the same key returns the first answer (for 24 hours) instead of doing it "
    "again; the answer then carries `Idempotent-Replayed: true`. A key reused for another body is refused (409).",
}


class ApiAutoSchema(AutoSchema):
    def _handler(self):
        action = getattr(self.view, "action", None)
        return getattr(self.view, action or self.method.lower(), None)

    def _scope_protected(self) -> bool:
        return any(
            isinstance(p, type) and issubclass(p, ScopePermission) for p in getattr(self.view, "permission_classes", [])
        )

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not self._scope_protected():
            return operation
        scopes = required_scopes_for(self.view, SimpleNamespace(method=self.method))
        if scopes:
            joiner = " or " if isinstance(scopes, AnyOf) else " and "
            needed = joiner.join(f"`{scope}`" for scope in scopes)
            scope_line = f"Scope: {needed} (staff sessions: a role that allows it)."
            operation["description"] = f"{operation.get('description', '')}\n\n{scope_line}".strip()
        codes = ["400", "401", "403", "404", "429"]
        if self.method in BODY_METHODS:
            codes += ["409", "413", "415"]  # 413: over API_MAX_BODY_BYTES
        if self.method == "POST" and getattr(self._handler(), "idempotent", False):
            operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)
        responses = operation.setdefault("responses", {})
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
        return operation
