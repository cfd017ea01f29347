"""The ladder's advice for a case: the pure ``enforcement.ladder`` fed with the strikes the database holds."""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case as Case_
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from enforcement import ladder
from enforcement.models import SEVERITY_RANK, Case, EnforcementAction, Rule, Violation
from enforcement.transitions import STRIKE_STATUSES


def strike_window_days(rule: Rule) -> int:
    """The rule's strike window, or the default one."""
    return rule.strike_window_days or settings.ENFORCEMENT["STRIKE_WINDOW_DAYS"]


def strike_actions() -> QuerySet[EnforcementAction]:
    """The actions that are strikes: applied (in force or since ended), not overturned on appeal."""
    return EnforcementAction.objects.filter(status__in=STRIKE_STATUSES, overturned=False)


def strikes_for(*, account_id: int, window_days: int, now: datetime, exclude_case_id: int | None = None) -> int:
    """Strikes: the account's cases actioned within the window, not overturned on appeal."""
    actions = strike_actions().filter(account_id=account_id, applied_at__gte=now - timedelta(days=window_days))
    if exclude_case_id is not None:
        actions = actions.exclude(case_id=exclude_case_id)
    return actions.values("case_id").distinct().count()


def strikes_since_subquery(since: datetime):
    """``strikes_for`` of a case's account since ``since``, its own case excluded, as an expression on a ``Case``
    queryset: the report path reads it with the case it locks, in the same query."""
    counted = (
        strike_actions().filter(account_id=OuterRef("account_id"), applied_at__gte=since)
        .exclude(case_id=OuterRef("pk")).order_by().values("account_id")
        .annotate(n=Count("case_id", distinct=True)).values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


class StrikeHistory:
    """Some accounts' strikes read in one query, then counted in any window without another: a batch of
    reports counts them at one moment, the policy simulation at the moment of each past violation.

    Per account, the strikes' times in order and their cases beside them: a window is two bisections, and its
    strikes are the distinct cases in between (``strikes_for``, in memory)."""

    def __init__(self, rows: Iterable[tuple[int, datetime, int]]):
        """``rows``: (account id, applied at, case id), ordered by account, then time."""
        self._times: dict[int, list[datetime]] = {}
        self._cases: dict[int, list[int]] = {}
        for account_id, applied_at, case_id in rows:
            if account_id not in self._times:
                self._times[account_id], self._cases[account_id] = [], []
            self._times[account_id].append(applied_at)
            self._cases[account_id].append(case_id)

    @classmethod
    def load(cls, *, account_ids: Iterable[int] | QuerySet, since: datetime) -> "StrikeHistory":
        """The strikes of these accounts (ids, or a query of them) applied since ``since``."""
        rows = (
            strike_actions().filter(account_id__in=account_ids, applied_at__gte=since)
            .order_by("account_id", "applied_at").values_list("account_id", "applied_at", "case_id")
        )
        return cls(rows)

    def count(self, *, account_id: int, since: datetime, until: datetime | None = None,
              exclude_case_id: int | None = None) -> int:
        """Strikes of the account applied from ``since`` (to ``until``, inclusive, when given), its case aside."""
        times = self._times.get(account_id)
        if not times:
            return 0
        end = len(times) if until is None else bisect_right(times, until)
        cases = set(self._cases[account_id][bisect_left(times, since):end])
        cases.discard(exclude_case_id)
        return len(cases)


def strikes_for_cases(*, cases: list[Case], windows: set[int], now: datetime) -> dict[tuple[int, int], int]:
    """``strikes_for`` of each case's account (its own case excluded), per window, in one query."""
    if not cases:
        return {}
    history = StrikeHistory.load(account_ids={case.account_id for case in cases},
                                 since=now - timedelta(days=max(windows)))
    return {
        (case.pk, window): history.count(
            account_id=case.account_id, since=now - timedelta(days=window), exclude_case_id=case.pk
        )
        for case in cases
        for window in windows
    }


def recommendation_for(case: Case, *, now: datetime | None = None) -> ladder.Recommendation:
    """The ladder's advice for a case: its most severe open violation, its account's strikes."""
    now = now or timezone.now()
    worst = worst_open_violation(case.pk)
    if worst is None:
        return ladder.Recommendation(kind=None, reason="no open violations")
    return recommend(worst.rule, worst.severity, case, worst.source_trusted, now)


def severity_rank_expression() -> Case_:
    """A violation's severity as its rank (``SEVERITY_RANK``), in SQL."""
    return Case_(*(When(severity=severity, then=Value(rank)) for severity, rank in SEVERITY_RANK.items()),
                 default=Value(-1), output_field=IntegerField())


def worst_open_violation(case_id: int) -> Violation | None:
    """The case's open violation the ladder advises on, picked by the database (one row, without its evidence):
    the most severe, one under a rule that allows automatic action before one that does not, then an act-first
    rule's, then the latest."""
    return (
        Violation.objects.filter(case_id=case_id, status=Violation.Status.OPEN)
        .select_related("rule")
        .only("severity", "source_trusted", "reported_at", "rule")
        .annotate(severity_rank=severity_rank_expression())
        .order_by("-severity_rank", "-rule__auto_action", "-rule__act_first", "-reported_at", "-id")
        .first()
    )


def recommend(
    rule: Rule, severity: str, case: Case, trusted: bool, now: datetime, *, strikes: int | None = None
) -> ladder.Recommendation:
    """The ladder's advice; ``strikes``: the account's strikes in the rule's window, if already read."""
    window = strike_window_days(rule)
    if strikes is None:
        strikes = strikes_for(account_id=case.account_id, window_days=window, now=now, exclude_case_id=case.pk)
    return ladder.recommend(
        rule=ladder.RulePolicy.from_rule(rule),
        severity=severity,
        strikes=strikes,
        window_days=window,
        source_trusted=trusted,
    )


def decision_basis(case: Case, *, ladder_reason: str) -> dict:
    """What a decision on the case rests on, recorded with the action: the open violations behind it, the
    version of each rule they fall under, and the ladder's reason. The customer's notice and the statement
    of reasons are built from it, so they cite what was decided on, not what came after."""
    rows = list(case.violations.filter(status=Violation.Status.OPEN).values_list("pk", "rule__code", "rule__version"))
    return {
        "violations": sorted(pk for pk, _, _ in rows),
        "rules": {code: version for _, code, version in sorted(rows, key=lambda row: row[1])},
        "ladder": ladder_reason,
    }
