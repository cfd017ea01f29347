"""A full API key typed into the case search finds the case, and the key is in no request URL: not the
search's, not a redirect's, not a pagination link's (access logs, browser history and Referer headers)."""

import pytest

from enforcement.models import Case

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_full_key_in_the_case_search_never_reaches_a_url(open_session, console_data):
    from playwright.sync_api import expect

    northwind = console_data["northwind"]
    key = northwind.test_keys[0]  # the factory keeps the token on the instance; the database never has it
    case = Case.objects.get(account=northwind)
    agent = open_session("alex.agent")
    agent.goto("/admin/enforcement/case/")
    requested = []
    agent.on("request", lambda request: requested.append(request.url))
    agent.fill("#searchbar", key.token)  # a leaked key pasted by a hurried agent
    agent.press("#searchbar", "Enter")
    rows = agent.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"#{case.pk}")
    assert requested, "the search made no request"
    secret_part = key.token[16:]
    assert not [url for url in requested if secret_part in url], requested
    assert secret_part not in agent.url and secret_part not in agent.content()
