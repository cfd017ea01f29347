"""Statements of reasons: one per applied restrictive action, in the DSA Transparency Database's terms, from the
same facts as the customer's notice; exported in batches of at most 100."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enforcement import services
from enforcement.models import EnforcementAction, Rule
from tests.api.helpers import assert_error
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def statements(client, query=""):
    response = client.get(f"/api/v1/statements/{query}")
    assert response.status_code == 200, response.content[:500]
    return response.json()["results"]


def test_a_statement_per_applied_restrictive_action_in_the_databases_terms(
    make_client, account, keys, report, as_agent, as_lead, as_second_lead, run_on_commit
):
    client = make_client("audit:read")
    case = report(account, rule="spam-fraud", severity="high").violation.case
    warning = run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="warning", reason="fix")
    throttle = run_on_commit(
        services.action_propose, actor=as_agent, case_id=case.pk, kind="throttle", reason="slow down",
        key_prefixes=[keys[1].prefix], rate_limit_per_minute=30, expires_at=timezone.now() + timedelta(days=3),
    )
    suspension = run_on_commit(services.action_propose, actor=as_lead, case_id=case.pk, kind="suspend", reason="x")
    termination = services.action_propose(actor=as_lead, case_id=case.pk, kind="terminate", reason="repeat fraud")
    pending = termination  # awaiting a second lead: not applied, no statement yet
    assert {s["puid"] for s in statements(client)} == {
        f"millimetric-action-{throttle.pk}", f"millimetric-action-{suspension.pk}"
    }
    run_on_commit(services.action_approve, actor=as_second_lead, action_id=pending.pk)

    by_puid = {s["puid"]: s for s in statements(client)}
    assert f"millimetric-action-{warning.pk}" not in by_puid  # a warning restricts nothing
    throttled = by_puid[f"millimetric-action-{throttle.pk}"]
    assert throttled["decision_provision"] == "DECISION_PROVISION_PARTIAL_SUSPENSION"
    assert throttled["decision_account"] is None  # one named key, not the account
    assert throttled["end_date_service_restriction"] == EnforcementAction.objects.get(
        pk=throttle.pk).expires_at.date().isoformat()
    assert throttled["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert throttled["incompatible_content_ground"] == Rule.objects.get(code="spam-fraud").clause[:500]
    assert "spam-fraud" in throttled["incompatible_content_explanation"]
    assert throttled["category"] == "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    assert throttled["content_type"] == ["CONTENT_TYPE_OTHER"] and throttled["content_type_other"]
    assert "30 requests a minute" in throttled["decision_facts"] and "1 report(s)" in throttled["decision_facts"]
    assert throttled["automated_detection"] == "Yes"  # a detector's report
    assert throttled["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"  # an agent decided
    assert throttled["source_type"] == "SOURCE_VOLUNTARY"
    assert throttled["application_date"] == timezone.now().date().isoformat()
    assert throttled["content_date"] == timezone.now().date().isoformat()
    assert "DE" in throttled["territorial_scope"]
    assert account.public_id not in str(throttled) and keys[1].prefix not in str(throttled)  # no personal data

    suspended = by_puid[f"millimetric-action-{suspension.pk}"]
    assert suspended["decision_provision"] == "DECISION_PROVISION_TOTAL_SUSPENSION"
    assert suspended["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"
    assert suspended["end_date_service_restriction"] is None
    terminated = by_puid[f"millimetric-action-{termination.pk}"]
    assert terminated["decision_provision"] == "DECISION_PROVISION_TOTAL_TERMINATION"
    assert terminated["decision_account"] == "DECISION_ACCOUNT_TERMINATED"


def test_act_first_under_an_illegal_content_rule_states_a_legal_ground_and_full_automation(
    make_client, account, keys, report, run_on_commit
):
    rule = Rule.objects.get(code="security-abuse")
    rule.dsa_illegal, rule.dsa_legal_ground = True, "Directive 2013/40/EU (attacks against information systems)"
    rule.save()
    run_on_commit(report, account, rule="security-abuse", severity="critical")
    [statement] = statements(make_client("audit:read"))
    assert statement["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert statement["illegal_content_legal_ground"].startswith("Directive 2013/40/EU")
    assert statement["illegal_content_explanation"]
    assert statement["incompatible_content_ground"] is None
    assert statement["automated_detection"] == "Yes"
    assert statement["automated_decision"] == "AUTOMATED_DECISION_FULLY"


def test_since_and_until_bound_the_day_of_application(make_client, account, report, as_lead, run_on_commit):
    client = make_client("audit:read")
    case = report(account).violation.case
    action = run_on_commit(services.action_propose, actor=as_lead, case_id=case.pk, kind="suspend", reason="x")
    applied = EnforcementAction.objects.get(pk=action.pk).applied_at
    before, after = (applied - timedelta(minutes=1)).isoformat(), (applied + timedelta(minutes=1)).isoformat()
    assert len(statements(client, f"?since={before.replace('+', '%2B')}")) == 1
    assert statements(client, f"?since={after.replace('+', '%2B')}") == []
    assert statements(client, f"?until={before.replace('+', '%2B')}") == []
    assert_error(client.get("/api/v1/statements/?since=yesterday"), 400, "validation_error", fields=["since"])


def test_statements_need_audit_read(make_client, anon_client):
    assert_error(make_client("cases:read").get("/api/v1/statements/"), 403, "forbidden")
    assert_error(make_client("cases:read").get("/api/v1/statements/export/"), 403, "forbidden")
    assert anon_client.get("/api/v1/statements/").status_code == 401


def _applied_suspensions(n: int, rule: Rule) -> list[int]:
    """Applied suspensions written directly (the workflow's own tests cover how they come about)."""
    now = timezone.now()
    ids = []
    for _ in range(n):
        account = AccountFactory()
        case = account.cases.create(severity="high", severity_rank=2)
        violation = case.violations.create(account=account, rule=rule, severity="high", source="bulk",
                                           external_id=f"bulk-{account.pk}", observed_at=now, summary="s",
                                           reporter_kind="token")
        ids.append(EnforcementAction.objects.create(
            case=case, account=account, kind="suspend", status="applied", reason="r", applied_at=now,
            requested_by_label="lead", decided_under={"violations": [violation.pk], "rules": {rule.code: 1}},
        ).pk)
    return ids


def test_the_export_gives_batches_of_at_most_100(make_client, django_assert_max_num_queries):
    ids = _applied_suspensions(250, Rule.objects.get(code="spam-fraud"))
    client = make_client("audit:read")
    url, batches, seen = "/api/v1/statements/export/", [], []
    while url:
        with django_assert_max_num_queries(12):
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        assert set(body) == {"statements", "next"}
        batches.append(len(body["statements"]))
        seen += [s["puid"] for s in body["statements"]]
        url = body["next"]
    assert batches == [100, 100, 50]
    assert seen == [f"millimetric-action-{pk}" for pk in ids]  # each once, oldest first
    assert len(set(seen)) == 250


def test_a_lead_sees_the_cases_statements_on_its_page(client, lead, account, report, as_lead, run_on_commit):
    case = report(account).violation.case
    action = run_on_commit(services.action_propose, actor=as_lead, case_id=case.pk, kind="suspend", reason="x")
    client.force_login(lead)
    page = client.get(f"/admin/enforcement/case/{case.pk}/change/").content.decode()
    assert 'id="statements"' in page and f"millimetric-action-{action.pk}" in page
    assert "DECISION_PROVISION_TOTAL_SUSPENSION" in page


def test_the_case_page_shows_the_latest_statements_and_counts_them_all(client, lead, account, report):
    from enforcement.admin.cases import CASE_PAGE_STATEMENTS
    from enforcement.selectors import case_detail_queryset
    from enforcement.statements import case_statements
    from tests.factories import EnforcementActionFactory

    case = report(account).violation.case
    now = timezone.now()
    applied = [EnforcementActionFactory(case=case, kind="throttle", applied_at=now - timedelta(hours=n))
               for n in range(CASE_PAGE_STATEMENTS + 2)]
    EnforcementActionFactory(case=case, kind="warning", applied_at=now)  # not restrictive: no statement
    latest = [f"millimetric-action-{a.pk}" for a in applied[:CASE_PAGE_STATEMENTS]]  # the newest first
    loaded = case_detail_queryset(evidence=False).get(pk=case.pk)
    assert [s["puid"] for s in case_statements(loaded, limit=CASE_PAGE_STATEMENTS)] == latest
    assert len(case_statements(loaded)) == CASE_PAGE_STATEMENTS + 2
    client.force_login(lead)
    page = client.get(f"/admin/enforcement/case/{case.pk}/change/").content.decode()
    assert all(puid in page for puid in latest) and f"millimetric-action-{applied[-1].pk}" not in page
    assert f"The latest {CASE_PAGE_STATEMENTS} of {CASE_PAGE_STATEMENTS + 2}" in page


def _leak(key, url="https://github.com/someone/repo/blob/main/.env"):
    from enforcement.integrations import github

    return github.label_match(github.Match(token=key.token, type="millimetric_secret_key", url=url, source="content"))


def test_a_key_revoked_by_github_secret_scanning_has_its_own_statement(make_client, account, keys):
    from enforcement.models import AuditEvent

    assert _leak(keys[1]) == "true_positive"
    assert _leak(keys[1]) == "true_positive"  # a replay revokes nothing more: one statement still
    event = AuditEvent.objects.get(verb="key.revoked", actor_label="github-secret-scanning")
    [statement] = statements(make_client("audit:read"))
    rule = Rule.objects.get(code="key-exposure")
    assert statement["puid"] == f"millimetric-key-revocation-{event.pk}"
    assert statement["decision_provision"] == "DECISION_PROVISION_PARTIAL_SUSPENSION"
    assert statement["decision_account"] is None and statement["end_date_service_restriction"] is None
    assert "One API key" in statement["decision_facts"]
    assert statement["category"] == rule.dsa_category
    assert statement["incompatible_content_ground"] == rule.clause[:500]
    assert statement["automated_detection"] == "Yes"
    assert statement["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert statement["source_type"] == "SOURCE_VOLUNTARY"
    assert statement["application_date"] == event.created_at.date().isoformat()
    assert keys[1].prefix not in str(statement) and "github.com/someone" not in str(statement)  # no personal data


def test_a_key_revoked_by_staff_has_no_revocation_statement(make_client, keys, as_lead):
    services.key_revoke(actor=as_lead, key_id=keys[1].pk, reason="the customer asked")
    assert statements(make_client("audit:read")) == []


def test_actions_and_revocations_page_together_newest_first_each_once(make_client, account, keys, report, as_lead,
                                                                      run_on_commit):
    client = make_client("audit:read")
    case = report(account).violation.case
    first = run_on_commit(services.action_propose, actor=as_lead, case_id=case.pk, kind="suspend", reason="x")
    _leak(keys[1])
    _leak(keys[2])
    seen, url = [], "/api/v1/statements/?page_size=2"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        seen += [s["puid"] for s in response.json()["results"]]
        url = response.json()["next"]
    assert len(seen) == 3 and len(set(seen)) == 3
    assert seen[-1] == f"millimetric-action-{first.pk}"
    assert seen[0].startswith("millimetric-key-revocation-")
    assert_error(client.get("/api/v1/statements/?cursor=garbage"), 400, "invalid_cursor")


def test_the_export_includes_revocations_in_a_constant_number_of_queries(
    make_client, account, keys, django_assert_max_num_queries
):
    ids = _applied_suspensions(150, Rule.objects.get(code="spam-fraud"))
    _leak(keys[1])
    _leak(keys[2])
    client = make_client("audit:read")
    url, seen = "/api/v1/statements/export/", []
    while url:
        with django_assert_max_num_queries(12):
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        seen += [s["puid"] for s in response.json()["statements"]]
        url = response.json()["next"]
    assert seen[:150] == [f"millimetric-action-{pk}" for pk in ids]
    assert [p.rsplit("-", 1)[0] for p in seen[150:]] == ["millimetric-key-revocation"] * 2
    assert_error(client.get("/api/v1/statements/export/?after=1"), 400, "validation_error")
