"""The queue at volume: search that finds (accounts resolved first), saved views (sharing, owners only),
bounded counts, remembered timeline filters, the next case of a view, the approvals queue's evidence and
the front page's recent decisions."""

from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.search import matching_account_ids
from enforcement import services
from enforcement.actors import Actor
from enforcement.admin import queue
from enforcement.errors import Forbidden, NotFound, ValidationFailed
from enforcement.models import AuditEvent, Case, SavedView, StaffPreference
from tests.admin.conftest import messages_of, report

QUEUE = "/admin/enforcement/case/"


def page(case_id: int) -> str:
    return f"/admin/enforcement/case/{case_id}/change/"


@pytest.fixture
def nimbus(make_account, as_detector):
    account = make_account(n_keys=2, name="Nimbus Labs 40", email="Ops@Nimbus40.example",
                           public_id="acct_nimbus40q7x2k9")
    account.case = report(as_detector, account, rule="spam-fraud", severity="high").violation.case
    return account


@pytest.fixture
def others(make_account, as_detector):
    accounts = [make_account(n_keys=1, name=f"Orchard Foods {n}", email=f"team{n}@orchard.example")
                for n in range(3)]
    for account in accounts:
        account.case = report(as_detector, account, rule="covert-tracking", severity="medium").violation.case
    return accounts


def queue_ids(client, **params) -> set[int]:
    response = client.get(QUEUE, params)
    assert response.status_code == 200
    return {case.pk for case in response.context["cl"].result_list}


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize("term", ["nimbus", "NIMBUS labs", "Nimbus Labs 40", "nimbus40", "ACCT_NIMBUS40Q",
                                  "ops@nimbus", "OPS@NIMBUS40.EXAMPLE"])
def test_the_queue_finds_an_account_by_the_start_of_its_id_name_or_email_in_any_case(agent_client, nimbus, others,
                                                                                     term):
    assert queue_ids(agent_client, q=term) == {nimbus.case.pk}


def test_the_queue_finds_by_a_key_prefix_start_and_by_case_number(agent_client, nimbus, others):
    key = nimbus.test_keys[0]
    assert queue_ids(agent_client, q=key.prefix[:11]) == {nimbus.case.pk}  # "sk_live_" and three characters
    assert queue_ids(agent_client, q=f"#{others[1].case.pk}") == {others[1].case.pk}
    assert queue_ids(agent_client, q=str(others[2].case.pk)) == {others[2].case.pk}
    assert queue_ids(agent_client, q="orchard") == {account.case.pk for account in others}


def test_search_finds_nothing_for_what_names_no_account(agent_client, nimbus, others):
    assert queue_ids(agent_client, q="zeppelin") == set()
    assert queue_ids(agent_client, q="sk_live_ZZZZZZZZ") == set()
    assert queue_ids(agent_client, q="ni") == set()  # two letters name no account (ids match exactly only)
    assert matching_account_ids("   ") == []


def test_search_resolves_accounts_first_then_filters_cases_by_account_id(agent_client, nimbus, others):
    with CaptureQueriesContext(connection) as queries:
        assert queue_ids(agent_client, q="nimbus") == {nimbus.case.pk}
    case_queries = [q["sql"] for q in queries if 'FROM "enforcement_case"' in q["sql"] and "LIMIT" in q["sql"]]
    assert case_queries, "the queue's page query"
    for sql in case_queries:
        # The page's cases are filtered by "account_id IN (ids)", not by the accounts' columns through a join.
        assert '"accounts_account"."name"' not in sql.split("WHERE", 1)[1]
        assert "accounts_apikey" not in sql


def test_the_accounts_list_searches_the_same_way(agent_client, nimbus, others):
    def found(term):
        response = agent_client.get("/admin/accounts/account/", {"q": term})
        return {account.pk for account in response.context["cl"].result_list}

    assert found("nimbus labs") == {nimbus.pk}
    assert found("nimbus40") == {nimbus.pk}
    assert found("ops@NIMBUS") == {nimbus.pk}
    assert found(nimbus.test_keys[1].prefix[:12]) == {nimbus.pk}
    assert found("ORCHARD") == {account.pk for account in others}


def test_a_vague_term_is_bounded(make_account):
    for n in range(6):
        make_account(n_keys=0, name=f"Acme {n}")
    assert len(matching_account_ids("acme", limit=4)) == 4


# --------------------------------------------------------------------------- saved views


def test_a_staff_member_saves_the_queue_filters_as_a_view_and_it_is_audited(agent_client, agent, nimbus, others):
    response = agent_client.post(f"{QUEUE}views/save/", {
        "name": "High, mine", "query": "severity=high&p=3&assignee=me&bogus=1&_changelist_filters=x",
    }, follow=True)
    view = SavedView.objects.get(owner=agent)
    assert view.name == "High, mine" and not view.shared
    assert view.query == "assignee=me&severity=high"  # the page, unknown keys and admin plumbing are dropped
    assert any("saved" in m for m in messages_of(response))
    event = AuditEvent.objects.get(verb="saved_view.created")
    assert event.actor_user == agent and event.target_id == str(view.pk) and event.after["name"] == "High, mine"
    # Saving again under the same name updates that view (and says so in the log).
    agent_client.post(f"{QUEUE}views/save/", {"name": "High, mine", "query": "severity=critical"})
    view.refresh_from_db()
    assert view.query == "severity=critical" and SavedView.objects.count() == 1
    assert AuditEvent.objects.filter(verb="saved_view.updated").count() == 1


def test_a_view_is_private_until_shared_and_only_its_owner_changes_it(agent, lead, agent_client, lead_client):
    as_agent, as_lead = Actor.for_user(agent), Actor.for_user(lead)
    view = services.saved_view_save(actor=as_agent, name="Weekend pile", query="overdue=yes")
    assert list(services.visible_views(lead)) == []
    assert "Weekend pile" not in lead_client.get(QUEUE).content.decode()
    with pytest.raises(NotFound):
        services.saved_view_share(actor=as_lead, view_id=view.pk, shared=True)

    services.saved_view_share(actor=as_agent, view_id=view.pk, shared=True)
    assert AuditEvent.objects.filter(verb="saved_view.shared", actor_user=agent).count() == 1
    assert list(services.visible_views(lead)) == [view]
    assert "Weekend pile" in lead_client.get(QUEUE).content.decode()

    # The lead sees the shared view but may neither unshare, delete nor overwrite it.
    with pytest.raises(Forbidden):
        services.saved_view_share(actor=as_lead, view_id=view.pk, shared=False)
    with pytest.raises(Forbidden):
        services.saved_view_delete(actor=as_lead, view_id=view.pk)
    response = lead_client.post(f"{QUEUE}views/{view.pk}/delete/", follow=True)
    assert any("Only the view's owner" in m for m in messages_of(response))
    response = lead_client.post(f"{QUEUE}views/{view.pk}/share/", {}, follow=True)
    assert any("Only the view's owner" in m for m in messages_of(response))
    services.saved_view_save(actor=as_lead, name="Weekend pile", query="severity=low")  # the lead's own, same name
    view.refresh_from_db()
    assert view.shared and view.query == "overdue=yes" and SavedView.objects.filter(name="Weekend pile").count() == 2

    agent_client.post(f"{QUEUE}views/{view.pk}/delete/")
    assert not SavedView.objects.filter(pk=view.pk).exists()
    assert AuditEvent.objects.get(verb="saved_view.deleted").before["query"] == "overdue=yes"


def test_a_view_needs_a_name_and_a_person(agent, as_detector):
    with pytest.raises(ValidationFailed) as refused:
        services.saved_view_save(actor=Actor.for_user(agent), name="  ", query="severity=high")
    assert "name" in refused.value.fields
    with pytest.raises(Forbidden):
        services.saved_view_save(actor=as_detector, name="x", query="")
    assert not SavedView.objects.exists()


def test_an_outsider_saves_no_view(outsider_client):
    response = outsider_client.post(f"{QUEUE}views/save/", {"name": "mine", "query": ""})
    assert response.status_code == 403 and not SavedView.objects.exists()


def test_the_front_page_counts_each_view_bounded(agent_client, agent, nimbus, others, monkeypatch):
    as_agent = Actor.for_user(agent)
    services.saved_view_save(actor=as_agent, name="Medium", query="severity=medium")
    services.saved_view_save(actor=as_agent, name="Nimbus", query="q=nimbus")
    services.saved_view_save(actor=as_agent, name="Broken", query="severity=medium&assignee=99999999999999999999")
    tiles = {tile["view"].name: tile["count"] for tile in agent_client.get("/admin/").context["view_tiles"]}
    assert tiles == {"Medium": "3", "Nimbus": "1", "Broken": "3"}  # a number no user has is no filter
    monkeypatch.setattr(queue, "COUNT_CAP", 2)
    html = agent_client.get("/admin/").content.decode()
    assert '<span class="count">2+</span>Medium' in html and '<span class="count">1</span>Nimbus' in html


def test_bounded_count_counts_no_further_than_its_cap(nimbus, others):
    with CaptureQueriesContext(connection) as queries:
        assert queue.bounded_count(Case.objects.all(), cap=2) == "2+"
    assert "LIMIT 3" in queries[0]["sql"]
    assert queue.bounded_count(Case.objects.all(), cap=10) == "4"


# --------------------------------------------------------------------------- the case page in its view


def test_the_case_page_knows_the_previous_and_next_case_of_its_view(agent_client, nimbus, others):
    view = "severity=medium"
    ordered = [case.pk for case in agent_client.get(QUEUE, {"severity": "medium"}).context["cl"].result_list]
    assert len(ordered) == 3
    response = agent_client.get(page(ordered[1]), {queue.FILTERS_PARAM: view})
    flow = response.context["flow"]
    assert flow["position"] == 2
    assert flow["next_url"] == f"{page(ordered[2])}?{urlencode({queue.FILTERS_PARAM: view})}"
    assert flow["previous_url"].startswith(page(ordered[0]))
    assert flow["queue_url"] == f"{QUEUE}?{view}"
    html = response.content.decode()
    assert 'id="next-case"' in html and 'id="previous-case"' in html
    # A case outside the view (the high one) goes on to the view's first case.
    flow = agent_client.get(page(nimbus.case.pk), {queue.FILTERS_PARAM: view}).context["flow"]
    assert flow["position"] is None and flow["next_url"].startswith(page(ordered[0]))
    # The queue's own links carry the view to the case page.
    queue_html = agent_client.get(QUEUE, {"severity": "medium"}).content.decode()
    assert f"{page(ordered[0])}?{queue.FILTERS_PARAM}=severity%3Dmedium" in queue_html


def test_after_a_button_the_case_page_is_back_in_its_view(agent_client, nimbus, others):
    here = f"{page(others[0].case.pk)}?{urlencode({queue.FILTERS_PARAM: 'severity=medium'})}"
    response = agent_client.post(f"/admin/enforcement/case/{others[0].case.pk}/comment/",
                                 {"body": "seen", "next": here}, follow=True)
    assert response.redirect_chain[-1][0] == here
    assert response.context["flow"]["next_url"]


def test_timeline_filters_are_remembered_per_staff_member(agent_client, lead_client, agent, nimbus, as_agent):
    services.case_comment(actor=as_agent, case_id=nimbus.case.pk, body="A note about the click farm.")
    agent_client.post(f"{QUEUE}timeline-filters/", {"show": ["violation", "comment"], "next": page(nimbus.case.pk)})
    assert StaffPreference.objects.get(user=agent).timeline_hidden == ["action", "notification", "appeal", "audit"]
    kinds = {row["kind"] for row in agent_client.get(page(nimbus.case.pk)).context["timeline"]}
    assert kinds == {"violation", "comment"}
    html = agent_client.get(page(nimbus.case.pk)).content.decode()
    assert 'value="audit">' in html and 'value="comment" checked>' in html  # the boxes as left
    # Another staff member's page is untouched.
    assert "audit" in {row["kind"] for row in lead_client.get(page(nimbus.case.pk)).context["timeline"]}
    with pytest.raises(ValidationFailed):
        services.timeline_filters_save(actor=as_agent, hidden=["violation", "everything"])


def test_violations_are_grouped_by_rule_the_one_that_set_the_severity_first(agent_client, nimbus, as_detector):
    for n in range(7):
        report(as_detector, nimbus, rule="covert-tracking", severity="low", summary=f"pixel {n}")
    context = agent_client.get(page(nimbus.case.pk)).context
    groups = context["violation_groups"]
    assert [group["rule"].code for group in groups] == ["spam-fraud", "covert-tracking"]
    assert groups[0]["sets_severity"] and not groups[1]["sets_severity"]
    covert = groups[1]
    assert len(covert["rows"]) == 5 and covert["more"] == 2
    times = [row["obj"].reported_at for row in covert["rows"]]
    assert times == sorted(times, reverse=True) and covert["rows"][0]["line"] == "pixel 6"
    html = agent_client.get(page(nimbus.case.pk)).content.decode()
    assert html.index('id="decision"') < html.index('id="timeline"')
    assert html.index('id="comment-form"') < html.index('id="timeline"')  # the comment box tops the timeline


# --------------------------------------------------------------------------- approvals queue, front page


def test_the_approvals_queue_shows_account_deadline_violations_and_notice(lead_client, as_agent, nimbus):
    action = services.action_propose(actor=as_agent, case_id=nimbus.case.pk, kind="suspend", reason="click farm")
    html = lead_client.get("/admin/enforcement/enforcementaction/approvals/").content.decode()
    row = html[html.index(f'id="approval-{action.pk}"'):]
    row = row[: row.index("</tr>")]
    assert f'href="/admin/accounts/account/{nimbus.pk}/change/"' in row and "Nimbus Labs 40" in row
    assert 'class="sla' in row  # the approval deadline's countdown
    assert "spam-fraud" in row and "spam-fraud seen in events" in row
    assert f"/admin/enforcement/enforcementaction/{action.pk}/notice/" in row


def test_the_front_page_shows_the_teams_recent_decisions(agent_client, as_agent, nimbus, as_detector):
    services.action_propose(actor=as_agent, case_id=nimbus.case.pk, kind="suspend", reason="click farm")
    html = agent_client.get("/admin/").content.decode()
    assert 'id="recent-decisions"' in html and "Recent actions" not in html
    decisions = html[html.index('id="recent-decisions"'):]
    assert "proposed an action on" in decisions and f"case #{nimbus.case.pk}" in decisions
    assert "violation.reported" not in decisions  # a detector's report is not a decision


def test_a_big_cases_recommended_notice_loads_when_opened_and_is_the_same(agent_client, auditor_client, nimbus,
                                                                         monkeypatch):
    from enforcement.admin import cases

    inline = agent_client.get(page(nimbus.case.pk)).context["recommended_notice"]
    assert inline["ok"] and inline["subject"]
    monkeypatch.setattr(cases, "INLINE_NOTICE_MAX_VIOLATIONS", 0)
    response = agent_client.get(page(nimbus.case.pk))
    url = f"/admin/enforcement/case/{nimbus.case.pk}/notice/"
    assert response.context["recommended_notice"] is None and response.context["recommended_notice_url"] == url
    assert f'data-notice-url="{url}"' in response.content.decode()
    loaded = agent_client.get(url)
    assert loaded.context["notice"]["subject"] == inline["subject"]
    assert loaded.context["notice"]["text"] == inline["text"]
    assert auditor_client.get(url).status_code == 403  # may not propose: no notice to preview


def test_on_postgresql_the_account_search_is_served_by_its_indexes(nimbus):
    from django.db.models import Q

    from accounts.models import Account
    from accounts.search import account_condition

    if connection.vendor != "postgresql":
        pytest.skip("the search indexes are PostgreSQL's (migration 0003_account_search_indexes)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'accounts_account'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"accounts_account_name_trgm", "accounts_account_public_id_upper_prefix",
            "accounts_account_email_upper_prefix"} <= names
    plans = {}
    for label, condition in [("all", account_condition("nimbus")), ("name", Q(name__icontains="nimbus")),
                             ("email", Q(email__istartswith="ops@nim")), ("id", Q(public_id__istartswith="acct_nim"))]:
        sql, params = Account.objects.filter(condition).values_list("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            # A test table is tiny, so the planner would scan it or walk any index with a filter: with plain
            # scans off, only a bitmap scan whose index answers the condition itself is left.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_indexonlyscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            plans[label] = "\n".join(row[0] for row in cursor.fetchall())
    assert "accounts_account_name_trgm" in plans["name"]
    assert "accounts_account_email_upper_prefix" in plans["email"]
    assert "accounts_account_public_id_upper_prefix" in plans["id"]
    assert "Seq Scan" not in plans["all"], plans["all"]
