"""POST /api/v1/gate/check/: scope gate:check, the decision as API.md has it, errors in the one shape."""

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts import edge
from accounts.tokens import generate_token
from enforcement.models import AuditEvent
from tests.factories import token_client

pytestmark = pytest.mark.django_db

URL = reverse("gate-check")


def client_with(*scopes):
    return token_client(f"edge-{'-'.join(scopes) or 'none'}", list(scopes))


@pytest.fixture
def gate_client(db):
    return client_with("gate:check")


def test_the_gate_answers_with_the_decision(store, gate_client, account, keys):
    edge.publish_keys(account_id=account.pk)
    response = gate_client.post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"allowed": True, "reason": "ok", "limit": 100, "remaining": 99, "retry_after": 0}

    response = gate_client.post(URL, {"key": generate_token("secret"), "ip": "203.0.113.5"}, format="json")
    assert response.json() == {"allowed": False, "reason": "unknown_key", "limit": 0, "remaining": 0,
                               "retry_after": 0}


def test_a_rate_limited_answer_carries_retry_after(store, gate_client, keys):
    key = keys[1]
    store.publish([edge.KeyRecord(key.token_sha256, key.prefix, "throttled", 60, 1, key.state_version)])
    first = gate_client.post(URL, {"key": key.token, "ip": "203.0.113.5"}, format="json")
    assert first.json()["reason"] == "throttled"
    second = gate_client.post(URL, {"key": key.token, "ip": "203.0.113.5"}, format="json")
    body = second.json()
    assert (second.status_code, body["allowed"], body["reason"], body["limit"]) == (200, False, "rate_limited", 1)
    assert 1 <= body["retry_after"] <= 60
    assert second["Retry-After"] == str(body["retry_after"])


def test_the_gate_writes_nothing_to_the_database(store, gate_client, keys, django_assert_num_queries):
    edge.publish_keys(key_ids=[keys[1].pk])
    events = AuditEvent.objects.count()
    gate_client.post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")  # the token is cached
    with django_assert_num_queries(0):  # the token verified from the cache; the decision from the edge store
        response = gate_client.post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")
    assert response.json()["allowed"] is True
    assert AuditEvent.objects.count() == events


def test_the_origin_the_edge_saw_is_passed_on(store, gate_client, account, keys, settings):
    """A secret key from a web page: remembered for the console, and under refuse refused (wrong_key_type)."""
    edge.publish_keys(account_id=account.pk)
    body = {"key": keys[1].token, "ip": "203.0.113.5", "origin": "https://shop.example.com"}
    assert gate_client.post(URL, body, format="json").json()["reason"] == "ok"
    assert [s.origin for s in store.browser_sightings()] == ["https://shop.example.com"]

    settings.EDGE_BROWSER_SECRET = "refuse"
    response = gate_client.post(URL, body, format="json")
    assert response.json() == {"allowed": False, "reason": "wrong_key_type", "limit": 0, "remaining": 0,
                               "retry_after": 0}
    assert "Retry-After" not in response
    # An origin that is not a web page's, or none at all, changes nothing.
    for origin in ("", None, "null", "x" * 5000):
        response = gate_client.post(URL, {**body, "origin": origin}, format="json")
        assert response.json()["reason"] == "ok", origin
    publishable = {**body, "key": keys[0].token}
    assert gate_client.post(URL, publishable, format="json").json()["reason"] == "ok"


def test_without_a_token_the_gate_is_401(store, keys):
    response = APIClient().post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_token_without_the_gate_scope_is_403(store, keys):
    response = client_with("cases:read").post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_an_auditor_may_not_call_the_gate_an_agent_may(store, keys, auditor, agent):
    """A gate call takes from the key's buckets: reading the console is no reason to spend a customer's limit."""
    for user, status in ((auditor, 403), (agent, 200)):
        client = APIClient()
        client.force_login(user)
        assert client.post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json").status_code == status


def test_bad_input_is_a_validation_error(store, gate_client):
    response = gate_client.post(URL, {"key": "", "ip": "300.1.1.1"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"key", "ip"}


def test_an_unreachable_edge_store_is_503(gate_client, keys, settings):
    edge.use_store(edge.RedisEdgeStore("redis://127.0.0.1:1/0"))  # nothing listens on port 1
    try:
        response = gate_client.post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")
    finally:
        edge.use_store(None)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "edge_unavailable"


def test_the_gate_and_the_github_endpoint_are_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    gate_post = schema["paths"]["/api/v1/gate/check/"]["post"]
    assert gate_post["operationId"] == "gate_check"
    response_schema = gate_post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    decision = schema["components"]["schemas"][response_schema.rsplit("/", 1)[1]]
    assert set(decision["properties"]) == {"allowed", "reason", "limit", "remaining", "retry_after"}
    request_schema = gate_post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(schema["components"]["schemas"][request_schema.rsplit("/", 1)[1]]["properties"]) == {
        "key", "ip", "origin"
    }
    reasons = schema["components"]["schemas"][decision["properties"]["reason"]["$ref"].rsplit("/", 1)[1]]
    assert "wrong_key_type" in reasons["enum"]
    github_post = schema["paths"]["/api/v1/integrations/github/secret-scanning/"]["post"]
    assert {p["name"] for p in github_post["parameters"]} == {
        "Github-Public-Key-Identifier", "Github-Public-Key-Signature"
    }


def test_a_store_that_lost_its_data_is_503_until_rebuilt(store, gate_client, keys):
    store.clear()
    response = gate_client.post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")
    assert response.status_code == 503
    assert response.json()["error"] == {"code": "edge_unavailable", "message": edge.NOT_BUILT}
    edge.rebuild()
    response = gate_client.post(URL, {"key": keys[1].token, "ip": "203.0.113.5"}, format="json")
    assert response.json()["reason"] == "ok"
