"""The case queue: what it lists and in which order, its filters and search, and its bulk actions."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enforcement import services
from enforcement.models import Case, EnforcementAction
from tests.admin.conftest import confirm, messages_of, report

QUEUE = "/admin/enforcement/case/"


def listed(response) -> list[int]:
    return [case.pk for case in response.context["cl"].result_list]


def make_cases(make_account, actor, n, *, rule="secrets-in-events", severity="medium"):
    return [report(actor, make_account(n_keys=1), rule=rule, severity=severity).violation.case for _ in range(n)]


@pytest.fixture
def queue(make_account, as_detector, as_lead):
    """Cases of every severity; one overdue, one closed."""
    low = report(as_detector, make_account(), rule="covert-tracking", severity="low").violation.case
    high = report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
    critical = report(as_detector, make_account(), rule="spam-fraud", severity="critical").violation.case
    overdue = report(as_detector, make_account(), rule="secrets-in-events", severity="medium").violation.case
    Case.objects.filter(pk=overdue.pk).update(review_due_at=timezone.now() - timedelta(hours=2))
    closed = report(as_detector, make_account(), rule="impersonation").violation.case
    services.case_resolve(actor=as_lead, case_id=closed.pk, resolution="false positive")
    return {"low": low, "high": high, "critical": critical, "overdue": overdue, "closed": closed}


def test_the_queue_lists_open_cases_overdue_first_then_by_deadline(agent_client, queue):
    response = agent_client.get(QUEUE)
    assert response.status_code == 200
    ids = listed(response)
    assert queue["closed"].pk not in ids
    assert ids[0] == queue["overdue"].pk
    # Then by deadline: critical (1 h), high (4 h), low (72 h).
    assert ids[1:] == [queue["critical"].pk, queue["high"].pk, queue["low"].pk]
    html = response.content.decode()
    assert 'class="sev sev-critical"' in html
    assert "sla-overdue" in html and "overdue 2h" in html
    assert "spam-fraud" in html  # the rule column


def test_closed_cases_appear_when_asked_for(agent_client, queue):
    assert queue["closed"].pk in listed(agent_client.get(QUEUE, {"status": "all"}))
    assert listed(agent_client.get(QUEUE, {"status": "closed"})) == [queue["closed"].pk]


def test_filters(agent_client, agent, queue, as_agent, as_lead):
    assert listed(agent_client.get(QUEUE, {"severity": "critical"})) == [queue["critical"].pk]
    assert listed(agent_client.get(QUEUE, {"rule": "special-category-data"})) == [queue["high"].pk]
    assert listed(agent_client.get(QUEUE, {"overdue": "yes"})) == [queue["overdue"].pk]

    services.case_assign(actor=as_agent, case_id=queue["low"].pk, assignee_id=agent.pk)
    assert listed(agent_client.get(QUEUE, {"assignee": "me"})) == [queue["low"].pk]
    assert queue["low"].pk not in listed(agent_client.get(QUEUE, {"assignee": "none"}))
    assert listed(agent_client.get(QUEUE, {"assignee": str(agent.pk)})) == [queue["low"].pk]

    services.action_propose(actor=as_agent, case_id=queue["high"].pk, kind="suspend", reason="sustained")
    assert listed(agent_client.get(QUEUE, {"awaiting": "approval"})) == [queue["high"].pk]

    throttle = services.action_propose(actor=as_lead, case_id=queue["critical"].pk, kind="throttle", reason="r")
    services.action_apply(action_id=throttle.pk)
    services.appeal_submit(actor=as_agent, action_id=throttle.pk, message="We fixed it.")
    assert listed(agent_client.get(QUEUE, {"appealed": "pending"})) == [queue["critical"].pk]
    assert listed(agent_client.get(QUEUE, {"status": "appealed"})) == [queue["critical"].pk]


def test_act_first_review_filter(agent_client, make_account, as_trusted_detector):
    result = report(as_trusted_detector, make_account(), rule="security-abuse", severity="critical")
    assert result.act_first_action is not None
    assert listed(agent_client.get(QUEUE, {"awaiting": "review"})) == [result.violation.case_id]
    assert "act-first review" in agent_client.get(QUEUE).content.decode()


def test_search_by_account_id_email_key_prefix_token_and_case_number(agent_client, make_account, as_detector):
    target = make_account(n_keys=2, email="ops@target.example")
    case = report(as_detector, target).violation.case
    make_cases(make_account, as_detector, 3)
    key = target.test_keys[0]
    for term in [target.public_id, "ops@target.example", "OPS@target.example", key.prefix, key.token, f"#{case.pk}"]:
        assert listed(agent_client.get(QUEUE, {"q": term}, follow=True)) == [case.pk], term
    assert listed(agent_client.get(QUEUE, {"q": "sk_live_nothere0"})) == []


def _bulk(client, action, cases, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(c.pk) for c in cases], **extra}
    return client.post(QUEUE, data, follow=True)


def test_bulk_assign_to_me_and_to_someone(agent_client, agent, lead, make_account, as_detector):
    cases = make_cases(make_account, as_detector, 3)
    response = _bulk(agent_client, "assign_to_me", cases[:2])
    assert "2 case(s) assigned." in messages_of(response)
    assert set(Case.objects.filter(assignee=agent).values_list("pk", flat=True)) == {cases[0].pk, cases[1].pk}

    page = _bulk(agent_client, "assign_to", cases)
    assert page.status_code == 200 and b"bulk-assignee" in page.content  # the intermediate page
    response = _bulk(agent_client, "assign_to", cases, apply="1", assignee=str(lead.pk))
    assert "3 case(s) assigned." in messages_of(response)
    assert Case.objects.filter(assignee=lead).count() == 3


def test_bulk_propose_uses_the_ladder_for_each_case(agent_client, make_account, as_detector,
                                                    django_capture_on_commit_callbacks):
    high = report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
    medium = report(as_detector, make_account(), rule="secrets-in-events", severity="medium").violation.case
    research = report(as_detector, make_account(), rule="security-research", severity="low").violation.case
    page = _bulk(agent_client, "propose_recommendation", [high, medium, research])
    assert not EnforcementAction.objects.exists()  # a confirmation page first
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(agent_client, page, QUEUE)
    kinds = dict(EnforcementAction.objects.values_list("case_id", "kind"))
    assert kinds == {high.pk: "throttle", medium.pk: "warning"}
    assert EnforcementAction.objects.get(case=high).status == "applied"
    text = " ".join(messages_of(response))
    assert "Applied at once on 2 case(s)" in text
    assert f"#{research.pk}:" in text and "recommends no action" in text  # a person decides, shown as a message

    # Again: the throttle and the warning are already in force, so nothing new is proposed.
    page = _bulk(agent_client, "propose_recommendation", [high, medium])
    assert [row["outcome"] for row in page.context["rows"]] == ["covered", "covered"]
    response = confirm(agent_client, page, QUEUE)
    assert EnforcementAction.objects.count() == 2
    assert "Skipped 2" in " ".join(messages_of(response))


def test_auditor_gets_no_bulk_actions(auditor_client, make_account, as_detector, auditor):
    cases = make_cases(make_account, as_detector, 2)
    response = auditor_client.get(QUEUE)
    assert response.status_code == 200
    assert response.context["action_form"] is None  # no bulk actions offered
    assert "assign_to_me" not in response.content.decode()
    _bulk(auditor_client, "assign_to_me", cases)
    assert not Case.objects.filter(assignee=auditor).exists()


def test_outsider_cannot_see_the_queue(outsider_client, make_account, as_detector):
    make_cases(make_account, as_detector, 1)
    assert outsider_client.get(QUEUE).status_code == 403


def _queue_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(QUEUE)
    assert response.status_code == 200
    return len(queries)


def test_the_queue_makes_the_same_number_of_queries_for_5_and_50_cases(
    agent_client, agent, make_account, as_detector, django_assert_max_num_queries
):
    for case in make_cases(make_account, as_detector, 5):
        Case.objects.filter(pk=case.pk).update(assignee=agent)
    five = _queue_queries(agent_client)
    for case in make_cases(make_account, as_detector, 45, rule="impersonation", severity="high"):
        Case.objects.filter(pk=case.pk).update(assignee=agent)
    with django_assert_max_num_queries(five):
        response = agent_client.get(QUEUE)
    assert len(listed(response)) == 50
    assert five <= 20


def test_the_queue_never_counts_the_whole_table(agent_client, make_account, as_detector, settings):
    from enforcement.admin.filters import CappedCountPaginator

    make_cases(make_account, as_detector, 7)
    original = CappedCountPaginator.cap
    CappedCountPaginator.cap = 5
    try:
        with CaptureQueriesContext(connection) as queries:
            response = agent_client.get(QUEUE, {"status": "all"})
    finally:
        CappedCountPaginator.cap = original
    counts = [q["sql"] for q in queries if q["sql"].upper().startswith("SELECT COUNT(")]
    assert counts, "the paginator counts"
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    assert "More than 5 cases" in response.content.decode()


def test_a_full_key_sent_without_scripts_is_answered_at_an_address_with_its_prefix_only(lead_client, make_account,
                                                                                         as_detector):
    from tests.factories import APIKeyFactory

    account = make_account()
    key = APIKeyFactory(account=account, kind="secret")
    report(as_detector, account)
    response = lead_client.get("/admin/enforcement/case/", {"q": key.token})
    assert response.status_code == 302
    assert key.token[16:] not in response["Location"] and key.prefix in response["Location"]
    found = lead_client.get(response["Location"])
    assert account.public_id in found.content.decode() and key.token[16:] not in found.content.decode()


@pytest.mark.parametrize("url", [
    "/admin/enforcement/case/?assignee=99999999999999999999",
    "/admin/enforcement/auditevent/?created_at__gte=9999-12-31T23:59:59-05:00",
    "/admin/enforcement/case/" + "9" * 5000 + "/change/",
    "/admin/accounts/account/" + "9" * 5000 + "/change/",
    "/admin/enforcement/enforcementaction/" + "9" * 40 + "/change/",
])
def test_hostile_addresses_in_the_console_are_never_a_500(lead_client, url):
    response = lead_client.get(url, follow=True)
    assert response.status_code == 200, (url, response.status_code)


def test_a_rule_form_with_deeply_nested_overrides_is_a_form_error(lead_client):
    from enforcement.models import Rule

    rule = Rule.objects.get(code="spam-fraud")
    nested = "[" * 5000 + "]" * 5000
    response = lead_client.post(f"/admin/enforcement/rule/{rule.pk}/change/", {
        "title": rule.title, "clause": rule.clause, "default_severity": rule.default_severity,
        "ladder_overrides": nested, "dsa_category": rule.dsa_category,
    })
    assert response.status_code == 200 and "nest" in response.content.decode().lower()
    assert Rule.objects.get(pk=rule.pk).version == rule.version


def test_assigning_to_an_id_no_one_can_have_is_refused(lead_client, make_account, as_detector):
    case = report(as_detector, make_account()).violation.case
    response = lead_client.post(f"/admin/enforcement/case/{case.pk}/assign/", {"assignee": "9" * 30}, follow=True)
    assert response.status_code == 200 and Case.objects.get(pk=case.pk).assignee_id is None
