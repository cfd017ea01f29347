"""Writing the append-only audit log. Called inside the transaction of the change it records."""

from typing import Any

from django.db import transaction

from enforcement.actors import Actor
from enforcement.models import AuditEvent


def audit_record(
    *,
    actor: Actor,
    verb: str,
    target: Any,
    case=None,
    account=None,
    before: dict | None = None,
    after: dict | None = None,
    note: str = "",
) -> AuditEvent:
    assert transaction.get_connection().in_atomic_block, "audit events belong to a transaction"
    return AuditEvent.objects.create(
        **actor.audit_fields(),
        verb=verb,
        target_type=target._meta.model_name,
        target_id=str(target.pk),
        case=case,
        account=account,
        before=before,
        after=after,
        note=note,
    )


def snapshot(instance, fields: list[str]) -> dict:
    """A JSON-safe picture of some fields, for before/after."""
    out = {}
    for name in fields:
        value = getattr(instance, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif hasattr(value, "pk"):
            value = value.pk
        out[name] = value
    return out
