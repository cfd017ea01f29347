"""Detectors earn act-first: a trusted source acts first only while its reports hold up.

Each report's outcome: ``dismissed`` (the violation was dismissed), ``overturned`` (an action applied on its case
after it was overturned on appeal), ``actioned`` (an action, a warning or more, was applied on its case after it),
else ``pending``. A source's precision is the share of ``actioned`` among its last ``DETECTOR_MIN_DECIDED`` decided
reports; below ``DETECTOR_MIN_PRECISION`` (with at least that many decided), its critical reports stop acting first
and wait for a lead, until its precision recovers. Losing and regaining it are audit events, and the console's front
page counts the sources without it.

It is checked when a report could act first (critical, under an act-first rule, from a trusted reporter): the one
moment it matters, and it keeps the ordinary report path free of the extra queries.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Case as When_
from django.db.models import CharField, Count, Exists, OuterRef, QuerySet, Value, When
from django.utils import timezone

from enforcement import notifications
from enforcement.actors import SYSTEM, Actor
from enforcement.audit import audit_record
from enforcement.models import EnforcementAction, Rule, Severity, Source, Violation

ACTIONED, DISMISSED, OVERTURNED, PENDING = "actioned", "dismissed", "overturned", "pending"
OUTCOMES = (ACTIONED, DISMISSED, OVERTURNED, PENDING)


def with_outcome(violations: QuerySet[Violation]) -> QuerySet[Violation]:
    """Annotate each violation with its ``outcome`` (one expression, no query per row)."""
    applied_after = EnforcementAction.objects.filter(
        case_id=OuterRef("case_id"), applied_at__isnull=False, applied_at__gte=OuterRef("reported_at")
    )
    return violations.annotate(outcome=When_(
        When(status=Violation.Status.DISMISSED, then=Value(DISMISSED)),
        When(Exists(applied_after.filter(overturned=True)), then=Value(OVERTURNED)),
        When(Exists(applied_after), then=Value(ACTIONED)),
        default=Value(PENDING),
        output_field=CharField(),
    ))


def outcome_of(violation: Violation) -> str:
    """A violation's outcome: annotated by ``with_outcome``, else what its own row says."""
    annotated = getattr(violation, "outcome", None)
    if annotated is not None:
        return annotated
    return DISMISSED if violation.status == Violation.Status.DISMISSED else PENDING


@dataclass(frozen=True)
class SourceRecord:
    reports: int
    actioned: int
    dismissed: int
    overturned: int
    recent_decided: int  # of the last DETECTOR_MIN_DECIDED decided reports
    precision: float | None  # actioned share of those; None before any is decided

    @property
    def below_floor(self) -> bool:
        return (self.recent_decided >= settings.DETECTOR_MIN_DECIDED and self.precision is not None
                and self.precision < settings.DETECTOR_MIN_PRECISION)


def source_record(name: str, *, counts: dict[str, int] | None = None) -> SourceRecord:
    """A source's track record (``counts``: its outcome counts, when the caller has them already)."""
    reports = with_outcome(Violation.objects.filter(source=name))
    if counts is None:
        counts = dict(reports.order_by().values_list("outcome").annotate(n=Count("id")))
    recent = recent_precision(name)
    return SourceRecord(
        reports=sum(counts.values()), actioned=counts.get(ACTIONED, 0), dismissed=counts.get(DISMISSED, 0),
        overturned=counts.get(OVERTURNED, 0), recent_decided=recent.recent_decided, precision=recent.precision,
    )


@dataclass(frozen=True)
class RecentPrecision:
    recent_decided: int
    precision: float | None


def recent_precision(name: str) -> RecentPrecision:
    """The actioned share of a source's last ``DETECTOR_MIN_DECIDED`` decided reports: one query, walking back
    its reports on (source, reported_at) until it has them."""
    recent = list(
        with_outcome(Violation.objects.filter(source=name)).exclude(outcome=PENDING).order_by("-reported_at", "-id")
        .values_list("outcome", flat=True)[: settings.DETECTOR_MIN_DECIDED]
    )
    return RecentPrecision(len(recent), round(recent.count(ACTIONED) / len(recent), 4) if recent else None)


def source_may_act_first(source_name: str) -> bool:
    """Whether this source's reports may still act first; records a change of that (audit event, front page)."""
    source = Source.objects.filter(name=source_name).first()
    if source is None:
        return True
    record = source_record(source_name)
    withheld = record.below_floor
    if withheld != (source.act_first_withheld_at is not None):
        _act_first_change(source_id=source.pk, withheld=withheld, record=record)
    return not withheld


@transaction.atomic
def _act_first_change(*, source_id: int, withheld: bool, record: SourceRecord) -> None:
    # A conditional update, not a lock taken up front: the source comes last in the lock order (after the
    # account and case a report locks), and "0 rows" means another report recorded the change already.
    changed = Source.objects.filter(pk=source_id, act_first_withheld_at__isnull=withheld).update(
        act_first_withheld_at=timezone.now() if withheld else None
    )
    if not changed:
        return
    source = Source.objects.select_related("owner_user", "owner_token").get(pk=source_id)
    event = audit_record(
        actor=SYSTEM, verb="source.act_first_withheld" if withheld else "source.act_first_restored", target=source,
        after={"source": source.name, "precision": record.precision, "decided": record.recent_decided,
               "floor": settings.DETECTOR_MIN_PRECISION},
        note=f"precision {record.precision} over its last {record.recent_decided} decided reports",
    )
    # The on-call staff hear of it once per change: the event key names the audit event of this change.
    notifications.notify_staff(
        template="staff_detector_act_first", event_key=f"source:{source.pk}:act-first:{event.pk}",
        context={
            "source": source.name, "source_id": source.pk, "withheld": withheld,
            "owner": _owner_label(source), "precision": record.precision, "decided": record.recent_decided,
            "actioned": record.actioned, "dismissed": record.dismissed, "overturned": record.overturned,
            "threshold": settings.DETECTOR_MIN_PRECISION, "min_decided": settings.DETECTOR_MIN_DECIDED,
            "changed_at": event.created_at.isoformat(),
        },
    )


def _owner_label(source: Source) -> str:
    if source.owner_token_id:
        return f"service token {source.owner_token.name}"
    if source.owner_user_id:
        return source.owner_user.get_username()
    return "the console (reserved)" if source.reserved else "nobody yet"


def detectors_recheck() -> list[str]:
    """Re-read the precision of every source without act-first, so one that recovered gets it back (and staff are
    told) when its reports are decided, not at its next critical report; the names of those that changed. Each
    change is recorded once (``_act_first_change`` is a conditional update), so running it every sweep is safe."""
    changed = []
    for source in Source.objects.filter(act_first_withheld_at__isnull=False).only("pk", "name"):
        record = source_record(source.name)
        if not record.below_floor:
            _act_first_change(source_id=source.pk, withheld=False, record=record)
            changed.append(source.name)
    return changed


def report_trusted(*, actor: Actor, source: str, rule: Rule, severity: str, memo: dict | None = None) -> bool:
    """May this report act first as a trusted source's? The reporter must be trusted (``Actor.is_trusted_source``)
    and, when the report could act first, its source's precision must hold."""
    if not actor.is_trusted_source:
        return False
    if severity != Severity.CRITICAL or not rule.act_first:
        return True
    if memo is None:
        return source_may_act_first(source)
    if source not in memo:
        memo[source] = source_may_act_first(source)
    return memo[source]
