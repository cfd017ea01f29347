"""The account page: standing, every key's live effective state, and the edge's refusals charted."""

from datetime import timedelta

from django.utils import timezone

from enforcement import services
from tests.admin.conftest import report


def test_account_standing_and_keys(agent_client, make_account, as_detector, as_lead):
    account = make_account(n_keys=3)
    earlier = report(as_detector, account, rule="secrets-in-events").violation.case
    warning = services.action_propose(actor=as_lead, case_id=earlier.pk, kind="warning", reason="first")
    services.action_apply(action_id=warning.pk)
    services.case_resolve(actor=as_lead, case_id=earlier.pk, resolution="fixed")
    case = report(as_detector, account, rule="special-category-data", severity="high").violation.case
    throttled_key = account.test_keys[0]
    throttle = services.action_propose(actor=as_lead, case_id=case.pk, kind="throttle", reason="slow",
                                       key_prefixes=[throttled_key.prefix], rate_limit_per_minute=25)
    services.action_apply(action_id=throttle.pk)

    response = agent_client.get(f"/admin/accounts/account/{account.pk}/change/")
    assert response.status_code == 200
    standing = response.context["standing"]
    assert standing["strikes"] == 2
    assert standing["open_case"].pk == case.pk
    assert [a.pk for a in standing["active_actions"]] == [warning.pk, throttle.pk]
    rows = {row["key"].prefix: row for row in response.context["keys"]}
    assert set(rows) == {k.prefix for k in account.test_keys}
    assert rows[throttled_key.prefix]["key"].status == "throttled"
    assert rows[throttled_key.prefix]["key"].rate_limit_per_minute == 25
    assert [a.pk for a in rows[throttled_key.prefix]["imposed_by"]] == [throttle.pk]
    html = response.content.decode()
    assert f'data-prefix="{throttled_key.prefix}"' in html and "of 1000" in html
    assert f"#{case.pk}" in html


def test_accounts_and_keys_are_read_only(superuser_client, make_account):
    account = make_account(n_keys=1)
    key = account.test_keys[0]
    assert superuser_client.get("/admin/accounts/account/add/").status_code == 403
    assert superuser_client.post(f"/admin/accounts/account/{account.pk}/delete/").status_code == 403
    assert superuser_client.post(f"/admin/accounts/apikey/{key.pk}/delete/").status_code == 403
    response = superuser_client.get(f"/admin/accounts/apikey/{key.pk}/change/")
    assert response.status_code == 200
    assert key.token_sha256 not in response.content.decode()


def test_key_and_account_search(agent_client, make_account):
    account = make_account(n_keys=2, email="team@findme.example")
    other = make_account(n_keys=1)
    key = account.test_keys[1]
    found = agent_client.get("/admin/accounts/account/", {"q": key.prefix}).context["cl"].result_list
    assert [a.pk for a in found] == [account.pk]
    found = agent_client.get("/admin/accounts/account/", {"q": "team@findme.example"}).context["cl"].result_list
    assert [a.pk for a in found] == [account.pk]
    found = agent_client.get("/admin/accounts/apikey/", {"q": other.public_id}).context["cl"].result_list
    assert [k.pk for k in found] == [other.test_keys[0].pk]


def test_the_account_page_shows_what_the_edge_holds(agent_client, make_account, as_detector, as_lead,
                                                     django_capture_on_commit_callbacks):
    account = make_account(n_keys=2)
    case = report(as_detector, account, rule="special-category-data", severity="high").violation.case
    with django_capture_on_commit_callbacks(execute=True):
        throttle = services.action_propose(actor=as_lead, case_id=case.pk, kind="throttle", reason="slow")
    throttle.refresh_from_db()
    assert throttle.status == "applied"
    response = agent_client.get(f"/admin/accounts/account/{account.pk}/change/")
    assert response.context["edge_problem"] is None
    for row in response.context["keys"]:
        assert row["edge"]["published"] and row["edge"]["in_sync"], row
        assert row["edge"]["record"].status == "throttled"
    assert "in sync" in response.content.decode()


def test_the_account_page_renders_when_the_edge_store_is_down(agent_client, make_account, monkeypatch):
    from accounts import edge

    account = make_account(n_keys=1)

    def unavailable():
        raise edge.EdgeUnavailable("connection refused")

    monkeypatch.setattr(edge, "get_store", unavailable)
    response = agent_client.get(f"/admin/accounts/account/{account.pk}/change/")
    assert response.status_code == 200
    assert "The edge store cannot be read: EdgeUnavailable: connection refused" in response.content.decode()


def test_the_account_page_charts_each_keys_refusals_at_the_edge(agent_client, make_account, settings):
    """A bar per window: from the gate's report for a window the store no longer keeps, from the store's
    counters for the recent ones; over the threshold in red, the threshold dashed."""
    from accounts import edge, gate
    from enforcement.actors import Actor
    from tests.factories import APIKeyFactory

    settings.EDGE_ABUSE_REFUSALS = 5
    account = make_account(n_keys=1)
    key = APIKeyFactory(account=account, kind="secret", base_rate_limit_per_minute=2)
    edge.publish_keys(account_id=account.pk)
    now = timezone.now()
    hours_ago = int(now.timestamp() * 1000) - 3 * 3600 * 1000
    for i in range(2 + 9):
        gate.check(key.token, "198.51.100.7", now_ms=hours_ago + i)
    [reported] = services.edge_findings_report(
        actor=Actor.system("gate"), now=now - timedelta(hours=3) + timedelta(minutes=1)
    ).reported
    for _ in range(2 + 3):
        gate.check(key.token, "198.51.100.7")  # now: three refused, under the threshold

    response = agent_client.get(f"/admin/accounts/account/{account.pk}/change/")
    [row] = response.context["refusal_charts"]  # the quiet key has no chart
    assert row["key"] == key and response.context["refusals_problem"] is None
    bars = row["chart"]["bars"]
    assert bars[0]["over"] and "9 refusals" in bars[0]["title"]
    assert not any(bar["over"] for bar in bars[1:]) and sum(int(b["title"].split()[-2]) for b in bars[1:]) == 3
    html = response.content.decode()
    assert f'<figure class="refusal-chart" data-prefix="{key.prefix}">' in html
    assert html.count('data-over="1"') == 1 and "stroke-dasharray" in html
    assert reported.evidence["refusals"] == 9
    # The case timeline shows the report's own window as a chart too.
    case_page = agent_client.get(f"/admin/enforcement/case/{reported.case_id}/change/").content.decode()
    assert f'<figure class="refusal-chart" data-violation="{reported.pk}">' in case_page
    assert case_page.count('data-over="1"') == 1


def test_without_refusals_the_account_page_says_so(agent_client, make_account):
    account = make_account(n_keys=1)
    response = agent_client.get(f"/admin/accounts/account/{account.pk}/change/")
    assert response.context["refusal_charts"] == []
    assert 'id="no-refusals"' in response.content.decode()
