"""The admin's "report a violation" form takes evidence as the API does: the same parser and limits, and a
plain form error for what it refuses, never a server error."""

import pytest

from enforcement.models import Case, Violation

URL = "/admin/enforcement/violation/report/"


@pytest.fixture
def post_report(make_account):
    account = make_account(n_keys=0)

    def post(client, evidence: str):
        return client.post(URL, {
            "account": account.public_id, "rule": "secrets-in-events", "severity": "", "summary": "By hand.",
            "evidence": evidence, "external_id": "e-limits",
        })

    return post


@pytest.mark.parametrize("evidence, problem", [
    ('{"a":' * 800 + "1" + "}" * 800, "nests deeper than 32 levels"),
    ('{"a":' * 33 + "1" + "}" * 33, "nests deeper than 32 levels"),
    ('{"a":' * 12 + "1" + "}" * 12, "Evidence must nest at most 10 levels."),
    ('{"a": 1e400}', "The number 1e400 is too large to store."),
    ('{"a": NaN}', "NaN is not a JSON number."),
    ('{"note": "a\\u0000b"}', "The string at note contains a NUL character"),
    ('{"note": "\\ud800"}', "The string at note contains a NUL character (\\u0000) or an unpaired surrogate"),
    ('{"note": "' + "x" * 1_000_000 + '"}', "Evidence must be at most 65536 bytes of JSON."),
    ('["not", "an", "object"]', "Evidence must be a JSON object."),
    ("{not json", "Not valid JSON"),
    ('{"a": "b"}\x00', "Null characters are not allowed."),  # Django's own check of every text field
])
def test_evidence_the_database_cannot_take_is_a_form_error(agent_client, post_report, evidence, problem):
    response = post_report(agent_client, evidence)
    assert response.status_code == 200
    assert problem in str(response.context["form"].errors["evidence"])
    assert not Violation.objects.exists() and not Case.objects.exists()


def test_evidence_nested_32_deep_is_parsed_then_held_to_the_evidence_limits(agent_client, post_report):
    response = post_report(agent_client, '{"a":' * 32 + "1" + "}" * 32)
    assert "Evidence must nest at most 10 levels." in str(response.context["form"].errors["evidence"])
    response = post_report(agent_client, '{"a":' * 10 + '"1e400 \\\\u0000"' + "}" * 10)
    assert response.status_code == 302
    evidence = Violation.objects.get().evidence
    for _ in range(9):
        evidence = evidence["a"]
    assert evidence == {"a": "1e400 \\u0000"}


def test_a_2_mb_report_is_a_plain_413_page(lead_client, post_report):
    response = post_report(lead_client, '{"note": "' + "x" * 2_000_000 + '"}')
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"Payload Too Large (413)" in response.content
    assert not Violation.objects.exists()


def test_request_data_too_big_from_django_is_a_413_page_too(lead_client, post_report, settings):
    """Should Django's own limit ever be the smaller one, reading the form is a 413, not a 400 or a 500."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = post_report(lead_client, '{"note": "' + "x" * 10_000 + '"}')
    assert response.status_code == 413
    assert b"Payload Too Large (413)" in response.content
