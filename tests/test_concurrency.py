"""Two staff members clicking at once, two workers delivering the same message: one result.

Real concurrency needs real row locks, so these run on PostgreSQL (CI) only (``pytest.mark.postgres``).
"""

import threading

import pytest
from django.db import connections

from accounts.models import APIKey
from enforcement import services, tasks
from enforcement.actors import Actor
from enforcement.errors import Conflict
from enforcement.models import AuditEvent, EnforcementAction
from lib import queue
from tests.factories import AccountFactory, APIKeyFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.postgres,  # row locks
]


def run_together(*calls):
    """Run the calls in threads released at the same instant; return results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # collected and asserted by the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.fixture
def pending_suspension():
    account = AccountFactory()
    for kind in ("publishable", "secret", "restricted"):
        APIKeyFactory(account=account, kind=kind)
    agent = Actor.for_user(UserFactory(username="agent", role="tns_agent"))
    case = services.violation_report(actor=agent, account=account.public_id, rule="secrets-in-events", source="t",
                                     external_id="1", summary="click farm").violation.case
    return services.action_propose(actor=agent, case_id=case.pk, kind="suspend", reason="fraud")


@pytest.mark.parametrize("attempt", range(3))
def test_two_leads_approving_at_once_apply_once(pending_suspension, attempt):
    leads = [Actor.for_user(UserFactory(username=f"lead{i}", role="tns_lead")) for i in range(2)]
    results = run_together(
        *(lambda lead=lead: services.action_approve(actor=lead, action_id=pending_suspension.pk) for lead in leads)
    )
    # One approves; the other is told who already did (409 already_decided through the API).
    approved = [r for r in results if isinstance(r, EnforcementAction)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(approved) == 1 and len(refused) == 1, results
    assert refused[0].code == "already_decided" and approved[0].approved_by_label in refused[0].message
    action = EnforcementAction.objects.get(pk=pending_suspension.pk)
    assert action.status == EnforcementAction.Status.APPLIED
    assert AuditEvent.objects.filter(verb="action.approved").count() == 1
    assert AuditEvent.objects.filter(verb="action.applied").count() == 1
    assert set(APIKey.objects.values_list("state_version", flat=True)) == {2}  # one change per key


@pytest.mark.parametrize("attempt", range(3))
def test_two_workers_applying_at_once_apply_once(pending_suspension, attempt, monkeypatch):
    from accounts import edge

    # The follow-up work (emails, the keys' publication) is the broker's, not these threads': sending a task
    # in eager mode marks "a join would block" for the whole process while it runs (Celery 5.7), not for
    # its own thread, so another thread's .get() would fail on it.
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda task, *args: None)
    monkeypatch.setattr(edge, "publish_account_on_commit", lambda account_id: None)
    lead = Actor.for_user(UserFactory(username="lead", role="tns_lead"))
    services.action_approve(actor=lead, action_id=pending_suspension.pk)
    results = run_together(*(lambda: tasks.apply_action.apply(args=(pending_suspension.pk,)).get() for _ in range(4)))
    assert results == ["applied"] * 4, results
    assert AuditEvent.objects.filter(verb="action.applied").count() == 1
    assert set(APIKey.objects.values_list("status", flat=True)) == {"suspended"}
    assert set(APIKey.objects.values_list("state_version", flat=True)) == {2}


def test_two_reports_of_one_violation_at_once_make_one(monkeypatch):
    account = AccountFactory()
    reporter = Actor.for_user(UserFactory(username="agent", role="tns_agent"))
    results = run_together(*(
        lambda: services.violation_report(actor=reporter, account=account.public_id, rule="spam-fraud",
                                          source="ids", external_id="same", summary="x")
        for _ in range(4)
    ))
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.created for r in results) == 1
    assert len({r.violation.pk for r in results}) == 1
    assert AuditEvent.objects.filter(verb="violation.reported").count() == 1
    assert AuditEvent.objects.filter(verb="case.opened").count() == 1


def test_two_reports_for_one_account_at_once_share_one_case():
    account = AccountFactory()
    reporter = Actor.for_user(UserFactory(username="agent", role="tns_agent"))
    results = run_together(*(
        lambda i=i: services.violation_report(actor=reporter, account=account.public_id, rule="spam-fraud",
                                              source="ids", external_id=f"v{i}", summary="x")
        for i in range(4)
    ))
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.violation.case_id for r in results}) == 1


def test_reports_approvals_and_applies_racing_on_one_account_never_deadlock(monkeypatch):
    """One lock order for the whole workflow (enforcement/services/locks.py): account, case, violations,
    actions, appeals, keys. Trusted critical reports (the first acts first), a second lead approving a
    termination, workers applying, an agent commenting and a batch, all at once on one account, 20 times:
    no deadlock, no error but the expected "already decided"."""
    from accounts import edge

    monkeypatch.setattr(queue, "enqueue_on_commit", lambda task, *args: None)  # the threads apply themselves
    monkeypatch.setattr(edge, "publish_account_on_commit", lambda account_id: None)
    agent = Actor.for_user(UserFactory(username="agent", role="tns_agent"))
    requester = Actor.for_user(UserFactory(username="lead", role="tns_lead"))
    approvers = [Actor.for_user(UserFactory(username=f"lead{i}", role="tns_lead")) for i in range(2)]
    token, _ = services.service_token_create(actor=requester, name="ids", scopes=["violations:write"], trusted=True)
    detector = Actor.for_token(token)
    errors = []
    for round_number in range(20):
        account = AccountFactory()
        for kind in ("publishable", "secret", "restricted"):
            APIKeyFactory(account=account, kind=kind)

        def report(n, account=account, round_number=round_number):
            return services.violation_report(
                actor=detector, account=account.public_id, rule="security-abuse", severity="critical",
                source="ids", external_id=f"r{round_number}-{n}", summary="denial of service")

        case = report(0).violation.case  # acts first: a suspension, scheduled
        suspension = case.actions.get(act_first=True)
        termination = services.action_propose(actor=requester, case_id=case.pk, kind="terminate", reason="x")
        results = run_together(
            *(lambda n=n: report(n) for n in range(1, 6)),
            *(lambda approver=approver, action_id=termination.pk: services.action_approve(actor=approver,
                                                                                          action_id=action_id)
              for approver in approvers),
            *(lambda action_id=action_id: services.action_apply(action_id=action_id)
              for action_id in (suspension.pk, suspension.pk, termination.pk, termination.pk)),
            lambda case_id=case.pk: services.case_comment(actor=agent, case_id=case_id, body="watching"),
            lambda batch=[{"account": account.public_id, "rule": "spam-fraud", "source": "ids",
                           "external_id": f"b{round_number}-{n}", "summary": "x"} for n in range(3)]:
                services.violation_report_batch(actor=detector, reports=batch),
        )
        for result in results:
            if isinstance(result, Conflict) and result.code == "already_decided":
                continue
            if isinstance(result, Exception):
                errors.append(f"round {round_number}: {type(result).__name__}: {result}")
        services.action_apply(action_id=termination.pk)  # whichever order they ran in, it ends applied
        assert EnforcementAction.objects.get(pk=termination.pk).status == "applied"
        assert set(APIKey.objects.filter(account=account).values_list("status", flat=True)) == {"revoked"}
    assert errors == []
