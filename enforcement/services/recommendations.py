"""The ladder's advice for a case: the pure ``enforcement.ladder`` fed with the strikes the database holds."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from enforcement import ladder
from enforcement.models import SEVERITY_RANK, Case, EnforcementAction, Rule, Violation
from enforcement.transitions import STRIKE_STATUSES


def strikes_for(*, account_id: int, window_days: int, now: datetime, exclude_case_id: int | None = None) -> int:
    """Strikes: the account's cases actioned within the window, not overturned on appeal."""
    actions = EnforcementAction.objects.filter(
        account_id=account_id,
        status__in=STRIKE_STATUSES,
        overturned=False,
        applied_at__gte=now - timedelta(days=window_days),
    )
    if exclude_case_id is not None:
        actions = actions.exclude(case_id=exclude_case_id)
    return actions.values("case_id").distinct().count()


def strikes_for_cases(*, cases: list[Case], windows: set[int], now: datetime) -> dict[tuple[int, int], int]:
    """``strikes_for`` of each case's account (its own case excluded), per window, in one query."""
    if not cases:
        return {}
    rows = EnforcementAction.objects.filter(
        account_id__in={case.account_id for case in cases},
        status__in=STRIKE_STATUSES,
        overturned=False,
        applied_at__gte=now - timedelta(days=max(windows)),
    ).values_list("account_id", "case_id", "applied_at")
    rows = list(rows)
    return {
        (case.pk, window): len({
            case_id for account_id, case_id, applied_at in rows
            if account_id == case.account_id and case_id != case.pk and applied_at >= now - timedelta(days=window)
        })
        for case in cases
        for window in windows
    }


def recommendation_for(case: Case, *, now: datetime | None = None) -> ladder.Recommendation:
    """The ladder's advice for a case: its most severe open violation, its account's strikes."""
    now = now or timezone.now()
    open_violations = (
        case.violations.filter(status=Violation.Status.OPEN)
        .select_related("rule")
        .defer("evidence", "summary")
        .order_by("-rule__act_first", "-reported_at")
    )
    worst = max(open_violations, key=lambda v: (SEVERITY_RANK[v.severity], v.rule.auto_action), default=None)
    if worst is None:
        return ladder.Recommendation(kind=None, reason="no open violations")
    return recommend(worst.rule, worst.severity, case, worst.source_trusted, now)


def recommend(rule: Rule, severity: str, case: Case, trusted: bool, now: datetime) -> ladder.Recommendation:
    window = rule.strike_window_days or settings.ENFORCEMENT["STRIKE_WINDOW_DAYS"]
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
