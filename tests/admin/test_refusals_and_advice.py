"""What a newcomer meets: refusals as a readable page, the ladder's advice when a higher rung is in force."""

from enforcement import services
from enforcement.models import EnforcementAction

PAGE = "/admin/enforcement/case/{}/change/"


def test_a_refused_button_shows_a_plain_page_and_changes_nothing(agent_client, high_case, as_agent):
    action = services.action_propose(actor=as_agent, case_id=high_case.pk, kind="suspend", reason="fraud")
    response = agent_client.post(f"/admin/enforcement/enforcementaction/{action.pk}/approve/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Your role does not allow this." in html and "Nothing was changed." in html
    assert "Traceback" not in html
    assert EnforcementAction.objects.get(pk=action.pk).status == "awaiting_approval"


def test_advice_gives_way_when_a_higher_rung_is_in_force(lead_client, high_case, as_lead):
    suspend = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="suspend", reason="fraud")
    services.action_apply(action_id=suspend.pk)
    response = lead_client.get(PAGE.format(high_case.pk))
    assert response.context["recommendation"].kind == "throttle"  # what the ladder alone says
    html = response.content.decode()
    assert 'id="propose-recommended"' not in html
    assert "Already in place" in html and f"#action-{suspend.pk}" in html


def test_the_site_root_leads_to_the_console(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_a_reviewed_case_says_so_instead_of_counting_down(agent_client, high_case, as_agent):
    services.action_propose(actor=as_agent, case_id=high_case.pk, kind="warning", reason="fix it")
    html = agent_client.get(PAGE.format(high_case.pk)).content.decode()
    assert 'id="case-sla">reviewed<' in html
    queue = agent_client.get("/admin/enforcement/case/").content.decode()
    assert "sla-muted" in queue and "reviewed" in queue


def test_the_review_deadline_filter_knows_reviewed_cases(agent_client, high_case, as_agent):
    services.action_propose(actor=as_agent, case_id=high_case.pk, kind="warning", reason="fix it")
    for value, expected in (("reviewed", [high_case.pk]), ("no", [high_case.pk]), ("yes", [])):
        response = agent_client.get(f"/admin/enforcement/case/?overdue={value}")
        assert [case.pk for case in response.context["cl"].result_list] == expected, value


def test_a_button_address_opened_as_a_link_explains_itself(agent_client, high_case, as_agent):
    action = services.action_propose(actor=as_agent, case_id=high_case.pk, kind="warning", reason="fix it")
    response = agent_client.get(f"/admin/enforcement/enforcementaction/{action.pk}/revert/")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "Use the button on the page" in response.content.decode()
    assert EnforcementAction.objects.get(pk=action.pk).status == action.status  # unchanged
