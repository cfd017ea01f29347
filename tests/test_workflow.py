"""The enforcement workflow at the service level: each transition, each forbidden one, and the audit trail."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Account, APIKey
from enforcement import services, tasks
from enforcement.actors import SYSTEM, Actor
from enforcement.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from enforcement.models import Appeal, AuditEvent, Case, EnforcementAction, Notification, Violation
from lib import queue
from tests.factories import AccountFactory, APIKeyFactory, UserFactory, missing_pk

pytestmark = pytest.mark.django_db
A = EnforcementAction.Status


def report(actor, account, rule="secrets-in-events", external_id="e-1", **kwargs):
    kwargs.setdefault("summary", "card numbers in events")
    return services.violation_report(
        actor=actor, account=account.public_id, rule=rule, source=f"detector-{actor.identity}",
        external_id=external_id, **kwargs
    )


def statuses(account):
    return dict(APIKey.objects.filter(account=account).values_list("kind", "status"))


def verbs(**filters):
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("verb", flat=True))


# ------------------------------------------------------------------ violations and cases


def test_report_opens_a_case_with_severity_deadline_and_audit(account, as_detector):
    before = timezone.now()
    result = report(as_detector, account, severity="high")
    case = result.violation.case
    assert result.created
    assert case.status == Case.Status.OPEN and case.severity == "high"
    assert before + timedelta(hours=4) <= case.review_due_at <= timezone.now() + timedelta(hours=4)
    assert result.recommendation.kind == "throttle"
    assert result.recommendation.reason == "high severity, 0 strikes in 90 days -> throttle"
    assert verbs(case=case) == ["case.opened", "violation.reported"]
    assert not result.violation.source_trusted


def test_report_is_idempotent_on_source_and_external_id(account, as_detector):
    first = report(as_detector, account)
    again = report(as_detector, account, summary="a retry with other words")
    assert not again.created and again.violation.pk == first.violation.pk
    assert Violation.objects.count() == 1
    assert AuditEvent.objects.filter(verb="violation.reported").count() == 1


def test_report_joins_the_open_case_and_raises_severity(account, as_detector):
    first = report(as_detector, account, severity="low")
    second = report(as_detector, account, external_id="e-2", severity="critical", rule="spam-fraud")
    case = Case.objects.get()
    assert first.violation.case_id == second.violation.case_id == case.pk
    assert case.severity == "critical"
    assert case.review_due_at <= timezone.now() + timedelta(hours=1)
    assert "case.updated" in verbs(case=case)


def test_report_after_the_case_is_closed_opens_a_new_case(account, as_detector, as_agent):
    first = report(as_detector, account)
    services.case_resolve(actor=as_agent, case_id=first.violation.case_id, resolution="fixed")
    second = report(as_detector, account, external_id="e-2")
    assert second.violation.case_id != first.violation.case_id
    assert Case.objects.filter(account=account).count() == 2


def test_report_validates_and_changes_nothing(account, as_detector):
    other_key = APIKeyFactory(account=AccountFactory())
    with pytest.raises(ValidationFailed) as exc:
        report(as_detector, account, api_key=other_key.prefix, rule="no-such-rule", severity="extreme")
    assert set(exc.value.fields) == {"api_key", "rule", "severity"}
    with pytest.raises(ValidationFailed) as exc:
        services.violation_report(actor=as_detector, account="acct_missing", rule="spam-fraud", source="",
                                  external_id="x", summary="s")
    assert "source" in exc.value.fields
    assert not Violation.objects.exists() and not Case.objects.exists() and not AuditEvent.objects.filter(
        verb__startswith="violation").exists()


def test_report_redacts_evidence_before_storing(account, keys, as_detector):
    token = keys[1].token
    result = report(
        as_detector, account, api_key=keys[1].prefix,
        summary=f"leaked {token} and card 4111 1111 1111 1111",
        evidence={"password": "hunter2", "body": f"token={token}", "ssn": "123-45-6789"},
    )
    stored = Violation.objects.filter(pk=result.violation.pk).values("summary", "evidence").get()
    text = str(stored)
    assert token not in text and "4111 1111 1111 1111" not in text and "hunter2" not in text
    assert "123-45-6789" not in text
    assert f"{token[:16]}...{token[-4:]}" in stored["summary"]


def test_only_reporters_may_report(account, auditor):
    with pytest.raises(Forbidden):
        report(Actor.for_user(auditor), account)


def test_dismissing_a_violation_lowers_case_severity(account, as_detector, as_agent):
    report(as_detector, account, severity="low")
    worst = report(as_detector, account, external_id="e-2", severity="high").violation
    services.violation_dismiss(actor=as_agent, violation_id=worst.pk, reason="false positive")
    case = Case.objects.get()
    assert case.severity == "low"
    assert services.violation_dismiss(actor=as_agent, violation_id=worst.pk, reason="again").status == "dismissed"
    assert AuditEvent.objects.filter(verb="violation.dismissed").count() == 1


def test_case_assign_comment_resolve(account, as_detector, as_agent, agent, lead):
    case = report(as_detector, account).violation.case
    services.case_assign(actor=as_agent, case_id=case.pk, assignee_id=agent.pk)
    services.case_assign(actor=as_agent, case_id=case.pk, assignee_id=agent.pk)  # no change, no event
    services.case_comment(actor=as_agent, case_id=case.pk, body="Looking into it")
    with pytest.raises(ValidationFailed):
        services.case_comment(actor=as_agent, case_id=case.pk, body="   ")
    with pytest.raises(ValidationFailed):
        services.case_assign(actor=as_agent, case_id=case.pk, assignee_id=missing_pk(get_user_model()))
    with pytest.raises(ValidationFailed):
        services.case_resolve(actor=as_agent, case_id=case.pk, resolution="  ")  # a reason is required
    services.case_resolve(actor=as_agent, case_id=case.pk, resolution="customer fixed it")
    case.refresh_from_db()
    assert case.status == Case.Status.CLOSED and case.closed_at and case.assignee == agent
    # The violation still open in it is dismissed with the resolution as its reason.
    assert verbs(case=case)[-4:] == ["case.assigned", "case.commented", "violation.dismissed", "case.resolved"]
    assert list(case.violations.values_list("status", "dismissed_reason")) == [("dismissed", "customer fixed it")]
    with pytest.raises(NotFound):
        services.case_comment(actor=as_agent, case_id=missing_pk(Case), body="x")


def test_case_with_pending_action_cannot_be_resolved(account, keys, as_detector, as_agent):
    case = report(as_detector, account).violation.case
    services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="fraud")
    with pytest.raises(InvalidTransition):
        services.case_resolve(actor=as_agent, case_id=case.pk, resolution="done")


# ------------------------------------------------------------------ proposing and approving


def test_agent_warning_is_applied_without_approval(account, keys, as_detector, as_agent, run_on_commit):
    case = report(as_detector, account).violation.case
    action = run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="warning", reason="fix it")
    action.refresh_from_db()
    case.refresh_from_db()
    assert action.status == A.APPLIED and action.remediation_deadline > timezone.now() + timedelta(days=6)
    assert case.status == Case.Status.AWAITING_CUSTOMER
    assert set(statuses(account).values()) == {"active"}  # a warning does not touch keys
    assert Notification.objects.filter(template="customer_warning", recipient=account.email).count() == 1


def test_agent_throttle_lowers_limits_of_named_keys(account, keys, as_detector, as_agent, run_on_commit):
    case = report(as_detector, account).violation.case
    run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="throttle", reason="slow down",
                  key_prefixes=[keys[1].prefix], rate_limit_per_minute=30, ip_rate_limit_per_minute=5)
    throttled = APIKey.objects.get(pk=keys[1].pk)
    assert (throttled.status, throttled.rate_limit_per_minute, throttled.ip_rate_limit_per_minute) == (
        "throttled", 30, 5)
    assert throttled.state_version == keys[1].state_version + 1
    assert APIKey.objects.get(pk=keys[0].pk).status == "active"
    assert Case.objects.get().status == Case.Status.ACTIONED


def test_agent_suspension_needs_a_lead(account, keys, as_detector, as_agent, as_lead, run_on_commit):
    case = report(as_detector, account).violation.case
    action = run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="suspend", reason="fraud")
    assert action.status == A.AWAITING_APPROVAL
    assert Case.objects.get().status == Case.Status.AWAITING_APPROVAL
    assert Notification.objects.filter(template="staff_awaiting_approval", recipient="lead@millimetric.ai").exists()
    with pytest.raises(Forbidden):
        services.action_approve(actor=as_agent, action_id=action.pk)
    run_on_commit(services.action_approve, actor=as_lead, action_id=action.pk)
    action.refresh_from_db()
    assert action.status == A.APPLIED and action.approved_by.username == "lead"
    assert set(statuses(account).values()) == {"suspended"}
    assert Account.objects.get(pk=account.pk).status == "suspended"
    # The agent's refused attempt is on record too.
    assert verbs(target_type="enforcementaction") == [
        "action.proposed", "action.approve.refused", "action.approved", "action.applied"
    ]


def test_lead_suspension_is_scheduled_at_once(account, keys, as_detector, as_lead, run_on_commit):
    case = report(as_detector, account).violation.case
    action = run_on_commit(services.action_propose, actor=as_lead, case_id=case.pk, kind="suspend", reason="fraud")
    action.refresh_from_db()
    assert action.status == A.APPLIED and action.approved_at is None


def test_termination_needs_a_second_lead(account, keys, as_detector, as_lead, as_second_lead, run_on_commit):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="terminate", reason="repeat fraud")
    assert action.status == A.AWAITING_APPROVAL
    with pytest.raises(Forbidden, match="another lead") as refused:
        services.action_approve(actor=as_lead, action_id=action.pk)
    assert refused.value.code == "not_independent"
    assert EnforcementAction.objects.get(pk=action.pk).status == A.AWAITING_APPROVAL
    run_on_commit(services.action_approve, actor=as_second_lead, action_id=action.pk)
    assert set(statuses(account).values()) == {"revoked"}
    assert Account.objects.get(pk=account.pk).status == "closed"


def test_approving_twice_changes_nothing_more(account, as_detector, as_agent, as_lead, as_second_lead):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="fraud")
    services.action_approve(actor=as_lead, action_id=action.pk)
    again = services.action_approve(actor=as_lead, action_id=action.pk)  # the same lead retrying: harmless
    assert again.approved_by.username == "lead"
    with pytest.raises(Conflict, match="already approved by lead") as late:  # another lead on a stale page
        services.action_approve(actor=as_second_lead, action_id=action.pk)
    assert late.value.code == "already_decided"
    assert AuditEvent.objects.filter(verb="action.approved").count() == 1


def test_cancel(account, as_detector, as_agent, as_lead):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="fraud")
    services.action_cancel(actor=as_agent, action_id=action.pk, reason="my mistake")  # own request
    assert EnforcementAction.objects.get(pk=action.pk).status == A.CANCELLED
    assert Case.objects.get().status == Case.Status.OPEN
    with pytest.raises(Conflict, match="already cancelled by agent"):
        services.action_approve(actor=as_lead, action_id=action.pk)
    services.action_cancel(actor=as_agent, action_id=action.pk)  # already cancelled: nothing more
    assert AuditEvent.objects.filter(verb="action.cancelled").count() == 1


def test_agent_may_not_cancel_a_leads_suspension(account, as_detector, as_agent, as_lead):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="terminate", reason="x")
    with pytest.raises(Forbidden):
        services.action_cancel(actor=as_agent, action_id=action.pk)


def test_propose_without_kind_uses_the_ladder(account, as_detector, as_agent):
    case = report(as_detector, account, severity="medium").violation.case
    action = services.action_propose(actor=as_agent, case_id=case.pk, reason="")
    assert action.kind == "warning"
    assert action.reason == "medium severity, 0 strikes in 90 days -> warning"


def test_propose_validates_input(account, as_detector, as_agent):
    case = report(as_detector, account).violation.case
    with pytest.raises(ValidationFailed) as exc:
        services.action_propose(
            actor=as_agent, case_id=case.pk, kind="warning", reason=" ", key_prefixes=["sk_live_nothere0"],
            rate_limit_per_minute=5, expires_at=timezone.now() - timedelta(1),
        )
    assert {"reason", "keys", "rate_limit_per_minute", "expires_at"} <= set(exc.value.fields)
    with pytest.raises(ValidationFailed):
        services.action_propose(actor=as_agent, case_id=case.pk, kind="ban", reason="x")
    assert not EnforcementAction.objects.exists()


def test_duplicate_pending_action_is_a_conflict(account, as_detector, as_agent):
    case = report(as_detector, account).violation.case
    services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="fraud")
    with pytest.raises(Conflict):
        services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="fraud again")


def test_roles_without_rights_are_refused(account, as_detector, auditor, outsider):
    case = report(as_detector, account).violation.case
    for user in (auditor, outsider):
        with pytest.raises(Forbidden):
            services.action_propose(actor=Actor.for_user(user), case_id=case.pk, kind="warning", reason="x")
        with pytest.raises(Forbidden):
            services.case_comment(actor=Actor.for_user(user), case_id=case.pk, body="x")
    with pytest.raises(Forbidden):
        services.action_propose(actor=as_detector, case_id=case.pk, kind="warning", reason="x")


def test_security_research_is_not_actioned_automatically(account, keys, as_trusted_detector, as_agent):
    result = report(as_trusted_detector, account, rule="security-research", severity="critical")
    assert result.recommendation.kind is None and result.act_first_action is None
    with pytest.raises(ValidationFailed, match="never actioned automatically"):
        services.action_propose(actor=as_agent, case_id=result.violation.case_id, reason="")
    assert not EnforcementAction.objects.exists()
    # A person may still decide to act.
    services.action_propose(actor=as_agent, case_id=result.violation.case_id, kind="warning", reason="scope")


# ------------------------------------------------------------------ applying, deriving key state


def test_applying_twice_changes_nothing_more(account, keys, as_detector, as_lead):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="fraud")
    services.action_apply(action_id=action.pk)
    versions = list(APIKey.objects.values_list("state_version", flat=True))
    services.action_apply(action_id=action.pk)
    assert list(APIKey.objects.values_list("state_version", flat=True)) == versions
    assert AuditEvent.objects.filter(verb="action.applied").count() == 1
    assert Notification.objects.filter(template="customer_suspend").count() == 1


def test_most_restrictive_wins_and_lifting_restores_the_rest(account, keys, as_detector, as_lead):
    case = report(as_detector, account).violation.case
    throttle = services.action_propose(actor=as_lead, case_id=case.pk, kind="throttle", reason="slow",
                                       rate_limit_per_minute=50)
    services.action_apply(action_id=throttle.pk)
    tighter = services.action_propose(actor=as_lead, case_id=case.pk, kind="throttle", reason="slower",
                                      rate_limit_per_minute=20, key_prefixes=[keys[1].prefix])
    services.action_apply(action_id=tighter.pk)
    suspend = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="stop",
                                      key_prefixes=[keys[2].prefix])
    services.action_apply(action_id=suspend.pk)
    rows = {k.pk: (k.status, k.rate_limit_per_minute) for k in APIKey.objects.all()}
    assert rows == {keys[0].pk: ("throttled", 50), keys[1].pk: ("throttled", 20), keys[2].pk: ("suspended", 50)}

    services.action_revert(actor=as_lead, action_id=suspend.pk, reason="done")
    services.action_revert(actor=as_lead, action_id=throttle.pk, reason="done")
    rows = {k.pk: (k.status, k.rate_limit_per_minute) for k in APIKey.objects.all()}
    assert rows == {keys[0].pk: ("active", 1000), keys[1].pk: ("throttled", 20), keys[2].pk: ("active", 1000)}


def test_a_key_revoked_in_its_own_right_stays_revoked(account, keys, as_detector, as_lead):
    from enforcement.services import key_revoke

    key_revoke(actor=SYSTEM, key_id=keys[0].pk, reason="exposed on GitHub")
    case = report(as_detector, account).violation.case
    suspend = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="stop")
    services.action_apply(action_id=suspend.pk)
    services.action_revert(actor=as_lead, action_id=suspend.pk, reason="lifted")
    assert statuses(account) == {"publishable": "revoked", "secret": "active", "restricted": "active"}


def test_revert_rules(account, keys, as_detector, as_agent, as_lead):
    case = report(as_detector, account).violation.case
    suspend = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="stop")
    with pytest.raises(InvalidTransition):
        services.action_revert(actor=as_lead, action_id=suspend.pk, reason="not applied yet")
    services.action_apply(action_id=suspend.pk)
    with pytest.raises(Forbidden):
        services.action_revert(actor=as_agent, action_id=suspend.pk, reason="agents cannot lift suspensions")
    services.action_revert(actor=as_lead, action_id=suspend.pk, reason="lifted")
    with pytest.raises(InvalidTransition):
        services.action_revert(actor=as_lead, action_id=suspend.pk, reason="twice")
    assert set(statuses(account).values()) == {"active"}
    assert Notification.objects.filter(template="customer_lifted").count() == 1


def test_expiry_lifts_the_action(account, keys, as_detector, as_lead):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="cool off",
                                     expires_at=timezone.now() + timedelta(hours=1))
    services.action_apply(action_id=action.pk)
    services.action_expire(action_id=action.pk)  # not yet due
    assert EnforcementAction.objects.get(pk=action.pk).status == A.APPLIED
    services.sweep(now=timezone.now() + timedelta(hours=2))
    assert EnforcementAction.objects.get(pk=action.pk).status == A.EXPIRED
    assert set(statuses(account).values()) == {"active"}
    assert AuditEvent.objects.filter(verb="action.expired", actor_type="system").count() == 1


def test_failing_apply_retries_then_fails_and_alerts_staff(account, keys, as_detector, as_lead, monkeypatch,
                                                           settings, run_on_commit, django_capture_on_commit_callbacks):
    from celery.exceptions import Retry

    from accounts import edge

    settings.ENFORCEMENT = {**settings.ENFORCEMENT, "APPLY_MAX_RETRIES": 2}
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda task, *args: None)
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="x")
    key_rows_before = list(APIKey.objects.filter(account=account).order_by("pk").values())
    action_before = EnforcementAction.objects.filter(pk=action.pk).values().get()

    # The fault comes after the keys' UPDATE: the real publication is asked for (it is, only when keys
    # changed), then the edge "fails". What the UPDATE wrote must go with the rest of the transaction.
    real_publish = edge.publish_account_on_commit
    seen_inside = []

    def publish_then_fail(account_id):
        real_publish(account_id)
        seen_inside.append(statuses(account))
        raise RuntimeError("edge store unreachable")

    monkeypatch.setattr(edge, "publish_account_on_commit", publish_then_fail)
    with django_capture_on_commit_callbacks() as on_commit, pytest.raises(RuntimeError):
        services.action_apply(action_id=action.pk)
    assert seen_inside == [{"publishable": "suspended", "secret": "suspended", "restricted": "suspended"}]
    assert list(APIKey.objects.filter(account=account).order_by("pk").values()) == key_rows_before
    assert EnforcementAction.objects.filter(pk=action.pk).values().get() == action_before
    assert on_commit == []  # the publication it asked for went with the transaction
    assert not AuditEvent.objects.filter(verb="action.applied").exists()

    # The worker's deliveries: the first two tries ask for a retry, the last one gives up.
    for retries in (0, 1):
        with pytest.raises(Retry):
            tasks.apply_action.apply(args=(action.pk,), retries=retries, throw=True)
        assert EnforcementAction.objects.get(pk=action.pk).status == A.SCHEDULED
    assert tasks.apply_action.apply(args=(action.pk,), retries=2).get() == "failed"
    action.refresh_from_db()
    assert action.status == A.FAILED
    assert action.attempts == 3 and "edge store unreachable" in action.last_error
    assert set(statuses(account).values()) == {"active"}  # nothing half-applied
    assert list(Notification.objects.filter(template="staff_action_failed").values_list("recipient", flat=True)) == [
        "oncall@millimetric.ai"
    ]
    assert AuditEvent.objects.filter(verb="action.failed").count() == 1

    monkeypatch.undo()
    run_on_commit(services.action_retry, actor=as_lead, action_id=action.pk)
    assert EnforcementAction.objects.get(pk=action.pk).status == A.APPLIED
    assert set(statuses(account).values()) == {"suspended"}


# ------------------------------------------------------------------ act-first, strikes, escalation


def test_act_first_suspends_at_once_and_flags_lead_review(account, keys, as_trusted_detector, as_lead,
                                                          run_on_commit):
    result = run_on_commit(report, as_trusted_detector, account, rule="security-abuse", summary="DoS from key")
    assert result.recommendation.act_first
    action = EnforcementAction.objects.get()
    case = Case.objects.get()
    assert action.act_first and action.kind == "suspend" and action.status == A.APPLIED
    assert action.approved_at is None  # no approval needed
    assert set(statuses(account).values()) == {"suspended"}
    assert case.needs_lead_review and case.review_due_at <= timezone.now() + timedelta(hours=1)
    assert Notification.objects.filter(template="staff_act_first_review").exists()
    assert Notification.objects.filter(template="customer_suspend", recipient=account.email).exists()
    services.action_confirm(actor=as_lead, action_id=action.pk, note="confirmed: DoS")
    assert not Case.objects.get().needs_lead_review


def test_act_first_needs_a_trusted_source(account, keys, as_detector):
    result = report(as_detector, account, rule="security-abuse")
    assert result.act_first_action is None and not EnforcementAction.objects.exists()
    assert result.recommendation.kind == "suspend" and not result.recommendation.act_first


def test_act_first_reverted_by_lead_restores_keys(account, keys, as_trusted_detector, as_lead, run_on_commit):
    run_on_commit(report, as_trusted_detector, account, rule="spam-fraud")
    action = EnforcementAction.objects.get()
    services.action_revert(actor=as_lead, action_id=action.pk, reason="false alarm")
    assert set(statuses(account).values()) == {"active"}
    assert not Case.objects.get().needs_lead_review


def _actioned_case(actor, lead_actor, account, external_id, applied_days_ago):
    case = report(actor, account, external_id=external_id).violation.case
    action = services.action_propose(actor=lead_actor, case_id=case.pk, kind="warning", reason="x")
    services.action_apply(action_id=action.pk)
    EnforcementAction.objects.filter(pk=action.pk).update(applied_at=timezone.now() - timedelta(days=applied_days_ago))
    services.case_resolve(actor=lead_actor, case_id=case.pk, resolution="done")


def test_strikes_climb_the_ladder_and_decay(account, as_detector, as_lead):
    _actioned_case(as_detector, as_lead, account, "old", applied_days_ago=120)  # outside the window
    _actioned_case(as_detector, as_lead, account, "recent", applied_days_ago=10)
    result = report(as_detector, account, external_id="now", severity="high")
    assert result.recommendation.kind == "suspend"
    assert result.recommendation.reason == "high severity, 1 strike in 90 days -> suspend"
    assert services.strikes_for(account_id=account.pk, window_days=90, now=timezone.now()) == 1
    assert services.strikes_for(account_id=account.pk, window_days=200, now=timezone.now()) == 2


def test_rule_strike_window_override(account, as_detector, as_lead):
    from enforcement.models import Rule

    Rule.objects.filter(code="secrets-in-events").update(strike_window_days=5)
    _actioned_case(as_detector, as_lead, account, "recent", applied_days_ago=10)
    result = report(as_detector, account, external_id="now", severity="high")
    assert result.recommendation.reason == "high severity, 0 strikes in 5 days -> throttle"


def test_overdue_warning_escalates_one_rung(account, keys, as_detector, as_agent, run_on_commit):
    case = report(as_detector, account).violation.case
    warning = run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="warning", reason="fix",
                            remediation_deadline=timezone.now() + timedelta(days=1))
    assert run_on_commit(services.sweep).escalated_actions == []  # not yet due
    later = timezone.now() + timedelta(days=2)
    report_ = run_on_commit(services.sweep, now=later)
    throttle = EnforcementAction.objects.get(kind="throttle")
    assert report_.escalated_actions == [throttle.pk]
    assert throttle.status == A.APPLIED and throttle.requested_by_label == "system"
    assert f"Warning #{warning.pk}" in throttle.reason
    assert set(statuses(account).values()) == {"throttled"}
    assert run_on_commit(services.sweep, now=later).escalated_actions == []  # once only
    assert AuditEvent.objects.filter(verb="action.escalated").count() == 1


def test_resolved_case_does_not_escalate(account, as_detector, as_agent):
    case = report(as_detector, account).violation.case
    services.action_propose(actor=as_agent, case_id=case.pk, kind="warning", reason="fix")
    services.action_apply(action_id=EnforcementAction.objects.get().pk)
    services.case_resolve(actor=as_agent, case_id=case.pk, resolution="fixed")
    assert services.sweep(now=timezone.now() + timedelta(days=30)).escalated_actions == []
    assert EnforcementAction.objects.count() == 1


# ------------------------------------------------------------------ appeals


@pytest.fixture
def suspended(account, keys, as_detector, as_lead):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="fraud")
    return services.action_apply(action_id=action.pk)


def test_appeal_overturned_restores_keys_and_removes_the_strike(account, suspended, as_agent, as_second_lead):
    appeal = services.appeal_submit(actor=as_agent, action_id=suspended.pk, message="It was a test harness")
    assert Case.objects.get().status == Case.Status.APPEALED
    with pytest.raises(Forbidden):
        services.appeal_decide(actor=as_agent, appeal_id=appeal.pk, outcome="overturned")
    services.appeal_decide(actor=as_second_lead, appeal_id=appeal.pk, outcome="overturned", note="agreed")
    action = EnforcementAction.objects.get(pk=suspended.pk)
    assert action.status == A.REVERTED and action.overturned
    assert set(statuses(account).values()) == {"active"}
    assert services.strikes_for(account_id=account.pk, window_days=90, now=timezone.now()) == 0
    # One email tells the customer the appeal succeeded and the keys work again (no separate "lifted" notice).
    templates = list(Notification.objects.filter(action=suspended).values_list("template", flat=True))
    assert templates.count("customer_appeal_decided") == 1 and "customer_lifted" not in templates
    with pytest.raises(InvalidTransition):
        services.appeal_decide(actor=as_second_lead, appeal_id=appeal.pk, outcome="upheld", note="changed my mind")


def test_appeal_upheld_keeps_the_action(account, suspended, as_agent, as_second_lead):
    appeal = services.appeal_submit(actor=as_agent, action_id=suspended.pk, message="please")
    services.appeal_decide(actor=as_second_lead, appeal_id=appeal.pk, outcome="upheld", note="evidence is clear")
    assert EnforcementAction.objects.get(pk=suspended.pk).status == A.APPLIED
    assert Appeal.objects.get().status == "upheld"
    assert Case.objects.get().status == Case.Status.ACTIONED
    assert set(statuses(account).values()) == {"suspended"}


def test_one_appeal_per_action(suspended, as_agent):
    services.appeal_submit(actor=as_agent, action_id=suspended.pk, message="please")
    with pytest.raises(Conflict):
        services.appeal_submit(actor=as_agent, action_id=suspended.pk, message="again")
    assert Appeal.objects.count() == 1


def test_appeal_window_and_state(account, suspended, as_agent, as_detector, as_lead, settings):
    EnforcementAction.objects.filter(pk=suspended.pk).update(applied_at=timezone.now() - timedelta(days=31))
    with pytest.raises(InvalidTransition, match="window"):
        services.appeal_submit(actor=as_agent, action_id=suspended.pk, message="late")
    pending = services.action_propose(actor=as_agent, case_id=suspended.case_id, kind="terminate", reason="x")
    with pytest.raises(InvalidTransition):
        services.appeal_submit(actor=as_agent, action_id=pending.pk, message="not applied")
    with pytest.raises(ValidationFailed):
        services.appeal_submit(actor=as_agent, action_id=suspended.pk, message="")
    with pytest.raises(Forbidden):
        services.appeal_submit(actor=as_detector, action_id=suspended.pk, message="no scope")
    assert not Appeal.objects.exists()


def test_terminate_overturned_reopens_the_account(account, keys, as_detector, as_lead, as_second_lead, as_agent):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="terminate", reason="x")
    services.action_approve(actor=as_second_lead, action_id=action.pk)
    services.action_apply(action_id=action.pk)
    assert Account.objects.get(pk=account.pk).status == "closed"
    appeal = services.appeal_submit(actor=as_agent, action_id=action.pk, message="wrong account")
    with pytest.raises(Forbidden, match="took no part"):  # the approver is not independent of the decision
        services.appeal_decide(actor=as_second_lead, appeal_id=appeal.pk, outcome="overturned")
    third_lead = Actor.for_user(UserFactory(username="lead3", role="tns_lead"))
    services.appeal_decide(actor=third_lead, appeal_id=appeal.pk, outcome="overturned")
    assert Account.objects.get(pk=account.pk).status == "active"
    assert set(statuses(account).values()) == {"active"}


# ------------------------------------------------------------------ the sweep and the key recompute


def test_sweep_requeues_scheduled_actions_whose_message_was_lost(account, keys, as_detector, as_lead, monkeypatch):
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda task, *args: None)  # the broker lost the message
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="fraud")
    assert EnforcementAction.objects.get(pk=action.pk).status == A.SCHEDULED
    assert services.sweep().requeued_actions == []  # still within the grace period
    result = services.sweep(now=timezone.now() + timedelta(minutes=5))
    assert result.requeued_actions == [action.pk]
    assert EnforcementAction.objects.get(pk=action.pk).status == A.APPLIED
    assert set(statuses(account).values()) == {"suspended"}


def test_sweep_dry_run_changes_nothing(account, keys, as_detector, as_lead, monkeypatch):
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda task, *args: None)
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="fraud")
    result = services.sweep(now=timezone.now() + timedelta(minutes=5), dry_run=True)
    assert result.requeued_actions == [action.pk]
    assert EnforcementAction.objects.get(pk=action.pk).status == A.SCHEDULED


def test_recompute_command_repairs_drifted_key_state(account, keys, as_detector, as_lead, capsys):
    from django.core.management import call_command

    case = report(as_detector, account).violation.case
    services.action_apply(
        action_id=services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="x").pk
    )
    APIKey.objects.filter(pk=keys[0].pk).update(status="active")  # drift, e.g. a manual SQL fix
    call_command("recompute_keys")
    assert "1 key(s) corrected" in capsys.readouterr().out
    assert set(statuses(account).values()) == {"suspended"}


def test_run_sweep_command(account, keys, as_detector, as_lead, monkeypatch, capsys):
    from django.core.management import call_command

    monkeypatch.setattr(queue, "enqueue_on_commit", lambda task, *args: None)
    case = report(as_detector, account).violation.case
    services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="x")
    monkeypatch.setitem(settings.ENFORCEMENT, "SWEEP_GRACE_SECONDS", 0)
    call_command("run_sweep", "--dry-run")
    assert "would re-enqueue actions: [" in capsys.readouterr().out
    assert set(statuses(account).values()) == {"active"}
    call_command("run_sweep")
    assert set(statuses(account).values()) == {"suspended"}


# ------------------------------------------------------------------ the review deadline


def test_acting_on_a_case_meets_its_review_deadline(account, keys, as_detector, as_agent):
    case = report(as_detector, account, severity="high").violation.case
    assert case.review_due_at is not None
    services.action_propose(actor=as_agent, case_id=case.pk, kind="warning", reason="fix it")
    case.refresh_from_db()
    assert case.review_due_at is None
    assert AuditEvent.objects.filter(verb="case.reviewed", case=case).count() == 1


def test_new_evidence_makes_a_reviewed_case_due_again(account, as_detector, as_agent):
    case = report(as_detector, account, severity="low").violation.case
    services.action_propose(actor=as_agent, case_id=case.pk, kind="warning", reason="fix it")
    before = timezone.now()
    report(as_detector, account, external_id="e-2", severity="medium")
    case.refresh_from_db()
    assert before + timedelta(hours=24) <= case.review_due_at <= timezone.now() + timedelta(hours=24)
    assert "case.review_due" in verbs(case=case)


def test_a_suspension_awaiting_approval_counts_as_reviewed_and_approval_keeps_it(
    account, as_detector, as_agent, as_lead
):
    case = report(as_detector, account).violation.case
    action = services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="fraud")
    services.action_approve(actor=as_lead, action_id=action.pk)
    assert Case.objects.get().review_due_at is None


def test_act_first_stays_due_until_a_lead_reviews(account, keys, as_trusted_detector, as_lead, as_second_lead,
                                                  run_on_commit):
    run_on_commit(report, as_trusted_detector, account, rule="security-abuse")
    case = Case.objects.get()
    assert case.needs_lead_review and case.review_due_at is not None
    # An agent's or a lead's other action does not stand in for the act-first review.
    services.action_propose(actor=as_lead, case_id=case.pk, kind="terminate", reason="repeat")
    assert Case.objects.get().review_due_at is not None
    services.action_confirm(actor=as_lead, action_id=EnforcementAction.objects.get(act_first=True).pk)
    case.refresh_from_db()
    assert not case.needs_lead_review
    assert case.review_due_at is not None  # the termination still waits for a second lead
    services.action_approve(actor=as_second_lead, action_id=EnforcementAction.objects.get(kind="terminate").pk)
    assert Case.objects.get().review_due_at is None


def test_escalation_by_the_system_is_not_a_review(account, keys, as_detector, as_agent, run_on_commit):
    case = report(as_detector, account).violation.case
    run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="warning", reason="fix",
                  remediation_deadline=timezone.now() + timedelta(hours=1))
    Case.objects.filter(pk=case.pk).update(review_due_at=timezone.now() + timedelta(hours=5))
    run_on_commit(services.sweep, now=timezone.now() + timedelta(hours=2))
    assert EnforcementAction.objects.filter(kind="throttle").exists()
    assert Case.objects.get().review_due_at is not None


def test_the_queue_puts_cases_awaiting_review_first(as_detector, as_agent):
    from enforcement.selectors import CASE_QUEUE_ORDERING

    reviewed = report(as_detector, AccountFactory(), external_id="a", severity="critical").violation.case
    services.action_propose(actor=as_agent, case_id=reviewed.pk, kind="warning", reason="x")
    waiting = report(as_detector, AccountFactory(), external_id="b", severity="low").violation.case
    queue_order = Case.objects.open().order_by(*CASE_QUEUE_ORDERING)  # the admin's queue orders by this
    assert list(queue_order.values_list("pk", flat=True)) == [waiting.pk, reviewed.pk]


def test_act_first_belongs_to_leads_and_trusted_tokens_an_agents_report_waits_for_a_lead(as_agent, as_lead,
                                                                                          run_on_commit):
    by_agent, by_lead = AccountFactory(), AccountFactory()
    for account in (by_agent, by_lead):
        APIKeyFactory(account=account)
    result = run_on_commit(report, as_agent, by_agent, rule="security-abuse")
    assert result.act_first_action is None and not result.violation.source_trusted
    [proposal] = EnforcementAction.objects.filter(account=by_agent)
    assert (proposal.kind, proposal.status) == ("suspend", A.AWAITING_APPROVAL)
    assert set(statuses(by_agent).values()) == {"active"}
    result = run_on_commit(report, as_lead, by_lead, rule="security-abuse", external_id="e-2")
    assert result.act_first_action is not None and result.violation.source_trusted
    assert set(statuses(by_lead).values()) == {"suspended"}
