"""Violations: report one (idempotent per source and external_id), report a batch, list, read, dismiss."""

import pytest

from enforcement import services
from enforcement.models import AuditEvent, Case, EnforcementAction, Violation
from tests.api.helpers import assert_error
from tests.factories import AccountFactory, APIKeyFactory, missing_pk

pytestmark = pytest.mark.django_db


@pytest.fixture
def detector(make_client):
    return make_client("violations:write")


def body(account, n=1, **extra) -> dict:
    return {
        "account": account.public_id, "rule": "rate-limit-overuse", "severity": "medium", "source": "ratewatch",
        "external_id": f"evt-{n}", "summary": "1800 events/min from one IP.", **extra,
    }


# --------------------------------------------------------------------------- report one


def test_report_creates_a_violation_with_its_case_and_advice(detector, account, keys):
    response = detector.post("/api/v1/violations/", body(account, api_key=keys[1].prefix,
                                                          evidence={"ip": "203.0.113.9"}), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    violation = Violation.objects.get()
    assert data["id"] == violation.pk and data["case"] == violation.case_id
    assert (data["account"], data["api_key"], data["rule"], data["severity"]) == (
        account.public_id, keys[1].prefix, "rate-limit-overuse", "medium")
    assert data["created"] is True and data["act_first_action"] is None
    assert data["recommended_action"] == {
        "kind": "warning", "reason": "medium severity, 0 strikes in 90 days -> warning", "act_first": False}
    assert data["reported_by"] == f"token:{detector.token.name}" and data["source_trusted"] is False
    assert AuditEvent.objects.filter(verb="violation.reported", target_id=str(violation.pk)).count() == 1


def test_the_same_source_and_external_id_again_is_200_with_the_first(detector, account):
    first = detector.post("/api/v1/violations/", body(account), format="json").json()
    again = detector.post("/api/v1/violations/", body(account, summary="Different words."), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["created"] is False
    assert again.json()["summary"] == first["summary"]
    assert Violation.objects.count() == 1 and Case.objects.count() == 1


def test_severity_defaults_to_the_rule_and_evidence_is_redacted(detector, account):
    data = detector.post("/api/v1/violations/", {
        **body(account), "severity": None, "rule": "key-exposure",
        "summary": "Leaked sk_live_4eC39HqLyjWDarjtT1zdp7dc in a repo",
        "evidence": {"password": "hunter2", "card": "4242 4242 4242 4242"},
    }, format="json").json()
    assert data["severity"] == "medium"
    assert "4eC39HqLyjWDarjtT1zdp7dc" not in data["summary"]
    assert data["evidence"]["password"] == "[REDACTED]" and "4242 4242 4242 4242" not in str(data["evidence"])


def test_a_trusted_detector_acts_first_on_a_critical_act_first_rule(make_client, account, keys):
    trusted = make_client("violations:write", trusted=True)
    data = trusted.post("/api/v1/violations/", body(account, rule="security-abuse", severity="critical"),
                        format="json").json()
    assert data["recommended_action"]["act_first"] is True
    action = EnforcementAction.objects.get()
    assert data["act_first_action"] == action.pk and action.kind == "suspend" and action.act_first


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"account": "", "summary": ""}, ["account", "summary"]),
        ({"severity": "apocalyptic"}, ["severity"]),
        ({"evidence": ["not", "an", "object"]}, ["evidence"]),
        ({"observed_at": "yesterday"}, ["observed_at"]),
        ({"external_id": "x" * 201}, ["external_id"]),
        ({"account": "acct_nobody", "rule": "no-such-rule"}, ["account", "rule"]),
        ({"api_key": "sk_live_Nope1234"}, ["api_key"]),
    ],
)
def test_report_validation_errors_change_nothing(detector, account, change, fields):
    response = detector.post("/api/v1/violations/", {**body(account), **change}, format="json")
    assert_error(response, 400, "validation_error", fields=fields)
    assert not Violation.objects.exists() and not Case.objects.exists()


def test_a_key_of_another_account_is_refused(detector, account):
    other_key = APIKeyFactory(account=AccountFactory())
    error = assert_error(detector.post("/api/v1/violations/", body(account, api_key=other_key.prefix),
                                       format="json"), 400, "validation_error", fields=["api_key"])
    assert error["fields"]["api_key"] == ["This key belongs to another account."]


def test_report_needs_violations_write(make_client, anon_client, account):
    assert_error(anon_client.post("/api/v1/violations/", body(account), format="json"), 401, "not_authenticated")
    assert_error(make_client("cases:read", "cases:write").post("/api/v1/violations/", body(account),
                                                               format="json"), 403, "forbidden")
    assert not Violation.objects.exists()


def test_an_idempotency_key_replays_the_first_answer(detector, account):
    first = detector.post("/api/v1/violations/", body(account), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = detector.post("/api/v1/violations/", body(account), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    # The same key for another body is refused; another key is a new request (the natural replay: 200).
    assert_error(detector.post("/api/v1/violations/", body(account, n=2), format="json",
                               HTTP_IDEMPOTENCY_KEY="k-1"), 409, "idempotency_conflict")
    assert detector.post("/api/v1/violations/", body(account), format="json",
                         HTTP_IDEMPOTENCY_KEY="k-2").status_code == 200
    assert Violation.objects.count() == 1


def test_a_retry_while_the_first_request_runs_is_told_so(detector, account):
    from django.core.cache import cache

    from enforcement.api import idempotency

    first = detector.post("/api/v1/violations/", body(account), format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert first.status_code == 201
    # Simulate a first request still running under another key: its lock is held.
    original_add = cache.add
    try:
        cache.add = lambda key, *a, **kw: False if key.endswith(":running") else original_add(key, *a, **kw)
        error = assert_error(detector.post("/api/v1/violations/", body(account, n=9), format="json",
                                           HTTP_IDEMPOTENCY_KEY="still-running"), 409, "idempotency_conflict")
    finally:
        cache.add = original_add
    assert "still running" in error["message"] and idempotency.HEADER == "Idempotency-Key"
    assert_error(detector.post("/api/v1/violations/", body(account, n=8), format="json",
                               HTTP_IDEMPOTENCY_KEY="x" * 256), 400, "validation_error", fields=["Idempotency-Key"])
    assert Violation.objects.count() == 1


# --------------------------------------------------------------------------- batch


def test_batch_answers_each_item_in_order(detector, account, keys):
    existing = detector.post("/api/v1/violations/", body(account, n=0), format="json").json()
    other = AccountFactory()
    items = [
        body(account, n=1),
        {**body(account, n=2), "summary": ""},  # invalid on its own
        body(other, n=3, severity="high"),
        body(account, n=0),  # already reported
        body(account, n=1),  # the same as the first item
        {**body(account, n=4), "account": "acct_nobody"},
        "not an object",
        body(account, n=5, api_key=keys[0].prefix),
    ]
    response = detector.post("/api/v1/violations/batch/", {"violations": items}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    results = data["results"]
    assert (data["created"], data["replayed"], data["failed"]) == (3, 2, 3)
    assert [r.get("external_id") for r in results] == ["evt-1", None, "evt-3", "evt-0", "evt-1", None, None,
                                                       "evt-5"]
    assert results[0]["created"] is True and results[4]["created"] is False and results[4]["id"] == results[0]["id"]
    assert results[3]["id"] == existing["id"] and results[3]["created"] is False
    assert results[1]["error"]["code"] == "validation_error" and list(results[1]["error"]["fields"]) == ["summary"]
    assert results[5]["error"]["fields"] == {"account": ["No account 'acct_nobody'."]}
    assert results[6]["error"]["code"] == "validation_error"
    assert results[2]["case"] != results[0]["case"] and results[7]["case"] == results[0]["case"] == existing["case"]
    assert results[2]["recommended_action"]["kind"] == "throttle"
    assert Violation.objects.count() == 4
    # One audit row per new violation, one per opened case, as the single path writes.
    assert AuditEvent.objects.filter(verb="violation.reported").count() == 4
    assert AuditEvent.objects.filter(verb="case.opened").count() == 2
    assert Case.objects.get(account=other).severity == "high"


def test_batch_matches_the_single_path_for_act_first(make_client, account, keys):
    trusted = make_client("violations:write", trusted=True)
    items = [body(account, n=1, rule="security-abuse", severity="critical"),
             body(account, n=2, rule="security-abuse", severity="critical")]
    results = trusted.post("/api/v1/violations/batch/", {"violations": items}, format="json").json()["results"]
    action = EnforcementAction.objects.get()
    assert action.kind == "suspend" and action.act_first and action.case.needs_lead_review
    assert [r["act_first_action"] for r in results] == [action.pk, None]


def test_batch_counts_strikes_as_the_single_path_does(detector, account, report, as_lead):
    earlier = report(account).violation.case_id
    warning = services.action_propose(actor=as_lead, case_id=earlier, kind="warning", reason="First time.")
    services.action_apply(action_id=warning.pk)
    services.case_resolve(actor=as_lead, case_id=earlier, resolution="Fixed.")
    batch = detector.post("/api/v1/violations/batch/", {"violations": [body(account, n=1)]}, format="json").json()
    single = detector.post("/api/v1/violations/", body(account, n=2), format="json").json()
    assert batch["results"][0]["recommended_action"] == single["recommended_action"] == {
        "kind": "throttle", "reason": "medium severity, 1 strike in 90 days -> throttle", "act_first": False}
    assert batch["results"][0]["case"] == single["case"] != earlier


def test_batch_queries_do_not_grow_with_its_items(detector, django_assert_max_num_queries):
    accounts = [AccountFactory() for _ in range(3)]
    small = [body(accounts[n % 3], n=n) for n in range(9)]
    large = [body(accounts[n % 3], n=n) for n in range(100, 400)]
    with django_assert_max_num_queries(40) as small_queries:
        detector.post("/api/v1/violations/batch/", {"violations": small}, format="json")
    with django_assert_max_num_queries(40) as large_queries:
        response = detector.post("/api/v1/violations/batch/", {"violations": large}, format="json")
    assert response.json()["created"] == 300

    def not_inserts(queries):  # SQLite splits a bulk INSERT into chunks of 999 parameters; PostgreSQL does not
        return [q for q in queries.captured_queries if not q["sql"].startswith("INSERT")]

    # The small batch opened the three cases; otherwise the same queries, whatever the number of items.
    assert len(not_inserts(large_queries)) <= len(not_inserts(small_queries))


@pytest.mark.parametrize(
    "payload", [{}, {"violations": []}, {"violations": "x"}, {"violations": [{}] * 501}, ["not", "an", "object"]]
)
def test_a_bad_batch_envelope_is_400(detector, payload):
    assert_error(detector.post("/api/v1/violations/batch/", payload, format="json"), 400, "validation_error")


def test_batch_needs_violations_write_and_replays_with_an_idempotency_key(make_client, detector, account):
    assert_error(make_client("cases:read").post("/api/v1/violations/batch/", {"violations": [body(account)]},
                                                format="json"), 403, "forbidden")
    payload = {"violations": [body(account, n=1), body(account, n=2)]}
    first = detector.post("/api/v1/violations/batch/", payload, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    retry = detector.post("/api/v1/violations/batch/", payload, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert first.json()["created"] == 2 and retry.json() == first.json()
    assert Violation.objects.count() == 2


# --------------------------------------------------------------------------- read, list, dismiss


def test_list_and_read_with_filters_and_pagination(make_client, account, report):
    reader = make_client("cases:read")
    other = AccountFactory()
    mine = [report(account, rule="rate-limit-overuse", severity="low").violation for _ in range(3)]
    report(other, rule="spam-fraud", severity="high")
    page = reader.get("/api/v1/violations/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"] and page["previous"] is None
    assert reader.get(page["next"]).json()["previous"]
    filtered = reader.get("/api/v1/violations/", {"account": account.public_id}).json()["results"]
    assert [v["id"] for v in filtered] == [v.pk for v in reversed(mine)]
    assert [v["rule"] for v in reader.get("/api/v1/violations/", {"rule": "spam-fraud"}).json()["results"]] == [
        "spam-fraud"]
    detail = reader.get(f"/api/v1/violations/{mine[0].pk}/").json()
    assert detail["id"] == mine[0].pk and detail["account"] == account.public_id
    assert_error(reader.get("/api/v1/violations/", {"severity": "extreme"}), 400, "validation_error",
                 fields=["severity"])


def test_a_detector_without_cases_read_sees_only_its_own_reports(detector, make_client, account, report):
    other_report = report(account).violation
    own = detector.post("/api/v1/violations/", body(account), format="json").json()
    assert [v["id"] for v in detector.get("/api/v1/violations/").json()["results"]] == [own["id"]]
    assert detector.get(f"/api/v1/violations/{own['id']}/").status_code == 200
    assert_error(detector.get(f"/api/v1/violations/{other_report.pk}/"), 404, "not_found")
    assert_error(make_client("audit:read").get("/api/v1/violations/"), 403, "forbidden")


def test_dismiss(make_client, account, report):
    violation = report(account).violation
    agent = make_client("cases:write")
    response = agent.post(f"/api/v1/violations/{violation.pk}/dismiss/", {"reason": "False positive."},
                          format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "dismissed" and response.json()["dismissed_reason"] == "False positive."
    assert AuditEvent.objects.filter(verb="violation.dismissed", target_id=str(violation.pk)).exists()
    assert_error(agent.post(f"/api/v1/violations/{violation.pk}/dismiss/", {"reason": " "}, format="json"), 400,
                 "validation_error", fields=["reason"])
    assert_error(agent.post(f"/api/v1/violations/{missing_pk(Violation)}/dismiss/", {"reason": "x"}, format="json"),
                 404, "not_found")
    assert_error(make_client("violations:write").post(f"/api/v1/violations/{violation.pk}/dismiss/", {},
                                                      format="json"), 403, "forbidden")
