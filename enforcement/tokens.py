"""Service tokens: the raw value's shape and hash, and authentication. Creating and revoking them are
services (``enforcement.services.tokens``)."""

import hashlib

from django.utils import timezone

from enforcement.models import ServiceToken

TOKEN_PREFIX = "mmst_"


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def service_token_authenticate(raw: str) -> ServiceToken | None:
    """The live token for a raw value, or None. Records when it was last used (at most once a minute)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = ServiceToken.objects.filter(token_sha256=token_hash(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
