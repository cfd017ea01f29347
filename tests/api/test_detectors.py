"""Detectors earn act-first: a noisy trusted detector loses it (its critical reports wait for a lead), staff see it
on the front page and in the audit log, it reads the outcome of its own reports, and it regains act-first once
its precision recovers."""

import itertools

import pytest
from django.db import transaction

from enforcement import services
from enforcement.admin.site import team_day
from enforcement.models import AuditEvent, EnforcementAction, Notification, Source
from enforcement.notifications import sample_context
from tests.api.helpers import assert_error
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _small_floor(settings):
    settings.DETECTOR_MIN_DECIDED = 4
    settings.DETECTOR_MIN_PRECISION = 0.75


def noisy_report(actor, *, severity="medium", rule="spam-fraud"):
    return services.violation_report(
        actor=actor, account=AccountFactory(), rule=rule, severity=severity, source="noisy",
        external_id=f"noisy-{next(_ids)}", summary="Seen by the noisy detector.",
    ).violation


def test_a_noisy_trusted_detector_loses_act_first_and_regains_it(
    make_client, as_trusted_detector, trusted_detector, as_lead, as_second_lead, lead, run_on_commit
):
    def action(violation):
        return run_on_commit(services.action_propose, actor=as_lead, case_id=violation.case_id, kind="throttle",
                             reason="confirmed", rate_limit_per_minute=10)

    good, dismissed, overturned, waiting = [noisy_report(as_trusted_detector) for _ in range(4)]
    action(good)
    services.violation_dismiss(actor=as_lead, violation_id=dismissed.pk, reason="false positive")
    appeal = services.appeal_submit(actor=as_lead, action_id=action(overturned).pk, message="not us")
    run_on_commit(services.appeal_decide, actor=as_second_lead, appeal_id=appeal.pk, outcome="overturned",
                  note="the detector was wrong")
    action(waiting)
    # 4 decided: 2 actioned, 1 dismissed, 1 overturned -> precision 0.5, below 0.75.

    critical = run_on_commit(noisy_report, as_trusted_detector, severity="critical", rule="security-abuse")
    assert not critical.source_trusted
    assert not EnforcementAction.objects.filter(case=critical.case_id).exists()  # waits for a lead
    assert critical.case.review_due_at is not None
    withheld = AuditEvent.objects.get(verb="source.act_first_withheld")
    assert withheld.after == {"source": "noisy", "precision": 0.5, "decided": 4, "floor": 0.75}
    assert Source.objects.get(name="noisy").act_first_withheld_at is not None
    counters = {c["label"]: c["count"] for c in team_day(lead)}
    assert counters["Detectors without act-first"] == 1

    client = make_client("cases:read")
    [row] = [r for r in client.get("/api/v1/sources/").json() if r["source"] == "noisy"]
    assert row == {"source": "noisy", "owner": f"token:{trusted_detector.name}", "reports": 5, "actioned": 2,
                   "dismissed": 1, "overturned": 1, "precision": 0.5, "act_first_allowed": False}

    # The detector reads what became of its reports.
    detector = make_client("cases:read", "violations:write")
    outcomes = {v["id"]: v["outcome"] for v in detector.get("/api/v1/violations/?source=noisy").json()["results"]}
    assert outcomes == {good.pk: "actioned", dismissed.pk: "dismissed", overturned.pk: "overturned",
                        waiting.pk: "actioned", critical.pk: "pending"}

    # Its next reports hold up: the last 4 decided are all actioned, and act-first comes back.
    for _ in range(3):
        action(noisy_report(as_trusted_detector))
    run_on_commit(services.action_propose, actor=as_lead, case_id=critical.case_id, kind="suspend", reason="ok")
    again = run_on_commit(noisy_report, as_trusted_detector, severity="critical", rule="security-abuse")
    assert again.source_trusted
    act_first = EnforcementAction.objects.get(case=again.case_id)
    assert act_first.act_first and act_first.status == "applied"
    assert AuditEvent.objects.filter(verb="source.act_first_restored").count() == 1
    assert Source.objects.get(name="noisy").act_first_withheld_at is None
    assert {c["label"]: c["count"] for c in team_day(lead)}["Detectors without act-first"] == 0


def test_a_trusted_detector_with_too_few_decided_reports_keeps_act_first(as_trusted_detector, run_on_commit):
    for _ in range(3):  # 3 pending reports: nothing decided yet, nothing to hold against it
        noisy_report(as_trusted_detector)
    critical = run_on_commit(noisy_report, as_trusted_detector, severity="critical", rule="security-abuse")
    assert critical.source_trusted
    assert EnforcementAction.objects.get(case=critical.case_id).act_first


def test_sources_need_cases_read(make_client):
    assert_error(make_client("audit:read").get("/api/v1/sources/"), 403, "forbidden")


def _make_noisy(as_trusted_detector, as_lead, run_on_commit):
    """4 decided reports of the source "noisy": 1 actioned, 3 dismissed (precision 0.25, under 0.75)."""
    reports = [noisy_report(as_trusted_detector) for _ in range(4)]
    run_on_commit(services.action_propose, actor=as_lead, case_id=reports[0].case_id, kind="warning", reason="ok")
    for violation in reports[1:]:
        services.violation_dismiss(actor=as_lead, violation_id=violation.pk, reason="false positive")
    return reports


def test_staff_are_emailed_once_when_a_detector_loses_act_first_and_once_when_it_regains_it(
    as_trusted_detector, trusted_detector, as_lead, run_on_commit, settings, mailoutbox
):
    settings.STAFF_ALERT_EMAILS = ["oncall@millimetric.ai"]
    _make_noisy(as_trusted_detector, as_lead, run_on_commit)
    for _ in range(2):  # the second critical report finds it withheld already: no second alert
        run_on_commit(noisy_report, as_trusted_detector, severity="critical", rule="security-abuse")
    assert services.detectors_recheck() == []  # still below the floor: nothing changes, nothing is sent
    [alert] = Notification.objects.filter(template="staff_detector_act_first")
    withheld = AuditEvent.objects.get(verb="source.act_first_withheld")
    assert alert.event_key == f"source:{withheld.target_id}:act-first:{withheld.pk}"
    assert alert.recipient == "oncall@millimetric.ai" and alert.status == "sent"
    assert set(alert.context) == set(sample_context("staff_detector_act_first"))
    assert alert.context | {"changed_at": None} == {
        "source": "noisy", "source_id": int(withheld.target_id), "withheld": True,
        "owner": f"service token {trusted_detector.name}", "precision": 0.25, "decided": 4, "actioned": 1,
        "dismissed": 3, "overturned": 0, "threshold": 0.75, "min_decided": 4, "changed_at": None,
    }
    def alerts():
        return [m for m in mailoutbox if m.subject.startswith("[T&S] Detector ")]

    [mail] = alerts()
    assert mail.subject == "[T&S] Detector noisy lost act-first: precision 25% under 75%"
    assert "its precision is 25% over its last 4 decided reports, under the threshold of 75%" in mail.body
    assert f"/admin/enforcement/source/{withheld.target_id}/change/" in mail.body

    # Its next four reports are actioned: the sweep's recheck gives act-first back and says so, once.
    for _ in range(4):
        violation = noisy_report(as_trusted_detector)
        run_on_commit(services.action_propose, actor=as_lead, case_id=violation.case_id, kind="warning", reason="ok")
    assert run_on_commit(services.sweep).restored_sources == ["noisy"]  # the sweep rechecks it
    assert run_on_commit(services.sweep).restored_sources == []
    assert Source.objects.get(name="noisy").act_first_withheld_at is None
    restored = Notification.objects.get(template="staff_detector_act_first", context__withheld=False)
    assert restored.context["precision"] == 1.0
    assert AuditEvent.objects.filter(verb="source.act_first_restored").count() == 1
    assert [m.subject for m in alerts()][1:] == ["[T&S] Detector noisy may act first again: precision 100%"]


def test_the_alert_and_the_audit_event_are_written_together_or_not_at_all(as_trusted_detector, as_lead,
                                                                         run_on_commit):
    _make_noisy(as_trusted_detector, as_lead, run_on_commit)
    source = Source.objects.get(name="noisy")
    with pytest.raises(RuntimeError), transaction.atomic():
        assert not services.detectors.source_may_act_first("noisy")
        assert Notification.objects.filter(template="staff_detector_act_first").count() == 1
        raise RuntimeError("the report's transaction fails after the change was recorded")
    assert not AuditEvent.objects.filter(verb="source.act_first_withheld").exists()
    assert not Notification.objects.filter(template="staff_detector_act_first").exists()
    source.refresh_from_db()
    assert source.act_first_withheld_at is None
