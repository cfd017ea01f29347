"""Writing the append-only audit log. Called inside the transaction of the change it records."""

import functools
from typing import Any

from django.db import transaction

from enforcement.actors import Actor
from enforcement.errors import Conflict, Forbidden, InvalidTransition
from enforcement.models import AuditEvent


def audit_record(**fields) -> AuditEvent:
    """Write the ``audit_row`` of these fields now, in the transaction of the change it records."""
    assert transaction.get_connection().in_atomic_block, "audit events belong to a transaction"
    event = audit_row(**fields)
    event.save(force_insert=True)
    return event


def audit_row(
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
    """An ``AuditEvent``, unsaved: ``audit_record`` writes one, or many are written at once (``lib.bulk``)."""
    return AuditEvent(
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


def audit_refusals(verb: str, model, id_argument: str):
    """Decorate a service so that a refusal (forbidden, not allowed in this state, already decided) leaves an
    audit event ``<verb>.refused`` with the reason. It is written after the refused transaction rolled back,
    in a transaction of its own, so the refusal is on record although nothing else changed."""
    def decorate(service):
        @functools.wraps(service)
        def wrapper(*args, actor: Actor, **kwargs):
            try:
                return service(*args, actor=actor, **kwargs)
            except (Forbidden, InvalidTransition, Conflict) as exc:
                target = model.objects.filter(pk=kwargs.get(id_argument)).first()
                if target is not None:
                    case = target if model._meta.model_name == "case" else getattr(target, "case", None)
                    with transaction.atomic():
                        audit_record(
                            actor=actor, verb=f"{verb}.refused", target=target, case=case,
                            account=case.account if case is not None else None, after={"code": exc.code},
                            note=exc.message[:500],
                        )
                raise

        return wrapper

    return decorate
