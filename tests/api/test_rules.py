"""The AUP rule catalogue over the API."""

import pytest

from enforcement.models import Rule
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_rules_are_listed_by_code(make_client):
    Rule.objects.filter(code="impersonation").update(is_active=False)
    response = make_client("cases:read").get("/api/v1/rules/", {"page_size": 500})
    assert response.status_code == 200
    rules = response.json()["results"]
    codes = [rule["code"] for rule in rules]
    assert codes == sorted(Rule.objects.filter(is_active=True).values_list("code", flat=True))
    assert "impersonation" not in codes
    abuse = next(rule for rule in rules if rule["code"] == "security-abuse")
    assert (abuse["default_severity"], abuse["act_first"]) == ("critical", True)
    assert {"code", "title", "default_severity", "act_first"} <= set(abuse)


def test_rules_paginate_with_a_cursor(make_client):
    client = make_client("cases:read")
    first = client.get("/api/v1/rules/", {"page_size": 5}).json()
    second = client.get(first["next"]).json()
    assert [r["code"] for r in first["results"]] < [r["code"] for r in second["results"]]


def test_rules_need_cases_read(make_client, anon_client):
    assert_error(anon_client.get("/api/v1/rules/"), 401, "not_authenticated")
    assert_error(make_client("violations:write").get("/api/v1/rules/"), 403, "forbidden")
