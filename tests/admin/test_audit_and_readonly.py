"""The audit log is read-only for everyone and exports as CSV; workflow rows are never edited here."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from enforcement import services
from enforcement.models import AuditEvent, Case, EnforcementAction, Violation
from tests.admin.conftest import report

# The export needs a date range: this week, as the list's "By created at" filter links it.
WEEK = {"created_at__gte": str(timezone.now() - timedelta(days=6)),
        "created_at__lt": str(timezone.now() + timedelta(days=1))}
WORKFLOW_MODELS = ["case", "violation", "enforcementaction", "appeal", "notification", "auditevent"]


@pytest.fixture
def worked_case(high_case, as_lead, as_agent):
    action = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="throttle", reason="r")
    services.action_apply(action_id=action.pk)
    services.appeal_submit(actor=as_agent, action_id=action.pk, message="please")
    return high_case


@pytest.mark.parametrize("model", WORKFLOW_MODELS)
def test_no_one_adds_changes_or_deletes_workflow_rows_in_the_admin(superuser_client, worked_case, model):
    from django.apps import apps

    Model = apps.get_model("enforcement", model)
    obj = Model.objects.filter(case=worked_case).first() if model != "case" else worked_case
    before = Model.objects.count()
    assert superuser_client.get(f"/admin/enforcement/{model}/add/").status_code == 403
    assert superuser_client.post(f"/admin/enforcement/{model}/add/", {}).status_code == 403
    assert superuser_client.post(f"/admin/enforcement/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = superuser_client.get(f"/admin/enforcement/{model}/")
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.content.decode()
    assert Model.objects.count() == before


def test_the_audit_log_is_read_only_even_for_superusers(superuser_client, worked_case):
    event = AuditEvent.objects.filter(case=worked_case).first()
    response = superuser_client.get(f"/admin/enforcement/auditevent/{event.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html and "deletelink" not in html
    response = superuser_client.post(f"/admin/enforcement/auditevent/{event.pk}/change/", {"verb": "forged"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.verb != "forged"


def test_audit_log_filters_and_search(auditor_client, worked_case):
    response = auditor_client.get("/admin/enforcement/auditevent/", {"family": "appeal"})
    assert {e.verb for e in response.context["cl"].result_list} == {"appeal.submitted"}
    response = auditor_client.get("/admin/enforcement/auditevent/", {"q": f"case:{worked_case.pk}"})
    assert {e.target_type for e in response.context["cl"].result_list} == {"case"}
    response = auditor_client.get("/admin/enforcement/auditevent/", {"actor_type__exact": "system"})
    assert {e.actor_type for e in response.context["cl"].result_list} == {"system"}
    response = auditor_client.get("/admin/enforcement/auditevent/", {"q": "action."})
    assert {e.verb.split(".")[0] for e in response.context["cl"].result_list} == {"action"}
    assert 'id="export-csv"' in response.content.decode()


def test_audit_csv_export_follows_the_filters(auditor_client, worked_case):
    response = auditor_client.get("/admin/enforcement/auditevent/export/", {"family": "action", **WEEK})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = AuditEvent.objects.filter(verb__startswith="action.")
    assert {int(row["id"]) for row in rows} == set(expected.values_list("pk", flat=True))
    assert {row["verb"] for row in rows} == {"action.proposed", "action.applied"}
    assert all(row["case"] == str(worked_case.pk) for row in rows)
    assert rows[0]["account"] == worked_case.account.public_id

    everything = auditor_client.get("/admin/enforcement/auditevent/export/", WEEK)
    assert len(list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))) == (
        AuditEvent.objects.count() + 1
    )


def test_outsider_cannot_read_or_export_the_audit_log(outsider_client, worked_case):
    assert outsider_client.get("/admin/enforcement/auditevent/").status_code == 403
    assert outsider_client.get("/admin/enforcement/auditevent/export/", WEEK).status_code == 403


def test_detail_pages_of_actions_and_violations_lead_to_the_case(agent_client, worked_case):
    action = EnforcementAction.objects.get(case=worked_case)
    response = agent_client.get(f"/admin/enforcement/enforcementaction/{action.pk}/change/")
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/enforcement/case/{worked_case.pk}/change/#action-{action.pk}")
    violation = Violation.objects.get(case=worked_case)
    response = agent_client.get(f"/admin/enforcement/violation/{violation.pk}/change/")
    assert response["Location"].endswith(f"#violation-{violation.pk}")


def test_lists_of_actions_violations_notifications_and_appeals(agent_client, worked_case, make_account, as_detector):
    report(as_detector, make_account(), rule="impersonation")
    for model, expected in [("enforcementaction", 1), ("violation", 2), ("appeal", 1)]:
        response = agent_client.get(f"/admin/enforcement/{model}/")
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == expected, model
    response = agent_client.get("/admin/enforcement/violation/", {"q": worked_case.account.public_id})
    assert [v.case_id for v in response.context["cl"].result_list] == [worked_case.pk]
    response = agent_client.get("/admin/enforcement/notification/", {"status__exact": "sent"})
    assert response.status_code == 200
    assert Case.objects.count() == 2


def test_the_csv_export_neutralises_formulas(auditor_client, as_agent, make_account, as_detector):
    """OWASP's CSV injection rule: a cell a spreadsheet would run as a formula starts with a quote."""
    case = report(as_detector, make_account()).violation.case
    services.case_resolve(actor=as_agent, case_id=case.pk, resolution='=HYPERLINK("http://evil.example","x")')
    response = auditor_client.get("/admin/enforcement/auditevent/export/", {"q": f"case:{case.pk}", **WEEK})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    notes = [row["note"] for row in rows if row["verb"] == "case.resolved"]
    assert notes == ['\'=HYPERLINK("http://evil.example","x")']
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
