"""Reporting sources: (source, external_id) is a report's idempotency key, so a source belongs to a reporter.

The first token or staff member to report under a source owns it (a token counts as its creator, as for
four eyes); any other reporter is refused with ``source_not_yours`` before anything stored under it is
looked at, so a replay answers only the owner and nobody can claim another detector's ids in advance.
Sources the system reports under (``github-secret-scanning``, ``gate``) are reserved to it.
"""

from django.db import IntegrityError, transaction
from django.db.models import Subquery

from enforcement.actors import MANAGE_TOKENS, Actor, identities_of
from enforcement.audit import audit_record
from enforcement.errors import Forbidden, NotFound, ServiceError, ValidationFailed
from enforcement.models import ServiceToken, Source, Violation
from enforcement.services.locks import for_update
from lib.compiled import CompiledQuery

RESERVED_SOURCES = frozenset({"github-secret-scanning", "gate"})


def _not_yours(name: str) -> Forbidden:
    return Forbidden(f"The source {name!r} belongs to another reporter; report under a source of your own.",
                     code="source_not_yours")


def check_source(actor: Actor, source: Source) -> ServiceError | None:
    """Why this actor may not report under this source (None: it may)."""
    if actor.kind == "system":
        return None
    if source.reserved:
        return _not_yours(source.name)
    owner_token = source.owner_token if source.owner_token_id else None
    owners = identities_of(user_id=source.owner_user_id, token_id=source.owner_token_id,
                           token_creator_id=owner_token.created_by_id if owner_token else None)
    if owners and not (actor.identities & owners):
        return _not_yours(source.name)
    return None


def _source_with_report(name: str, source: str, external_id: str):
    earlier = Violation.objects.filter(source=source, external_id=external_id).values("pk")[:1]
    return Source.objects.select_related("owner_token").filter(name=name).annotate(
        reported_violation_id=Subquery(earlier)
    )


_SOURCE_WITH_REPORT = CompiledQuery(_source_with_report)  # on every report: compiled once


def source_for_report(*, actor: Actor, name: str, reported: tuple[str, str] | None = None) -> Source:
    """The source a report names: claimed for the actor on first use, refused if it is another reporter's.

    ``reported``: a report's (source, external_id); the id of the violation stored under it, if any, is read in
    the same query as ``source.reported_violation_id`` (absent when the source had to be created or claimed)."""
    if reported is not None:
        source = _SOURCE_WITH_REPORT.first(name, *reported)
    else:
        source = Source.objects.select_related("owner_token").filter(name=name).first()
    if source is None:
        try:
            with transaction.atomic():
                source = Source.objects.create(
                    name=name, reserved=actor.kind == "system" or name in RESERVED_SOURCES,
                    owner_user=actor.user_or_none, owner_token=actor.token_or_none,
                )
        except IntegrityError:  # another report claimed it at the same moment
            source = Source.objects.select_related("owner_token").get(name=name)
    elif not (source.reserved or source.owner_user_id or source.owner_token_id) and actor.kind != "system":
        # A source from before ownership whose first reporter is unknown: the next reporter claims it.
        Source.objects.filter(pk=source.pk, owner_user=None, owner_token=None).update(
            owner_user=actor.user_or_none, owner_token=actor.token_or_none
        )
        source = Source.objects.select_related("owner_token").get(pk=source.pk)
    problem = check_source(actor, source)
    if problem is not None:
        raise problem
    return source


@transaction.atomic
def source_reassign(*, actor: Actor, source_id: int, owner_user_id: int | None = None,
                    owner_token_id: int | None = None) -> Source:
    """A lead hands a source to another reporter (a person or a token), e.g. a detector's new token."""
    actor.require(MANAGE_TOKENS, "Only a lead may reassign a source.")
    if (owner_user_id is None) == (owner_token_id is None):
        raise ValidationFailed("Give the source one owner: a staff member or a service token.",
                               fields={"owner": ["Choose exactly one."]})
    source = for_update(Source.objects).filter(pk=source_id).first()
    if source is None:
        raise NotFound(f"No source {source_id}.")
    if source.reserved:
        raise ValidationFailed(f"The source {source.name!r} is reserved to the console.",
                               fields={"owner": ["Reserved."]})
    if owner_token_id is not None and not ServiceToken.objects.filter(pk=owner_token_id).exists():
        raise ValidationFailed("No such service token.", fields={"owner_token": ["Not found."]})
    before = {"owner_user": source.owner_user_id, "owner_token": source.owner_token_id}
    source.owner_user_id, source.owner_token_id = owner_user_id, owner_token_id
    source.save(update_fields=["owner_user", "owner_token"])
    audit_record(actor=actor, verb="source.reassigned", target=source, before=before,
                 after={"owner_user": owner_user_id, "owner_token": owner_token_id})
    return source
