"""No surprises: the queue's bulk proposal shows what it would do to each case before it does it, and taking over
a case someone else holds asks first (on the case page and in bulk)."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from enforcement import services
from enforcement.models import ActionStatus, Case, EnforcementAction, Notification
from tests.admin.conftest import confirm, messages_of, report

QUEUE = "/admin/enforcement/case/"


def page_of(case_id: int) -> str:
    return f"/admin/enforcement/case/{case_id}/change/"


def bulk(client, action: str, cases, **extra):
    return client.post(QUEUE, {"action": action, ACTION_CHECKBOX_NAME: [str(c.pk) for c in cases], **extra},
                       follow=True)


def messages_by_level(response) -> dict[str, str]:
    found: dict[str, str] = {}
    for message in response.context["messages"]:
        found[message.level_tag] = f"{found.get(message.level_tag, '')} {message}".strip()
    return found


# --------------------------------------------------------------------------- the bulk proposal


def _mixed_queue(make_account, as_detector, as_agent):
    """One case per outcome: applied at once (throttle, warning), waits for a lead (suspend), already covered,
    and no advice at all."""
    throttle = report(as_detector, make_account(email="ops@throttle.example"), rule="special-category-data",
                      severity="high").violation.case
    warning = report(as_detector, make_account(email="ops@warning.example"), rule="secrets-in-events",
                     severity="medium").violation.case
    suspend = report(as_detector, make_account(email="ops@suspend.example"), rule="spam-fraud",
                     severity="critical").violation.case
    covered = report(as_detector, make_account(email="ops@covered.example"), rule="special-category-data",
                     severity="high").violation.case
    pending = services.action_propose(actor=as_agent, case_id=covered.pk, kind="suspend", reason="sustained")
    research = report(as_detector, make_account(email="ops@research.example"), rule="security-research",
                      severity="low").violation.case
    return {"throttle": throttle, "warning": warning, "suspend": suspend, "covered": covered, "pending": pending,
            "research": research}


def test_bulk_proposal_shows_each_case_first_and_proposes_nothing_before_confirming(
    agent_client, make_account, as_detector, as_agent
):
    q = _mixed_queue(make_account, as_detector, as_agent)
    before = EnforcementAction.objects.count()
    cases = [q["throttle"], q["warning"], q["suspend"], q["covered"], q["research"]]
    page = bulk(agent_client, "propose_recommendation", cases)
    assert page.status_code == 200 and page.templates[0].name == "admin/enforcement/case/propose_confirm.html"
    assert EnforcementAction.objects.count() == before and not Notification.objects.filter(audience="customer")

    rows = {row["case"].pk: row for row in page.context["rows"]}
    assert {pk: (row["kind"], row["outcome"]) for pk, row in rows.items()} == {
        q["throttle"].pk: ("throttle", "at_once"),
        q["warning"].pk: ("warning", "at_once"),
        q["suspend"].pk: ("suspend", "waits"),
        q["covered"].pk: ("throttle", "covered"),
        q["research"].pk: (None, "no_action"),
    }
    assert rows[q["covered"].pk]["covering"].pk == q["pending"].pk
    # Only the customers of what is applied at once are emailed; a proposal waiting for a lead emails staff.
    assert sorted(page.context["emailed"]) == ["ops@throttle.example", "ops@warning.example"]
    html = page.content.decode()
    for case in cases:
        assert case.account.public_id in html
    assert "2 customers will be emailed: " in html and "ops@suspend.example" not in html.split("proposal-summary")[1]
    assert f"Suspend #{q['pending'].pk}" in html and "already covers it" in html
    assert "Waits for a lead's approval" in html and "Applied at once" in html

    # Posting the selection again without the explicit confirm field proposes nothing either.
    again = confirm(agent_client, page, QUEUE, confirm="")
    assert again.templates[0].name == "admin/enforcement/case/propose_confirm.html"
    assert EnforcementAction.objects.count() == before


def test_confirming_proposes_and_says_what_was_applied_what_waits_and_what_was_skipped(
    agent_client, make_account, as_detector, as_agent, django_capture_on_commit_callbacks
):
    q = _mixed_queue(make_account, as_detector, as_agent)
    page = bulk(agent_client, "propose_recommendation",
                [q["throttle"], q["warning"], q["suspend"], q["covered"], q["research"]])
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(agent_client, page, QUEUE)

    proposed = {a.case_id: (a.kind, a.status) for a in EnforcementAction.objects.exclude(pk=q["pending"].pk)}
    assert proposed == {
        q["throttle"].pk: ("throttle", ActionStatus.APPLIED),
        q["warning"].pk: ("warning", ActionStatus.APPLIED),
        q["suspend"].pk: ("suspend", ActionStatus.AWAITING_APPROVAL),
    }
    emailed = set(Notification.objects.filter(audience="customer").values_list("recipient", flat=True))
    assert emailed == set(page.context["emailed"])  # what the page said is what happened

    said = messages_by_level(response)
    assert "Applied at once on 2 case(s)" in said["success"]
    assert f"#{q['throttle'].pk} throttle" in said["success"] and f"#{q['warning'].pk} warning" in said["success"]
    assert "Waiting for a lead on 1 case(s)" in said["info"] and f"#{q['suspend'].pk} suspend" in said["info"]
    # Skipped with the service's own reason (its Conflict message).
    assert f"Skipped 1: #{q['covered'].pk} (Suspend #{q['pending'].pk} (awaiting_approval) already covers this" \
        in said["warning"]
    assert f"#{q['research'].pk}:" in said["error"] and "recommends no action" in said["error"]


def test_a_case_whose_advice_changed_after_the_confirmation_page_is_skipped(
    agent_client, make_account, as_detector
):
    account = make_account()
    case = report(as_detector, account, rule="secrets-in-events", severity="medium").violation.case
    page = bulk(agent_client, "propose_recommendation", [case])
    assert page.context["rows"][0]["kind"] == "warning"
    report(as_detector, account, rule="special-category-data", severity="high")  # now the ladder says throttle
    response = confirm(agent_client, page, QUEUE)
    assert not EnforcementAction.objects.exists()
    said = messages_by_level(response)["warning"]
    assert f"#{case.pk} (the ladder now recommends throttle, not the warning you confirmed" in said


def test_a_case_closed_after_the_confirmation_page_is_reported_not_proposed(
    agent_client, make_account, as_detector, as_lead
):
    kept, closed = (report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
                    for _ in range(2))
    page = bulk(agent_client, "propose_recommendation", [kept, closed])
    services.case_resolve(actor=as_lead, case_id=closed.pk, resolution="false positive")
    response = confirm(agent_client, page, QUEUE)
    assert list(EnforcementAction.objects.values_list("case_id", flat=True)) == [kept.pk]
    assert f"Skipped 1: #{closed.pk} (no longer in the queue)" in messages_by_level(response)["warning"]


def test_a_confirm_without_the_confirmation_page_proposes_nothing(agent_client, make_account, as_detector):
    case = report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
    response = bulk(agent_client, "propose_recommendation", [case], confirm="yes")  # no kinds were shown
    assert not EnforcementAction.objects.exists()
    assert any(f"#{case.pk}: not on the confirmation page" in m for m in messages_of(response))


def test_an_auditor_cannot_reach_the_bulk_proposal(auditor_client, make_account, as_detector):
    case = report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
    bulk(auditor_client, "propose_recommendation", [case])
    bulk(auditor_client, "propose_recommendation", [case], confirm="yes", **{f"kind-{case.pk}": "throttle"})
    assert not EnforcementAction.objects.exists()


# --------------------------------------------------------------------------- taking a case over


def test_assign_to_me_on_an_unassigned_case_or_my_own_asks_nothing(agent_client, agent, high_case):
    url = f"/admin/enforcement/case/{high_case.pk}/assign/"
    response = agent_client.post(url, {"assignee": "me", "next": page_of(high_case.pk)}, follow=True)
    assert response.redirect_chain[-1][0] == page_of(high_case.pk)
    assert Case.objects.get(pk=high_case.pk).assignee == agent
    response = agent_client.post(url, {"assignee": "me"}, follow=True)
    assert response.redirect_chain and Case.objects.get(pk=high_case.pk).assignee == agent


def test_assign_to_me_over_someone_else_asks_first(agent_client, agent, lead, high_case, as_lead):
    services.case_assign(actor=as_lead, case_id=high_case.pk, assignee_id=lead.pk)
    url = f"/admin/enforcement/case/{high_case.pk}/assign/"
    page = agent_client.post(url, {"assignee": "me", "next": page_of(high_case.pk)})
    assert page.status_code == 200
    assert f"Case #{high_case.pk}" in page.content.decode()
    assert "is assigned to <strong>lead</strong>; take it over?" in page.content.decode()
    assert Case.objects.get(pk=high_case.pk).assignee == lead  # nothing changed yet

    response = confirm(agent_client, page, url=url)
    assert response.redirect_chain[-1][0] == page_of(high_case.pk)
    assert Case.objects.get(pk=high_case.pk).assignee == agent
    assert any("assigned to agent" in m for m in messages_of(response))


def test_a_takeover_confirmed_from_one_holder_is_asked_again_if_the_case_changed_hands(
    agent_client, agent, lead, second_lead, high_case, as_lead
):
    services.case_assign(actor=as_lead, case_id=high_case.pk, assignee_id=lead.pk)
    url = f"/admin/enforcement/case/{high_case.pk}/assign/"
    page = agent_client.post(url, {"assignee": "me"})
    services.case_assign(actor=as_lead, case_id=high_case.pk, assignee_id=second_lead.pk)
    again = confirm(agent_client, page, url=url)
    assert "is assigned to <strong>lead2</strong>; take it over?" in again.content.decode()
    assert Case.objects.get(pk=high_case.pk).assignee == second_lead


def test_bulk_assign_to_me_asks_before_taking_cases_over(agent_client, agent, lead, make_account, as_detector,
                                                         as_lead):
    free, held, mine = (report(as_detector, make_account()).violation.case for _ in range(3))
    services.case_assign(actor=as_lead, case_id=held.pk, assignee_id=lead.pk)
    services.case_assign(actor=as_lead, case_id=mine.pk, assignee_id=agent.pk)
    page = bulk(agent_client, "assign_to_me", [free, held, mine])
    html = page.content.decode()
    assert f"Case #{held.pk}" in html and "is assigned to <strong>lead</strong>; take it over?" in html
    assert f"Case #{free.pk}" not in html and "The other 2 selected cases" in html
    assert Case.objects.get(pk=free.pk).assignee is None  # nothing assigned before confirming

    response = confirm(agent_client, page, QUEUE)
    assert "3 case(s) assigned." in messages_of(response)
    assert set(Case.objects.filter(assignee=agent).values_list("pk", flat=True)) == {free.pk, held.pk, mine.pk}
