"""Policy simulation: what a proposed ladder would have recommended for a rule's recent decisions. Reads only.

A decision is a violation of the rule reported in the last ``days``, dismissed since or not (closing a case
dismisses what is still open in it). Each is replayed through ``ladder.recommend`` twice, under the
rule as it stands and under the proposal, with what the ladder saw when it was reported: its severity, the
source's trust, and the strikes its account had then (actioned cases in the strike window before it, its own
case aside, as ``strikes_for`` counts them). Beside the two, what was done: the strongest action decided on it
that was not cancelled (see ``_WhatWasDone``).

The queries do not grow with the number of decisions: the violations (over the ``(rule, reported_at)`` index),
the strike history of their accounts, the actions of their cases, and the accounts of the few examples. The rest
is bisection in memory, and the ladder is asked once per distinct (severity, strikes, trust).
"""

import copy
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import Account
from enforcement import ladder
from enforcement.errors import NotFound, ValidationFailed
from enforcement.models import EnforcementAction, Rule, Violation
from enforcement.services.recommendations import StrikeHistory, strike_window_days

POLICY_FIELDS = ("ladder_overrides", "act_first", "auto_action", "strike_window_days")
SIMULATION_DEFAULT_DAYS = 90
SIMULATION_MAX_DAYS = 365
MAX_STRIKE_WINDOW_DAYS = 3650  # ten years; far beyond any policy, and far from datetime's limits
EXAMPLES = 10


@dataclass(frozen=True)
class Done:
    """What staff did about a decision: the strongest action decided on it."""

    action: int
    kind: str
    status: str


@dataclass(frozen=True)
class Example:
    violation: int
    case: int
    account: str
    reported_at: datetime
    severity: str
    strikes: int  # under the proposal's strike window
    before: str
    after: str
    reason: str  # the proposal's
    current_reason: str
    done: Done | None


@dataclass(frozen=True)
class Simulation:
    rule: str
    days: int
    since: datetime
    decisions: int
    changed: int
    changes: list[tuple[str, str, int]]  # (before, after, decisions), the most frequent first
    accounts_affected: int
    actioned: int  # decisions whose case was actioned after them
    done_as_current: int  # ... with the kind the current policy recommends
    done_as_proposed: int  # ... with the kind the proposal recommends
    examples: list[Example] = field(default_factory=list)

    @property
    def by_change(self) -> dict[str, int]:
        return {f"{before}->{after}": count for before, after, count in self.changes}


def label(recommendation: ladder.Recommendation) -> str:
    """A recommendation in a word or two: its rung, and whether it acts first; "none" when a person decides."""
    if recommendation.kind is None:
        return "none"
    return f"{recommendation.kind} (act first)" if recommendation.act_first else recommendation.kind


class _Policy:
    """One side of the comparison: a rule's ladder and strike window. ``ladder.recommend`` is pure, so each
    distinct question is asked once."""

    def __init__(self, rule: Rule):
        self.rule = ladder.RulePolicy.from_rule(rule)
        self.window_days = strike_window_days(rule)
        self.window = timedelta(days=self.window_days)
        self._answers: dict[tuple[str, int, bool], tuple[ladder.Recommendation, str]] = {}

    def recommend(self, severity: str, strikes: int, trusted: bool) -> tuple[ladder.Recommendation, str]:
        key = (severity, strikes, trusted)
        answer = self._answers.get(key)
        if answer is None:
            recommendation = ladder.recommend(rule=self.rule, severity=severity, strikes=strikes,
                                              window_days=self.window_days, source_trusted=trusted)
            answer = self._answers[key] = (recommendation, label(recommendation))
        return answer


class _WhatWasDone:
    """The strongest action taken about each decision. An action names the violations it was decided on
    (``decided_under``), and counts for those; one that names none (recorded before actions did) counts for the
    violations of its case reported before it was taken, found by bisection."""

    def __init__(self, rows):
        """``rows``: (case id, created at, kind, action id, status, violation ids), ordered by case, then time."""
        self._named: dict[int, tuple[int, Done]] = {}  # violation id -> (rank, the strongest action naming it)
        unnamed: dict[int, list[tuple[datetime, int, Done]]] = defaultdict(list)
        for case_id, created_at, kind, action_id, status, violation_ids in rows:
            rank, done = ladder.RUNGS.index(kind), Done(action_id, kind, status)
            if not violation_ids:
                unnamed[case_id].append((created_at, rank, done))
            for violation_id in violation_ids or ():
                if violation_id not in self._named or rank > self._named[violation_id][0]:
                    self._named[violation_id] = (rank, done)
        self._times: dict[int, list[datetime]] = {}
        self._strongest_from: dict[int, list[tuple[int, Done]]] = {}  # per case, at i: the strongest of i and after
        for case_id, actions in unnamed.items():
            self._times[case_id] = [created_at for created_at, _, _ in actions]
            strongest, best = [], None
            for _, rank, done in reversed(actions):
                if best is None or rank >= best[0]:  # of equal rungs, the first taken
                    best = (rank, done)
                strongest.append(best)
            self._strongest_from[case_id] = strongest[::-1]

    def about(self, violation_id: int, case_id: int, reported_at: datetime) -> Done | None:
        candidates = [self._named.get(violation_id)]
        times = self._times.get(case_id)
        if times and (start := bisect_left(times, reported_at)) < len(times):
            candidates.append(self._strongest_from[case_id][start])
        best = max((candidate for candidate in candidates if candidate), key=lambda c: c[0], default=None)
        return best[1] if best else None


def check_simulate(*, changes: dict, days: int) -> dict[str, list[str]]:
    """Problems with a proposed policy and a period to replay, by field; empty when there are none."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"not policy fields: {sorted(unknown)}")
    problems: dict[str, list[str]] = {}
    if not 1 <= days <= SIMULATION_MAX_DAYS:
        problems["days"] = [f"Must be between 1 and {SIMULATION_MAX_DAYS}."]
    if "ladder_overrides" in changes:
        overrides = changes["ladder_overrides"]
        if not isinstance(overrides, dict):
            problems["ladder_overrides"] = ['Must be a JSON object such as {"high": "suspend"}.']
        elif found := ladder.validate_overrides(overrides):
            problems["ladder_overrides"] = found
    window = changes.get("strike_window_days")
    if window is not None and not 0 <= window <= MAX_STRIKE_WINDOW_DAYS:  # 0, as empty, is the default window
        problems["strike_window_days"] = [f"Must be between 1 and {MAX_STRIKE_WINDOW_DAYS}, or empty for the default."]
    return problems


def policy_simulate(*, rule_code: str, changes: dict, days: int = SIMULATION_DEFAULT_DAYS,
                    now: datetime | None = None) -> Simulation:
    """Replay the rule's decisions of the last ``days`` under the rule changed by ``changes`` (any of
    ``POLICY_FIELDS``; ``strike_window_days`` None is the default window). Writes nothing."""
    problems = check_simulate(changes=changes, days=days)
    if problems:
        raise ValidationFailed("The proposed policy is not valid.", fields=problems)
    rule = Rule.objects.filter(code=rule_code).first()
    if rule is None:
        raise NotFound(f"No rule {rule_code!r}.")
    proposed_rule = copy.copy(rule)
    for name, value in changes.items():
        setattr(proposed_rule, name, value)
    current, proposed = _Policy(rule), _Policy(proposed_rule)

    now = now or timezone.now()
    since = now - timedelta(days=days)
    violations = Violation.objects.filter(rule=rule, reported_at__gte=since, reported_at__lte=now)
    rows = violations.order_by("-reported_at", "-pk").values_list(
        "pk", "account_id", "case_id", "severity", "source_trusted", "reported_at"
    )
    strikes = StrikeHistory.load(account_ids=violations.values("account_id"),
                                 since=since - max(current.window, proposed.window))
    what_was_done = _WhatWasDone(
        EnforcementAction.objects.filter(case_id__in=violations.values("case_id"))
        .exclude(status=EnforcementAction.Status.CANCELLED)
        .order_by("case_id", "created_at", "pk")
        .values_list("case_id", "created_at", "kind", "pk", "status", "decided_under__violations")
    )

    decisions = actioned = done_as_current = done_as_proposed = 0
    changes_count: Counter[tuple[str, str]] = Counter()
    accounts_affected: set[int] = set()
    candidates: dict[tuple[str, str], list[tuple]] = defaultdict(list)  # the newest changed decisions, per change
    same_window = current.window == proposed.window
    for pk, account_id, case_id, severity, trusted, reported_at in rows:
        decisions += 1
        strikes_then = strikes.count(account_id=account_id, since=reported_at - current.window, until=reported_at,
                                     exclude_case_id=case_id)
        strikes_proposed = strikes_then if same_window else strikes.count(
            account_id=account_id, since=reported_at - proposed.window, until=reported_at, exclude_case_id=case_id
        )
        before, before_label = current.recommend(severity, strikes_then, trusted)
        after, after_label = proposed.recommend(severity, strikes_proposed, trusted)
        done = what_was_done.about(pk, case_id, reported_at)
        if done is not None:
            actioned += 1
            done_as_current += done.kind == before.kind
            done_as_proposed += done.kind == after.kind
        if before_label != after_label:
            change = (before_label, after_label)
            changes_count[change] += 1
            accounts_affected.add(account_id)
            if len(candidates[change]) < EXAMPLES:
                candidates[change].append((pk, account_id, case_id, severity, reported_at, strikes_proposed,
                                           before, after, done))

    frequent = changes_count.most_common()
    return Simulation(
        rule=rule.code, days=days, since=since, decisions=decisions, changed=sum(changes_count.values()),
        changes=[(before, after, count) for (before, after), count in frequent],
        accounts_affected=len(accounts_affected), actioned=actioned, done_as_current=done_as_current,
        done_as_proposed=done_as_proposed, examples=_examples(candidates, [change for change, _ in frequent]),
    )


def _examples(candidates: dict[tuple[str, str], list[tuple]], order: list[tuple[str, str]]) -> list[Example]:
    """Up to ``EXAMPLES`` changed decisions, the newest of each kind of change in turn, so every kind is shown."""
    picked = []
    for depth in range(EXAMPLES):
        for change in order:
            if depth < len(candidates[change]) and len(picked) < EXAMPLES:
                picked.append(candidates[change][depth])
    public_ids = dict(Account.objects.filter(pk__in={row[1] for row in picked}).values_list("pk", "public_id"))
    return [
        Example(violation=pk, case=case_id, account=public_ids[account_id], reported_at=reported_at,
                severity=severity, strikes=strikes, before=label(before), after=label(after), reason=after.reason,
                current_reason=before.reason, done=done)
        for pk, account_id, case_id, severity, reported_at, strikes, before, after, done in picked
    ]
