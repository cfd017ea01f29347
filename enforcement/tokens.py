"""Service tokens: created once, shown once, stored as a SHA-256 hash."""

import hashlib
import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from enforcement.errors import ValidationFailed
from enforcement.models import ServiceToken

TOKEN_PREFIX = "mmst_"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def service_token_create(
    *, name: str, scopes: list[str], trusted: bool = False, expires_at: datetime | None = None, created_by=None
) -> tuple[ServiceToken, str]:
    """Returns the token and its raw value; the raw value is never stored and cannot be shown again."""
    unknown = sorted(set(scopes) - set(ServiceToken.Scope.values))
    fields = {}
    if unknown:
        fields["scopes"] = [f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(ServiceToken.Scope.values)}."]
    if not name.strip():
        fields["name"] = ["This field may not be blank."]
    elif ServiceToken.objects.filter(name=name).exists():
        fields["name"] = ["A token with this name exists."]
    if fields:
        raise ValidationFailed("The service token is not valid.", fields=fields)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ServiceToken.objects.create(
        name=name, prefix=raw[:12], token_sha256=_hash(raw), scopes=sorted(set(scopes)), trusted=trusted,
        expires_at=expires_at, created_by=created_by,
    )
    from enforcement.actors import SYSTEM, Actor
    from enforcement.audit import audit_record

    actor = Actor.for_user(created_by) if created_by else SYSTEM
    audit_record(actor=actor, verb="service_token.created", target=token,
                 after={"name": name, "scopes": token.scopes, "trusted": trusted})
    return token, raw


def service_token_authenticate(raw: str) -> ServiceToken | None:
    """The live token for a raw value, or None. Records when it was last used (at most once a minute)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = ServiceToken.objects.filter(token_sha256=_hash(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def service_token_revoke(*, actor, token_id: int) -> ServiceToken:
    from enforcement.audit import audit_record

    token = ServiceToken.objects.select_for_update().get(pk=token_id)
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, verb="service_token.revoked", target=token, before={"revoked_at": None},
                 after={"revoked_at": token.revoked_at.isoformat()})
    return token
