"""Pages and reads that must not grow with the data: a fixed number of queries whatever the number of actions,
keys or violations, and the same answers as before they were made cheap."""

import random

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import edge
from accounts.models import Account, APIKey
from enforcement import services
from enforcement.admin.accounts import KEYS_PER_PAGE
from enforcement.models import SEVERITY_RANK, Case, EnforcementAction, Rule, Severity, Violation
from enforcement.selectors import CASE_QUEUE_ORDERING, CLOSED_CASES_ORDERING
from enforcement.services.recommendations import recommend, worst_open_violation
from tests.factories import (
    AccountFactory,
    APIKeyFactory,
    CaseFactory,
    EnforcementActionFactory,
    UserFactory,
    token_client,
)
from tests.query_plans import plan_using_only


def queries(fn) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured), [query["sql"] for query in captured]


def open_case(account) -> Case:
    return CaseFactory(account=account, status=Case.Status.OPEN, severity="high")


def actions_in_force(account, case, n: int, keys=()) -> list[EnforcementAction]:
    """``n`` throttles in force; every other one restricts the given keys only (the rest: every key)."""
    made = []
    for i in range(n):
        action = EnforcementActionFactory(case=case, kind="throttle", rate_limit_per_minute=10 + i)
        if keys and i % 2:
            action.keys.set(keys)
        made.append(action)
    return made


@pytest.fixture
def api(db):
    return token_client("scale-reader", ["cases:read"])


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(UserFactory(username="scale-root", is_superuser=True))
    return client


# --------------------------------------------------------------------------- standing


def test_standing_is_a_constant_number_of_queries_whatever_the_actions_in_force(api):
    def standing_queries(n_actions: int) -> int:
        account = AccountFactory()
        keys = [APIKeyFactory(account=account) for _ in range(3)]
        actions_in_force(account, open_case(account), n_actions, keys=keys[:1])
        url = f"/api/v1/accounts/{account.public_id}/standing/"
        api.get(url)  # the token's first use of the minute is recorded: not the standing's own
        count, _ = queries(lambda: api.get(url))
        response = api.get(url)
        assert response.status_code == 200
        body = response.json()
        assert len(body["active_actions"]) == n_actions
        assert {action["account"] for action in body["active_actions"]} == {account.public_id}
        assert [action["keys"] for action in body["active_actions"][:2]] == [[], [keys[0].prefix]]
        return count

    assert standing_queries(2) == standing_queries(40)


# --------------------------------------------------------------------------- the account page


def test_account_page_is_a_constant_number_of_queries_whatever_the_keys(staff_client):
    def page_queries(n_keys: int) -> int:
        account = AccountFactory()
        keys = [APIKeyFactory(account=account) for _ in range(n_keys)]
        actions_in_force(account, open_case(account), 4, keys=keys[:2])
        url = f"/admin/accounts/account/{account.pk}/change/"
        assert staff_client.get(url).status_code == 200
        count, _ = queries(lambda: staff_client.get(url))
        return count

    assert page_queries(3) == page_queries(KEYS_PER_PAGE + 30)


def test_account_page_lists_keys_by_the_page_with_a_summary(staff_client):
    account = AccountFactory()
    keys = sorted((APIKeyFactory(account=account) for _ in range(KEYS_PER_PAGE + 5)), key=lambda k: k.prefix)
    APIKey.objects.filter(pk__in=[k.pk for k in keys[:3]]).update(status="suspended")
    url = f"/admin/accounts/account/{account.pk}/change/"

    first = staff_client.get(url)
    assert [row["key"].pk for row in first.context["keys"]] == [k.pk for k in keys[:KEYS_PER_PAGE]]
    summary = first.content.decode().split('id="key-summary">')[1].split("</p>")[0]
    assert summary.startswith(f"{KEYS_PER_PAGE + 5} keys: {KEYS_PER_PAGE + 2} active, 3 suspended")
    assert "?keys=2#keys" in first.content.decode()

    second = staff_client.get(url, {"keys": "2"})
    assert [row["key"].pk for row in second.context["keys"]] == [k.pk for k in keys[KEYS_PER_PAGE:]]
    for bad in ("0", "x", "999999999999999999999"):  # a bad page number shows a page, never an error
        assert staff_client.get(url, {"keys": bad}).status_code == 200


def test_account_page_imposed_by_is_what_restricts_key_says(staff_client):
    account = AccountFactory()
    keys = [APIKeyFactory(account=account) for _ in range(6)]
    case = open_case(account)
    actions = actions_in_force(account, case, 5, keys=keys[2:4])
    EnforcementActionFactory(case=case, kind="warning")  # in force, restricts nothing
    services.account_keys_recompute(account_id=account.pk)
    response = staff_client.get(f"/admin/accounts/account/{account.pk}/change/")
    rows = {row["key"].pk: [action.pk for action in row["imposed_by"]] for row in response.context["keys"]}
    in_force = EnforcementAction.objects.filter(account=account, status="applied").prefetch_related("keys")
    expected = {
        key.pk: [a.pk for a in in_force.order_by("created_at") if services.restricts_key(a, key.pk)] for key in keys
    }
    assert rows == expected
    assert set(rows[keys[2].pk]) == {a.pk for a in actions} and set(rows[keys[0].pk]) == {a.pk for a in actions[::2]}


def test_account_page_reads_the_edge_store_in_one_batch(staff_client, monkeypatch):
    account = AccountFactory()
    keys = [APIKeyFactory(account=account) for _ in range(5)]
    store = edge.get_store()
    store.publish([edge.KeyRecord.of(key) for key in keys[:3]])
    single_reads = []
    monkeypatch.setattr(type(store), "get", lambda self, sha: single_reads.append(sha))
    response = staff_client.get(f"/admin/accounts/account/{account.pk}/change/")
    assert single_reads == []
    published = {row["key"].pk: row["edge"]["published"] for row in response.context["keys"]}
    assert published == {key.pk: key in keys[:3] for key in keys}


# --------------------------------------------------------------------------- the ladder's advice


def reference_worst(case: Case) -> Violation | None:
    """The advice's violation as it was picked before: every open violation loaded, the max taken in Python."""
    rows = list(case.violations.filter(status="open").select_related("rule").order_by("-rule__act_first",
                                                                                       "-reported_at"))
    return max(rows, key=lambda v: (SEVERITY_RANK[v.severity], v.rule.auto_action), default=None)


def violation(case, rule, severity, n, *, status="open"):
    return Violation.objects.create(
        account=case.account, case=case, rule=rule, severity=severity, source="scale-test",
        external_id=f"s-{case.pk}-{n}", reported_by="test", observed_at=case.opened_at, summary="x",
        evidence={"blob": "e" * 2000}, status=status,
    )


def test_recommendation_picks_as_before_reading_one_violation_without_its_evidence(db):
    case = open_case(AccountFactory())
    rules = list(Rule.objects.order_by("code"))
    rng = random.Random(18)
    for n in range(60):
        violation(case, rng.choice(rules), rng.choice(Severity.values), n,
                  status=rng.choice(["open", "open", "dismissed"]))
    expected = reference_worst(case)
    now = timezone.now()

    count, sql = queries(lambda: services.recommendation_for(case, now=now))
    assert worst_open_violation(case.pk).pk == expected.pk
    assert services.recommendation_for(case, now=now) == recommend(
        expected.rule, expected.severity, case, expected.source_trusted, now
    )
    violation_reads = [q for q in sql if 'FROM "enforcement_violation"' in q]
    assert len(violation_reads) == 1 and '"evidence"' not in violation_reads[0] and "LIMIT 1" in violation_reads[0]
    assert count == 2  # the violation, then the strikes


def test_recommendation_prefers_a_rule_that_allows_automatic_action_then_act_first(db):
    case = open_case(AccountFactory())
    research = Rule.objects.get(code="security-research")  # never actioned automatically
    assert not research.auto_action
    violation(case, research, "critical", 1)
    plain = violation(case, Rule.objects.get(code="covert-tracking"), "critical", 2)
    assert worst_open_violation(case.pk).pk == plain.pk == reference_worst(case).pk
    act_first = violation(case, Rule.objects.get(code="spam-fraud"), "critical", 3)
    violation(case, Rule.objects.get(code="covert-tracking"), "critical", 4)  # later, but not act-first
    assert Rule.objects.get(code="spam-fraud").act_first
    assert worst_open_violation(case.pk).pk == act_first.pk == reference_worst(case).pk
    Violation.objects.filter(case=case).update(status="dismissed")
    assert worst_open_violation(case.pk) is None
    assert services.recommendation_for(case).kind is None


# --------------------------------------------------------------------------- the queue and the API lists


def test_queue_rule_filter_by_rule_id_and_closed_cases_by_closing_time(staff_client):
    def listed(response):
        assert response.status_code == 200
        return [case.pk for case in response.context["cl"].result_list]

    now = timezone.now()
    spam, tracking = Rule.objects.get(code="spam-fraud"), Rule.objects.get(code="covert-tracking")
    closed = [CaseFactory(closed_at=now - timezone.timedelta(days=days)) for days in (5, 1, 3)]
    live = open_case(AccountFactory())
    for n, case in enumerate([*closed, live]):
        violation(case, tracking, "low", n)
    violation(closed[2], spam, "high", 10)
    violation(live, spam, "high", 11)

    assert listed(staff_client.get("/admin/enforcement/case/", {"status": "closed"})) == [
        closed[1].pk, closed[2].pk, closed[0].pk]
    assert listed(staff_client.get("/admin/enforcement/case/", {"rule": "spam-fraud"})) == [live.pk]
    assert sorted(listed(staff_client.get("/admin/enforcement/case/", {"rule": "spam-fraud", "status": "all"}))) == \
        sorted([live.pk, closed[2].pk])
    assert listed(staff_client.get("/admin/enforcement/case/", {"rule": "no-such-rule", "status": "all"})) == []
    count, sql = queries(lambda: staff_client.get("/admin/enforcement/case/", {"rule": "spam-fraud"}))
    assert not any('"enforcement_rule"."code"' in q and "EXISTS" in q for q in sql)


def test_api_case_status_filter_has_no_distinct(api):
    live = open_case(AccountFactory())
    closed = CaseFactory()
    api.get("/api/v1/cases/")
    _, sql = queries(lambda: api.get("/api/v1/cases/", {"status": ["open", "closed"], "severity": "high"}))
    assert not any("DISTINCT" in q for q in sql)
    body = api.get("/api/v1/cases/", {"status": "open"}).json()
    assert [case["id"] for case in body["results"]] == [live.pk]
    body = api.get("/api/v1/cases/", {"status": ["open", "closed"]}).json()
    assert [case["id"] for case in body["results"]] == [closed.pk, live.pk]


def test_approvals_queue_is_a_constant_number_of_queries(staff_client):
    def page_queries(n: int) -> int:
        for _ in range(n):
            EnforcementActionFactory(case=open_case(AccountFactory()), kind="suspend", status="awaiting_approval",
                                     applied_at=None, created_at=timezone.now())
        url = "/admin/enforcement/enforcementaction/approvals/"
        response = staff_client.get(url)
        assert response.status_code == 200
        assert len(response.context["rows"]) == EnforcementAction.objects.filter(status="awaiting_approval").count()
        count, _ = queries(lambda: staff_client.get(url))
        return count

    assert page_queries(2) == page_queries(12)


# --------------------------------------------------------------------------- the indexes behind them


@pytest.mark.postgres  # the expression, partial and trigram indexes are PostgreSQL's (migrations skip them on SQLite)
@pytest.mark.parametrize(("query", "index"), [
    (lambda: Account.objects.filter(email__iexact="Ops@Example.com").order_by(), "accounts_account_email_upper_prefix"),
    (lambda: Account.objects.filter(email__istartswith="ops12").order_by(), "accounts_account_email_upper_prefix"),
    (lambda: Account.objects.filter(name__icontains="nalyti").order_by(), "accounts_account_name_trgm"),
    (lambda: Case.objects.order_by(*CASE_QUEUE_ORDERING)[:100], "case_queue_order_idx"),
    (lambda: Case.objects.open().filter(review_due_at__isnull=True).order_by(*CASE_QUEUE_ORDERING)[:100],
     "case_open_queue_order_idx"),
    (lambda: Case.objects.filter(status="closed").order_by(*CLOSED_CASES_ORDERING)[:100], "case_closed_idx"),
    (lambda: Violation.objects.filter(case_id=1, rule_id=2).order_by().values("pk")[:1], "violation_case_rule_idx"),
    (lambda: EnforcementAction.objects.filter(applied_at__isnull=False).order_by("-applied_at", "-id")[:100],
     "action_applied_idx"),
])
def test_the_scale_queries_match_their_indexes(db, query, index):
    """The SQL Django writes for each search and ordering is one its index serves: an expression that differs
    by a cast would silently leave the index unused (``tests/query_plans.py`` asks without the table's size
    mattering)."""
    assert index in plan_using_only(index, query(), bitmap="account" in index)
