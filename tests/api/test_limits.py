"""Hostile input is a 4xx, never a 500: bodies too large or nested too deep, numbers and characters the
database cannot store, cursors and query parameters the API did not make, ids larger than any stored."""

import base64
import io
import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from enforcement.models import Case, Violation
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db

LIMIT = 1024 * 1024
DEEP = "[" * 100_000 + "]" * 100_000
BIG_ID = "99999999999999999999"  # 20 digits: past 2**63 - 1
OVER_MAX_ID = str(2**63)  # 19 digits, one past the largest id a database here stores


def post_raw(client, url, body, method="POST", **extra):
    return client.generic(method, url, body, content_type="application/json", **extra)


def report_body(account, **extra) -> dict:
    return {"account": account.public_id, "rule": "spam-fraud", "source": "limits", "external_id": "e-1",
            "summary": "Seen.", **extra}


# --------------------------------------------------------------------------- size


def test_the_default_limit_is_one_mebibyte(settings):
    assert settings.API_MAX_BODY_BYTES == LIMIT == settings.DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.mark.parametrize("url, method", [
    ("/api/v1/violations/", "POST"), ("/api/v1/violations/batch/", "POST"), ("/api/v1/accounts/acct_x/", "PUT"),
    ("/api/v1/gate/check/", "POST"), ("/api/v1/cases/1/comment/", "POST"), ("/api/v1/nowhere/", "POST"),
])
def test_a_2_mb_body_is_a_413_on_every_route_before_authentication(full_client, anon_client, url, method):
    body = json.dumps({"summary": "x" * 2_000_000})
    for client in (full_client, anon_client):
        error = assert_error(post_raw(client, url, body, method), 413, "payload_too_large")
        assert str(LIMIT) in error["message"]


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_refused(full_client, account, settings):
    settings.API_MAX_BODY_BYTES = 4096
    body = json.dumps(report_body(account))
    padded = body[:-1] + " " * (4096 - len(body)) + "}"
    assert len(padded) == 4096
    assert post_raw(full_client, "/api/v1/violations/", padded).status_code == 201
    assert_error(post_raw(full_client, "/api/v1/violations/", padded + " "), 413, "payload_too_large")


def test_a_body_of_unknown_length_is_measured_as_it_is_read(full_client, account, settings):
    """A chunked body reaches Django without a Content-Length; a server that ends the stream itself says
    ``wsgi.input_terminated`` (gunicorn does). Over the limit: 413; within it: read as any other body."""
    settings.API_MAX_BODY_BYTES = 4096

    def chunked(body: str) -> dict:  # the environ gunicorn makes of a chunked request
        return {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True,
                "wsgi.input": io.BytesIO(body.encode())}

    big = json.dumps(report_body(account, evidence={"padding": "x" * 5000}))
    assert_error(post_raw(full_client, "/api/v1/violations/", "", **chunked(big)), 413, "payload_too_large")
    assert not Violation.objects.exists()
    response = post_raw(full_client, "/api/v1/violations/", "", **chunked(json.dumps(report_body(account))))
    assert response.status_code == 201, response.content
    assert Violation.objects.get().summary == "Seen."


def test_request_data_too_big_from_django_is_a_413_too(full_client, settings):
    """Should Django's own limit ever be the smaller one, its RequestDataTooBig is a 413, not a 500."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = post_raw(APIClient(), "/api/v1/integrations/github/secret-scanning/", "[" + " " * 2000 + "]")
    assert_error(response, 413, "payload_too_large")


# --------------------------------------------------------------------------- nesting, numbers, characters


@pytest.mark.parametrize("url, method", [
    ("/api/v1/violations/", "POST"), ("/api/v1/violations/batch/", "POST"), ("/api/v1/accounts/acct_x/", "PUT"),
    ("/api/v1/keys/sk_live_abcdefgh/", "PUT"), ("/api/v1/gate/check/", "POST"), ("/api/v1/appeals/", "POST"),
])
def test_a_body_nested_100000_deep_is_a_400_on_every_json_route(full_client, url, method):
    error = assert_error(post_raw(full_client, url, DEEP, method), 400, "too_deep")
    assert "deeper than 32" in error["message"]


def test_evidence_nested_5000_deep_is_a_400(full_client, account):
    body = json.dumps(report_body(account))[:-1] + ', "evidence": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}"
    assert_error(post_raw(full_client, "/api/v1/violations/", body), 400, "too_deep")
    assert not Violation.objects.exists()


def test_depth_32_is_accepted_and_33_refused(full_client, account):
    """The body's own object is level 1; an unknown field is ignored once parsed."""

    def body(depth: int) -> str:
        return json.dumps(report_body(account))[:-1] + ', "extra": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"

    assert_error(post_raw(full_client, "/api/v1/violations/", body(33)), 400, "too_deep")
    assert post_raw(full_client, "/api/v1/violations/", body(32)).status_code == 201


@pytest.mark.parametrize("evidence", ['{"a": 1e400}', '{"a": [-1e999]}', '{"a": NaN}', '{"a": Infinity}'])
def test_numbers_no_database_can_store_are_a_400(full_client, account, evidence):
    body = json.dumps(report_body(account))[:-1] + f', "evidence": {evidence}}}'
    assert_error(post_raw(full_client, "/api/v1/violations/", body), 400, "non_finite_number")
    assert not Violation.objects.exists()


@pytest.mark.parametrize("field, value, where", [
    ("summary", "before\u0000after", "The string at summary"),
    ("external_id", "\u0000", "The string at external_id"),
    ("evidence", {"note": "a\u0000b"}, "The string at evidence.note"),
    ("evidence", {"na\u0000me": 1}, "A key of evidence"),
    ("evidence", {"list": [["\u0000"]]}, "The string at evidence.list.0.0"),
    ("summary", "\ud800", "The string at summary"),
])
def test_nul_and_unpaired_surrogates_in_any_string_are_a_400(full_client, account, field, value, where):
    body = json.dumps(report_body(account, **{field: value}))  # json.dumps escapes them as \u0000, \ud800
    error = assert_error(post_raw(full_client, "/api/v1/violations/", body), 400, "forbidden_character")
    assert error["message"].startswith(f"{where} contains a NUL character")
    assert not Violation.objects.exists() and not Case.objects.exists()


def test_a_raw_nul_byte_and_nul_in_names_are_a_400(full_client, account):
    raw = json.dumps(report_body(account)).replace("Seen.", "Se\x00en.")
    assert_error(post_raw(full_client, "/api/v1/violations/", raw), 400, "forbidden_character")
    body = json.dumps({"name": "Acme\u0000", "email": "ops@acme.test"})
    assert_error(post_raw(full_client, "/api/v1/accounts/acct_nul/", body, "PUT"), 400, "forbidden_character")


def test_a_literal_backslash_u0000_is_just_text(full_client, account):
    response = full_client.post("/api/v1/violations/", report_body(account, summary="\\u0000"), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["summary"] == "\\u0000"


def test_a_batch_with_a_nested_item_is_refused_whole(full_client, account):
    items = [report_body(account, external_id=f"e-{n}") for n in range(3)]
    body = json.dumps({"violations": items})[:-2] + ", " + "[" * 40 + "]" * 40 + "]}"
    assert_error(post_raw(full_client, "/api/v1/violations/batch/", body), 400, "too_deep")
    assert not Violation.objects.exists()


# --------------------------------------------------------------------------- cursors and query parameters


def b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


@pytest.mark.parametrize("cursor", [
    "cD1hYmM=",  # p=abc: a position that is not an id
    "garbage", "%%%", "é", "=", b64(b"\xff\xfe"), b64(b"o=-1"), b64(b"r=x"), b64(b"o=" + b"9" * 5000),
    b64(b"p=" + BIG_ID.encode()), b64(b"p=" + b"9" * 5000), b64(b"p=1.5"), b64(b"p=\x00"),
])
@pytest.mark.parametrize("url", ["/api/v1/cases/", "/api/v1/violations/", "/api/v1/audit-events/",
                                 "/api/v1/actions/", "/api/v1/appeals/"])
def test_a_cursor_the_api_did_not_make_is_a_400(full_client, url, cursor):
    error = assert_error(full_client.get(url, {"cursor": cursor}), 400, "invalid_cursor", fields=["cursor"])
    assert "next or previous link" in error["message"]


def test_a_text_cursor_with_nul_is_a_400_and_real_cursors_still_page(full_client):
    """The rule list pages by code (text): PostgreSQL refuses NUL in a comparison."""
    assert_error(full_client.get("/api/v1/rules/", {"cursor": b64(b"p=spam\x00")}), 400, "invalid_cursor")
    first = full_client.get("/api/v1/rules/", {"page_size": 2}).json()
    second = full_client.get(first["next"]).json()
    assert second["results"] and second["results"][0]["code"] > first["results"][-1]["code"]
    back = full_client.get(second["previous"])
    assert back.status_code == 200 and back.json()["results"] == first["results"]


@pytest.mark.parametrize("page_size", ["abc", "0", "-1", "1.5", "9" * 30, "١٢"])
def test_a_page_size_that_is_not_a_whole_number_is_a_400(full_client, page_size):
    assert_error(full_client.get("/api/v1/cases/", {"page_size": page_size}), 400, "validation_error",
                 fields=["page_size"])


def test_a_page_size_over_the_maximum_is_the_maximum(full_client):
    assert full_client.get("/api/v1/cases/", {"page_size": "100000"}).status_code == 200


def test_too_many_query_parameters_is_a_400(full_client):
    response = full_client.get("/api/v1/cases/?" + "&".join(["status=open"] * 1500))
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("url, name, value", [
    ("/api/v1/violations/", "case", BIG_ID), ("/api/v1/actions/", "case", BIG_ID),
    ("/api/v1/appeals/", "action", BIG_ID), ("/api/v1/appeals/", "case", "9" * 5000),
    ("/api/v1/audit-events/", "case", OVER_MAX_ID), ("/api/v1/violations/", "case", "abc"),
    ("/api/v1/cases/", "overdue", "perhaps"), ("/api/v1/cases/", "status", "nonsense"),
    ("/api/v1/audit-events/", "since", "9999-12-31T23:59:59-14:00"),
    ("/api/v1/audit-events/", "since", "0001-01-01T00:00:00+14:00"),
    ("/api/v1/audit-events/", "since", "2026-13-01T00:00:00Z"),
    ("/api/v1/cases/", "account", "acct\u0000"),
])
def test_malformed_filters_are_a_400(full_client, url, name, value):
    assert_error(full_client.get(url, {name: value}), 400, "validation_error", fields=[name])


# --------------------------------------------------------------------------- ids in paths

READS = ["/api/v1/cases/{}/", "/api/v1/violations/{}/", "/api/v1/actions/{}/", "/api/v1/appeals/{}/",
         "/api/v1/audit-events/{}/"]
WRITES = [
    ("/api/v1/violations/{}/dismiss/", {"reason": "r"}), ("/api/v1/cases/{}/assign/", {"assignee": None}),
    ("/api/v1/cases/{}/comment/", {"body": "b"}), ("/api/v1/cases/{}/resolve/", {"resolution": "r"}),
    ("/api/v1/cases/{}/actions/", {"kind": "warning", "reason": "r"}), ("/api/v1/actions/{}/approve/", {}),
    ("/api/v1/actions/{}/cancel/", {"reason": "r"}), ("/api/v1/actions/{}/revert/", {"reason": "r"}),
    ("/api/v1/appeals/{}/decide/", {"outcome": "upheld", "note": "n"}),
]


@pytest.mark.parametrize("huge", [OVER_MAX_ID, "9" * 19, BIG_ID, "9" * 5000])
def test_an_id_larger_than_any_stored_is_a_404_on_every_path(full_client, huge):
    for url in READS:
        assert_error(full_client.get(url.format(huge)), 404, "not_found")
    for url, body in WRITES:
        assert_error(full_client.post(url.format(huge), body, format="json"), 404, "not_found")


def test_an_appeal_of_an_action_id_larger_than_any_stored_is_a_400(full_client):
    response = full_client.post("/api/v1/appeals/", {"action": int(BIG_ID), "message": "m"}, format="json")
    assert_error(response, 400, "validation_error", fields=["action"])


# --------------------------------------------------------------------------- outside the API


def test_a_2_mb_post_to_the_admin_is_a_plain_413_page(lead):
    client = Client()
    client.force_login(lead)
    response = client.post("/admin/enforcement/violation/report/", {"summary": "x" * 2_000_000})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"Payload Too Large" in response.content and str(LIMIT).encode() in response.content
