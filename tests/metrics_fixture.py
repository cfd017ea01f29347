"""A known history over two days (10 and 11 November 2026, UTC), with every figure of the metrics worked out by
hand in ``EXPECTED``: tests of the summary API, the admin's charts and the roll-up use it."""

from contextlib import contextmanager
from datetime import UTC, datetime
from unittest import mock

from django.db import transaction

from enforcement.audit import audit_record
from enforcement.models import Appeal
from enforcement.services.detectors import tallies_rebuild
from tests.factories import AccountFactory, CaseFactory, EnforcementActionFactory, ViolationFactory, rule

D0, D1, D2 = "2026-11-09", "2026-11-10", "2026-11-11"
SINCE, UNTIL = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC)


def at(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


@contextmanager
def clock(when: datetime):
    """``auto_now_add`` (the audit log's times, which cannot be changed afterwards) reads this time."""
    with mock.patch("django.utils.timezone.now", return_value=when):
        yield


def _event(actor, verb: str, case, when: datetime, *, deadline: datetime | None = None):
    with clock(when), transaction.atomic():
        audit_record(actor=actor, verb=verb, target=case, case=case, account=case.account,
                     before={"review_due_at": deadline.isoformat()} if deadline else None)


def build(*, as_lead, lead, second_lead, agent) -> dict:
    def case(severity, opened, **fields):
        return CaseFactory(account=AccountFactory(), severity=severity, opened_at=opened,
                           **{"status": "actioned", **fields})

    def report(case, code, source, when):
        return ViolationFactory(account=case.account, case=case, rule=rule(code), severity=case.severity,
                                source=source, reported_at=when, observed_at=when)

    c0 = case("low", at(D0, "10:00"))
    c1 = case("critical", at(D1, "10:00"))
    c2 = case("high", at(D1, "12:00"))
    c3 = case("critical", at(D2, "08:00"), status="closed", closed_at=at(D2, "09:00"))
    c4 = case("medium", at(D2, "09:00"), status="open", review_due_at=at(D2, "20:00"))  # never reviewed: a breach
    report(c0, "spam-fraud", "det-a", at(D0, "10:00"))  # the day before: outside the period
    report(c1, "spam-fraud", "det-a", at(D1, "10:00"))
    report(c1, "spam-fraud", "det-b", at(D1, "10:05"))
    report(c2, "key-exposure", "det-a", at(D1, "12:00"))
    report(c3, "spam-fraud", "det-a", at(D2, "08:00"))
    report(c4, "secrets-in-events", "agent-x", at(D2, "09:00"))

    _event(as_lead, "case.reviewed", c1, at(D1, "10:30"), deadline=at(D1, "11:00"))  # 30 min, on time
    _event(as_lead, "case.reviewed", c3, at(D2, "08:10"), deadline=at(D2, "09:00"))  # 10 min, on time
    _event(as_lead, "case.resolved", c3, at(D2, "09:00"))

    def action(case, kind, created, **fields):
        return EnforcementActionFactory(case=case, kind=kind, created_at=created, applied_at=fields.pop(
            "applied_at", created), **fields)

    spam, both, keys = {"rules": {"spam-fraud": 1}}, {"rules": {"key-exposure": 1, "spam-fraud": 1}}, \
        {"rules": {"key-exposure": 1}}
    a1 = action(c1, "suspend", at(D1, "10:00"), act_first=True, decided_under=spam, overturned=True,
                status="reverted")  # act-first, by nobody
    # The agent's proposal is c2's first review: 5 h after its opening, past the high SLA of 4 h.
    a2 = action(c2, "suspend", at(D1, "17:00"), requested_by=agent, approved_by=lead, approved_at=at(D1, "19:00"),
                applied_at=at(D1, "19:00"), decided_under=both)
    action(c3, "warning", at(D2, "08:50"), requested_by=lead, decided_under=spam)
    action(c2, "terminate", at(D2, "10:00"), requested_by=lead, approved_by=second_lead,
           approved_at=at(D2, "14:00"), applied_at=at(D2, "14:00"), decided_under=keys)
    action(c0, "warning", at(D0, "11:00"), requested_by=lead, decided_under=spam)  # outside
    Appeal.objects.create(action=a1, case=c1, message="m", status="overturned", decided_by=second_lead,
                          decided_at=at(D2, "12:00"))
    Appeal.objects.create(action=a2, case=c2, message="m", status="upheld", decided_by=lead,
                          decided_at=at(D2, "13:00"))
    tallies_rebuild()  # rows written directly, not by the services: their outcomes and tallies, as a repair makes
    return {"cases": [c0, c1, c2, c3, c4]}


EXPECTED = {
    "days": {"first": D1, "last": D2},
    "reports": {"total": 5, "by_rule": {"key-exposure": 1, "secrets-in-events": 1, "spam-fraud": 3},
                "by_source": {"agent-x": 1, "det-a": 3, "det-b": 1}},
    "cases": {"opened": 4, "closed": 1, "opened_by_severity": {"low": 0, "medium": 1, "high": 1, "critical": 2}},
    "per_day": [
        {"day": D1, "reports": 3, "reports_by_rule": {"key-exposure": 1, "spam-fraud": 2},
         "reports_by_source": {"det-a": 2, "det-b": 1}, "cases_opened": 2, "cases_closed": 0},
        {"day": D2, "reports": 2, "reports_by_rule": {"secrets-in-events": 1, "spam-fraud": 1},
         "reports_by_source": {"agent-x": 1, "det-a": 1}, "cases_opened": 2, "cases_closed": 1},
    ],
    "review": {
        "time_to_first_review_p50_s": 1800, "time_to_first_review_p90_s": 18000, "reviewed": 3,
        "by_severity": {"low": {"reviewed": 0, "p50_s": None, "p90_s": None},
                        "medium": {"reviewed": 0, "p50_s": None, "p90_s": None},
                        "high": {"reviewed": 1, "p50_s": 18000, "p90_s": 18000},
                        "critical": {"reviewed": 2, "p50_s": 600, "p90_s": 1800}},
    },
    "approval": {"time_to_approval_p50_s": 7200, "time_to_approval_p90_s": 14400, "approved": 2,
                 "by_kind": {"suspend": {"approved": 1, "p50_s": 7200, "p90_s": 7200},
                             "terminate": {"approved": 1, "p50_s": 14400, "p90_s": 14400}}},
    "sla": {"breaches": 2, "on_time": 2, "late_reviews": 1, "overdue_unreviewed": 1,
            "by_severity": {"low": {"breaches": 0, "on_time": 0}, "medium": {"breaches": 1, "on_time": 0},
                            "high": {"breaches": 1, "on_time": 0}, "critical": {"breaches": 0, "on_time": 2}}},
    "actions": {"by_kind": {"suspend": 2, "terminate": 1, "warning": 1},
                "by_rule": {"key-exposure": 2, "spam-fraud": 3},
                "by_rule_and_kind": {"key-exposure": {"suspend": 1, "terminate": 1},
                                     "spam-fraud": {"suspend": 2, "warning": 1}}},
    "appeals": {"decided": 2, "overturned": 1, "overturn_rate": 0.5,
                "by_rule": {"key-exposure": {"decided": 1, "overturned": 0, "overturn_rate": 0.0},
                            "spam-fraud": {"decided": 2, "overturned": 1, "overturn_rate": 0.5}}},
    "staff": [
        {"staff": "agent", "cases_handled": 0, "actions_proposed": 1, "approvals": 0, "appeals_decided": 0},
        {"staff": "lead", "cases_handled": 2, "actions_proposed": 2, "approvals": 1, "appeals_decided": 1},
        {"staff": "lead2", "cases_handled": 0, "actions_proposed": 0, "approvals": 1, "appeals_decided": 1},
    ],
    # det-a's decided reports (all time): c1's (its suspension overturned), c0's, c2's and c3's (actioned);
    # det-b's is pending (c1's suspension came before it), and so is agent-x's.
    "detectors": [
        {"source": "det-a", "reports": 3, "precision": 0.75, "decided": 4, "act_first_allowed": True},
        {"source": "agent-x", "reports": 1, "precision": None, "decided": 0, "act_first_allowed": True},
        {"source": "det-b", "reports": 1, "precision": None, "decided": 0, "act_first_allowed": True},
    ],
}


def build_weeks(*, first: datetime, days: int, agent, lead, second_lead) -> None:
    """A fuller history for the screenshot: every day, reports of four rules from three sources, cases reviewed
    after varied waits, actions proposed and approved, appeals decided (deterministic, about 300 rows)."""
    from datetime import timedelta

    from enforcement.actors import Actor

    rules = ["spam-fraud", "key-exposure", "secrets-in-events", "security-abuse"]
    sources = ["abuse-detector", "fraud-model", "github-secret-scanning"]
    severities = ["low", "medium", "high", "critical"]
    kinds = ["warning", "throttle", "suspend", "suspend"]
    n = 0
    for d in range(days):
        day = first + timedelta(days=d)
        for r, code in enumerate(rules):
            for s, source in enumerate(sources):
                for k in range((d * d * 3 + d * r * 5 + r * 7 + s * s * 11 + d // 5) % (6 - s - (r == 3) * 2)):
                    n += 1
                    opened = day + timedelta(hours=8 + (n % 9), minutes=n % 60)
                    severity = severities[(r + k) % 4]
                    case = CaseFactory(account=AccountFactory(), severity=severity, opened_at=opened,
                                       status="closed" if n % 3 else "actioned",
                                       closed_at=opened + timedelta(hours=20) if n % 3 else None)
                    noisy = source == "fraud-model" and n % 4 == 1
                    ViolationFactory(account=case.account, case=case, rule=rule(code), severity=severity,
                                     source=source, external_id=f"weeks-{n}", reported_at=opened, observed_at=opened,
                                     status="dismissed" if noisy else "open")
                    if n % 5 == 4 or noisy:
                        continue  # still waiting, or dismissed
                    wait = timedelta(minutes=[12, 25, 40, 75, 150, 320][n % 6] * (1 + (3 - severities.index(severity))))
                    kind = kinds[(r + k) % 4]
                    by = [agent, lead][n % 2]
                    approved = kind == "suspend" and by == agent
                    created = opened + wait
                    _event(Actor.for_user(by), "case.reviewed", case, created,
                           deadline=opened + timedelta(hours=[72, 24, 4, 1][severities.index(severity)]))
                    applied = created + timedelta(minutes=30 + n % 90) if approved else created
                    action = EnforcementActionFactory(
                        case=case, kind=kind, created_at=created, applied_at=applied, requested_by=by,
                        approved_by=lead if approved else None, approved_at=applied if approved else None,
                        decided_under={"rules": {code: 1}})
                    if kind == "suspend" and n % 4 == 0:
                        Appeal.objects.create(action=action, case=case, message="m",
                                              status="overturned" if n % 8 == 0 else "upheld",
                                              decided_by=second_lead, decided_at=applied + timedelta(hours=30))
    tallies_rebuild()  # as for build()
