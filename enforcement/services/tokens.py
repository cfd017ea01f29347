"""Service tokens for automation: created once (the raw value is shown once), revoked, audited."""

import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from enforcement.actors import MANAGE_TOKENS, Actor
from enforcement.audit import audit_record
from enforcement.errors import NotFound, ValidationFailed
from enforcement.models import ServiceToken
from enforcement.services.locks import for_update
from enforcement.tokens import TOKEN_PREFIX, forget_cached_token, token_hash


@transaction.atomic
def service_token_create(
    *, actor: Actor, name: str, scopes: list[str], trusted: bool = False, expires_at: datetime | None = None
) -> tuple[ServiceToken, str]:
    """Returns the token and its raw value; the raw value is never stored and cannot be shown again.

    The token's creator is the acting person (None for the operator's command): a token acts for them.
    """
    actor.require(MANAGE_TOKENS, "Only a lead may create service tokens.")
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
        name=name, prefix=raw[:12], token_sha256=token_hash(raw), scopes=sorted(set(scopes)), trusted=trusted,
        expires_at=expires_at, created_by=actor.user_or_none,
    )
    audit_record(actor=actor, verb="service_token.created", target=token,
                 after={"name": name, "scopes": token.scopes, "trusted": trusted})
    return token, raw


@transaction.atomic
def service_token_revoke(*, actor: Actor, token_id: int) -> ServiceToken:
    actor.require(MANAGE_TOKENS, "Only a lead may revoke service tokens.")
    token = for_update(ServiceToken.objects).filter(pk=token_id).first()
    if token is None:
        raise NotFound(f"No service token {token_id}.")
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    # Refused from the next request on: forgotten now, and again once committed (a request in between may
    # have cached the token as it was).
    forget_cached_token(token)
    transaction.on_commit(lambda: forget_cached_token(token))
    audit_record(actor=actor, verb="service_token.revoked", target=token, before={"revoked_at": None},
                 after={"revoked_at": token.revoked_at.isoformat()})
    return token
