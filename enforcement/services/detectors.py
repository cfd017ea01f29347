"""Detectors earn act-first: a trusted source acts first only while its reports hold up.

Each report's outcome: ``dismissed`` (the violation was dismissed), ``overturned`` (an action applied on its case
after it was overturned on appeal), ``actioned`` (an action, a warning or more, was applied on its case after it),
else ``pending``. A source's precision is the share of ``actioned`` among its last ``DETECTOR_MIN_DECIDED`` decided
reports; below ``DETECTOR_MIN_PRECISION`` (with at least that many decided), its critical reports stop acting first
and wait for a lead, until its precision recovers. Losing and regaining it are audit events, and the console's front
page counts the sources without it.

Each violation keeps its outcome (``Violation.outcome``), set in the transaction that decides it (a dismissal, an
action applied on its case, an appeal overturning one) under its case's lock, and each source's counts by outcome
are kept in ``SourceTally``, so the sources page reads a few rows a source and the precision window reads the
partial index of a source's decided reports. ``with_live_outcome`` is the definition they follow;
``tallies_rebuild`` (``manage.py recount_sources``) recomputes both from it.

It is checked when a report could act first (critical, under an act-first rule, from a trusted reporter): the one
moment it matters, and it keeps the ordinary report path free of the extra queries.
"""

import random
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case as When_
from django.db.models import CharField, Count, Exists, OuterRef, QuerySet, Sum, Value, When
from django.utils import timezone

from enforcement import notifications
from enforcement.actors import SYSTEM, Actor
from enforcement.audit import audit_record
from enforcement.models import EnforcementAction, Rule, Severity, Source, SourceTally, Violation

ACTIONED, DISMISSED, OVERTURNED, PENDING = "actioned", "dismissed", "overturned", "pending"
OUTCOMES = (ACTIONED, DISMISSED, OVERTURNED, PENDING)
TALLY_FIELDS = ("reports", ACTIONED, DISMISSED, OVERTURNED)


def with_live_outcome(violations: QuerySet[Violation]) -> QuerySet[Violation]:
    """Annotate each violation with its ``live_outcome``, computed from the case's actions (correlated EXISTS per
    row): the definition the stored ``Violation.outcome`` follows, read by the repair (``tallies_rebuild``) and
    the tests, never by a page."""
    applied_after = EnforcementAction.objects.filter(
        case_id=OuterRef("case_id"), applied_at__isnull=False, applied_at__gte=OuterRef("reported_at")
    )
    return violations.annotate(live_outcome=When_(
        When(status=Violation.Status.DISMISSED, then=Value(DISMISSED)),
        When(Exists(applied_after.filter(overturned=True)), then=Value(OVERTURNED)),
        When(Exists(applied_after), then=Value(ACTIONED)),
        default=Value(PENDING),
        output_field=CharField(),
    ))


# --------------------------------------------------------------------------- the stored outcome and its tallies


def tally_shard() -> int:
    """The tally shard this database connection adds to (picked at random on its first use)."""
    shard = getattr(connection, "_source_tally_shard", None)
    if shard is None:
        shard = connection._source_tally_shard = random.randrange(SourceTally.SHARDS)
    return shard


def tally_add(changes: dict[str, Counter]) -> None:
    """Add to the sources' tallies (``{source: Counter(reports=1, actioned=-1, ...)}``), in the caller's
    transaction: one upsert per call, in the order of the source names, into the shard of this database
    connection (picked at random once, so parallel workers add to different rows while one transaction always
    adds to the same row of a source). Taken after the account and case (see ``locks``)."""
    rows = []
    shard = tally_shard()
    for source in sorted(changes):
        delta = changes[source]
        if any(delta.get(field) for field in TALLY_FIELDS):
            rows.append([source, shard, *(int(delta.get(field, 0)) for field in TALLY_FIELDS)])
    if not rows:
        return
    table = connection.ops.quote_name(SourceTally._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    updates = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in TALLY_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (source, shard, {', '.join(TALLY_FIELDS)}) VALUES {values} "
            f"ON CONFLICT (source, shard) DO UPDATE SET {updates}",
            [value for row in rows for value in row],
        )


def tally_reports(sources: list[str]) -> None:
    """New reports (one name per report): counted as reports, pending until decided."""
    counts = Counter(sources)
    tally_add({name: Counter(reports=n) for name, n in counts.items()})


def _set_outcome(violations: QuerySet[Violation], outcome: str) -> None:
    """Give these violations ``outcome`` and move their counts: the caller holds their case's lock, the one
    every change of its violations' outcomes takes first, so reading then updating them is consistent."""
    rows = list(violations.exclude(outcome=outcome).values_list("pk", "source", "outcome"))
    if not rows:
        return
    Violation.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(outcome=outcome)
    changes: dict[str, Counter] = {}
    for _, source, before in rows:
        delta = changes.setdefault(source, Counter())
        if before != PENDING:
            delta[before] -= 1
        if outcome != PENDING:
            delta[outcome] += 1
    tally_add(changes)


def outcomes_dismissed(violations: list[Violation]) -> None:
    """The violations were dismissed (their case locked by the caller)."""
    _set_outcome(Violation.objects.filter(pk__in=[violation.pk for violation in violations]), DISMISSED)
    for violation in violations:
        violation.outcome = DISMISSED


def outcomes_actioned(action: EnforcementAction) -> None:
    """An action was applied on its case (locked by the caller): the case's pending reports from before it are
    actioned."""
    _set_outcome(Violation.objects.filter(case_id=action.case_id, reported_at__lte=action.applied_at,
                                          outcome=PENDING).exclude(status=Violation.Status.DISMISSED), ACTIONED)


def outcomes_overturned(action: EnforcementAction) -> None:
    """An applied action was overturned on appeal (its case locked by the caller): the reports it answered are
    overturned."""
    if action.applied_at is None:
        return
    _set_outcome(Violation.objects.filter(case_id=action.case_id, reported_at__lte=action.applied_at,
                                          outcome__in=[ACTIONED, PENDING])
                 .exclude(status=Violation.Status.DISMISSED), OVERTURNED)


def tallies_rebuild() -> dict[str, dict[str, int]]:
    """Repair: set every violation's stored outcome from its live computation, then recount every source's
    tally from the stored outcomes. Idempotent. The outcomes are corrected first, statement by statement, without
    holding up anyone; then the tally is rewritten in one short transaction during which its writers wait (a
    table lock on PostgreSQL: a grouped count of the violations), so no count is lost or doubled: a change that
    committed is in the recount, one still running adds its delta after it. Returns the tallies."""
    live = with_live_outcome(Violation.objects.all())
    for outcome in OUTCOMES:
        Violation.objects.filter(pk__in=live.filter(live_outcome=outcome).exclude(outcome=outcome)
                                 .values("pk")).update(outcome=outcome)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {SourceTally._meta.db_table} IN EXCLUSIVE MODE")
        totals: dict[str, dict[str, int]] = {}
        for source, outcome, n in (Violation.objects.order_by().values_list("source", "outcome")
                                   .annotate(n=Count("id"))):
            row = totals.setdefault(source, dict.fromkeys(TALLY_FIELDS, 0))
            row["reports"] += n
            if outcome != PENDING:
                row[outcome] += n
        SourceTally.objects.all().delete()
        SourceTally.objects.bulk_create([SourceTally(source=name, shard=0, **row) for name, row in totals.items()])
    return totals


def tallies() -> dict[str, dict[str, int]]:
    """Every source's counts (one grouped query over a few rows a source)."""
    return {row.pop("source"): row for row in SourceTally.objects.order_by().values("source").annotate(
        **{field: Sum(field) for field in TALLY_FIELDS})}


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
        return RecentPrecision(self.recent_decided, self.precision).below_floor


def source_record(name: str, *, counts: dict[str, int] | None = None,
                  recent: "RecentPrecision | None" = None) -> SourceRecord:
    """A source's track record (``counts``: its tally, ``recent``: its recent precision, when the caller has
    them already)."""
    if counts is None:
        counts = SourceTally.objects.filter(source=name).aggregate(**{f: Sum(f) for f in TALLY_FIELDS})
    recent = recent or recent_precision(name)
    return SourceRecord(
        reports=counts.get("reports") or 0, actioned=counts.get(ACTIONED) or 0,
        dismissed=counts.get(DISMISSED) or 0, overturned=counts.get(OVERTURNED) or 0,
        recent_decided=recent.recent_decided, precision=recent.precision,
    )


@dataclass(frozen=True)
class RecentPrecision:
    recent_decided: int
    precision: float | None

    @property
    def below_floor(self) -> bool:
        """Enough decided reports, too few of them actioned: the source may no longer act first."""
        return (self.recent_decided >= settings.DETECTOR_MIN_DECIDED and self.precision is not None
                and self.precision < settings.DETECTOR_MIN_PRECISION)


def recent_precision(name: str) -> RecentPrecision:
    """The actioned share of a source's last ``DETECTOR_MIN_DECIDED`` decided reports: one query on the partial
    index of its decided reports (``violation_source_decided_idx``)."""
    recent = list(
        Violation.objects.filter(source=name).exclude(outcome=PENDING).order_by("-reported_at", "-id")
        .values_list("outcome", flat=True)[: settings.DETECTOR_MIN_DECIDED]
    )
    return RecentPrecision(len(recent), round(recent.count(ACTIONED) / len(recent), 4) if recent else None)


def source_may_act_first(source_name: str) -> bool:
    """Whether this source's reports may still act first; records a change of that (audit event, front page)."""
    source = Source.objects.filter(name=source_name).first()
    if source is None:
        return True
    recent = recent_precision(source_name)  # the whole record (its tally too) only when the answer changes
    withheld = recent.below_floor
    if withheld != (source.act_first_withheld_at is not None):
        _act_first_change(source_id=source.pk, withheld=withheld, record=source_record(source_name, recent=recent))
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
        recent = recent_precision(source.name)
        if not recent.below_floor:
            _act_first_change(source_id=source.pk, withheld=False, record=source_record(source.name, recent=recent))
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
