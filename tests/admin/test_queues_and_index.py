"""The approvals and appeals queues, the front page's counts of the team's day, and the console's site."""

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from enforcement import services
from enforcement.admin.site import ConsoleAdminSite
from enforcement.models import ActionStatus, Appeal, Case, EnforcementAction
from tests.admin.conftest import messages_of, report
from tests.factories import AccountFactory

APPROVALS = "/admin/enforcement/enforcementaction/approvals/"
APPEALS = "/admin/enforcement/appeal/queue/"


def _suspension_request(make_account, as_detector, as_agent):
    case = report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
    return services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="sustained abuse")


def test_approvals_queue_by_deadline_and_approve_from_it(lead_client, agent_client, make_account, as_detector,
                                                         as_agent, django_capture_on_commit_callbacks):
    first = _suspension_request(make_account, as_detector, as_agent)
    second = _suspension_request(make_account, as_detector, as_agent)
    assert first.approval_due_at is not None  # high severity: a lead decides within the case's SLA
    EnforcementAction.objects.filter(pk=second.pk).update(approval_due_at=timezone.now() + timedelta(minutes=5))

    response = lead_client.get(APPROVALS)
    assert [row["action"].pk for row in response.context["rows"]] == [second.pk, first.pk]
    assert 'data-verb="approve"' in response.content.decode()

    agent_view = agent_client.get(APPROVALS)
    assert agent_view.status_code == 200 and 'data-verb="approve"' not in agent_view.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(f"/admin/enforcement/enforcementaction/{second.pk}/approve/",
                                    {"next": APPROVALS}, follow=True)
    assert response.redirect_chain[-1][0] == APPROVALS
    second.refresh_from_db()
    assert second.status == ActionStatus.APPLIED
    assert [row["action"].pk for row in response.context["rows"]] == [first.pk]


def test_appeals_queue_and_decide(lead_client, second_lead_client, agent_client, make_account, as_detector, as_lead,
                                  as_agent):
    case = report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
    throttle = services.action_propose(actor=as_lead, case_id=case.pk, kind="throttle", reason="r")
    services.action_apply(action_id=throttle.pk)
    appeal = services.appeal_submit(actor=as_agent, action_id=throttle.pk, message="It was a staging key.")

    html = agent_client.get(APPEALS).content.decode()
    assert "It was a staging key." in html and 'value="overturned"' not in html
    response = lead_client.get(APPEALS)  # the lead who requested the throttle sees why not, no form
    assert [a.pk for a in response.context["page"].object_list] == [appeal.pk]
    assert 'value="overturned"' not in response.content.decode() and "took no part" in response.content.decode()
    assert 'value="overturned"' in second_lead_client.get(APPEALS).content.decode()

    response = second_lead_client.post(f"/admin/enforcement/appeal/{appeal.pk}/decide/",
                                {"outcome": "upheld", "note": "Production traffic.", "next": APPEALS}, follow=True)
    assert Appeal.objects.get(pk=appeal.pk).status == "upheld"
    assert list(response.context["page"].object_list) == []
    assert any("upheld" in m for m in messages_of(response))


def test_the_front_page_shows_the_team_day(agent_client, agent, auditor_client, outsider_client, make_account,
                                           as_detector, as_agent, as_lead):
    mine = report(as_detector, make_account(), severity="medium").violation.case
    services.case_assign(actor=as_agent, case_id=mine.pk, assignee_id=agent.pk)
    overdue = report(as_detector, make_account(), severity="low").violation.case
    Case.objects.filter(pk=overdue.pk).update(review_due_at=timezone.now() - timedelta(minutes=5))
    _suspension_request(make_account, as_detector, as_agent)
    failed_case = report(as_detector, make_account(), rule="impersonation").violation.case
    failed = services.action_propose(actor=as_agent, case_id=failed_case.pk, kind="throttle", reason="r")
    services.action_record_failure(action_id=failed.pk, error="boom", final=True)
    appealed_case = report(as_detector, make_account(), rule="unlawful-use").violation.case
    throttle = services.action_propose(actor=as_lead, case_id=appealed_case.pk, kind="throttle", reason="r")
    services.action_apply(action_id=throttle.pk)
    services.appeal_submit(actor=as_agent, action_id=throttle.pk, message="please")

    response = agent_client.get("/admin/")
    tiles = {tile["label"]: tile for tile in response.context["team_day"]}
    assert tiles["My open cases"]["count"] == 1
    assert tiles["Overdue cases"]["count"] == 1
    assert tiles["Awaiting approval"]["count"] == 1
    assert tiles["Appeals waiting"]["count"] == 1
    assert tiles["Failed actions"]["count"] == 1
    html = response.content.decode()
    for tile in tiles.values():
        assert tile["url"] in html
        assert agent_client.get(tile["url"]).status_code == 200, tile
    # The links lead to the lists the counts came from.
    mine_list = agent_client.get(tiles["My open cases"]["url"]).context["cl"].result_list
    assert [c.pk for c in mine_list] == [mine.pk]
    overdue_list = agent_client.get(tiles["Overdue cases"]["url"]).context["cl"].result_list
    assert [c.pk for c in overdue_list] == [overdue.pk]
    failed_list = agent_client.get(tiles["Failed actions"]["url"]).context["cl"].result_list
    assert [a.pk for a in failed_list] == [failed.pk]

    assert "team_day" in auditor_client.get("/admin/").context
    assert "team_day" not in outsider_client.get("/admin/").context


def test_every_model_of_the_console_is_registered_on_its_site():
    """The site's class lives in the package whose modules register the ModelAdmins (see config.apps)."""
    assert isinstance(admin.site, ConsoleAdminSite)
    assert {model._meta.label for model in admin.site._registry} == {
        "auth.Group", "auth.User", "accounts.Account", "accounts.APIKey", "enforcement.Appeal",
        "enforcement.AuditEvent", "enforcement.Case", "enforcement.EnforcementAction", "enforcement.Notification",
        "enforcement.Rule", "enforcement.ServiceToken", "enforcement.Source", "enforcement.Violation",
        "otp_totp.TOTPDevice", "otp_static.StaticDevice",  # django-otp's own, for superusers
    }


def test_the_metrics_page_draws_its_charts_for_staff_only(lead_client, outsider_client):
    Case.objects.create(account=AccountFactory(), severity="high", severity_rank=2)
    page = lead_client.get("/admin/metrics/").content.decode()
    assert page.count("<svg") >= 2 and 'data-chart="open-cases-by-severity-now"' in page
    assert "<script" not in page.split('id="charts"')[1].split('id="footer"')[0]
    assert 'id="metrics-link"' in lead_client.get("/admin/").content.decode()
    assert outsider_client.get("/admin/metrics/").status_code == 403
    tile = {t["label"]: t for t in lead_client.get("/admin/").context["team_day"]}["Detectors without act-first"]
    assert lead_client.get(tile["url"]).status_code == 200
