"""The report serializer's fast path for plain reports answers exactly what its fields answer, and leaves every
report it does not fully vouch for (errors included) to the fields."""

import pytest
from rest_framework import serializers

from enforcement.api.serializers import ViolationReportSerializer, _plain_report

PLAIN = {
    "account": "acct_1", "rule": "spam-fraud", "source": "ratewatch", "external_id": "evt-1",
    "summary": "1800 events/min from one IP.",
}

CASES = [
    PLAIN,
    {**PLAIN, "severity": "critical", "api_key": "sk_live_4eC39HqL", "evidence": {"ip": "203.0.113.9", "n": [1, 2.5]}},
    {**PLAIN, "severity": None, "api_key": None, "observed_at": None, "unknown": "ignored"},
    {**PLAIN, "api_key": ""},
    {**PLAIN, "evidence": {}},
    # Each of these differs from what the fields would give, or is an error: never answered by the fast path.
    {**PLAIN, "account": " acct_1 "},
    {**PLAIN, "summary": "tab at the end\t"},
    {**PLAIN, "summary": "   "},
    {**PLAIN, "summary": ""},
    {**PLAIN, "summary": "x" * 20_001},
    {**PLAIN, "source": "s" * 65},
    {**PLAIN, "external_id": "e" * 201},
    {**PLAIN, "external_id": 12},
    {**PLAIN, "external_id": True},
    {**PLAIN, "rule": None},
    {**PLAIN, "summary": "nul \x00 inside"},
    {**PLAIN, "summary": "lone \ud800 surrogate"},
    {**PLAIN, "summary": "café, not ASCII"},
    {**PLAIN, "api_key": "k" * 17},
    {**PLAIN, "api_key": " sk_live "},
    {**PLAIN, "severity": "extreme"},
    {**PLAIN, "severity": ""},
    {**PLAIN, "observed_at": "2026-01-01T00:00:00Z"},
    {**PLAIN, "observed_at": "yesterday"},
    {**PLAIN, "evidence": None},
    {**PLAIN, "evidence": ["not", "an", "object"]},
    {**PLAIN, "evidence": {"deep": [[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]}},
    {**PLAIN, "evidence": {"nul": "a\x00b"}},
    {**PLAIN, "evidence": {"big": "x" * 100_000}},
    {key: value for key, value in PLAIN.items() if key != "summary"},
    {},
    ["not", "a", "dict"],
    "text",
]


def _by_the_fields(data):
    serializer = ViolationReportSerializer(data=data)
    try:
        return dict(serializers.Serializer.run_validation(serializer, data)), None
    except serializers.ValidationError as exc:
        return None, exc.detail


@pytest.mark.parametrize("data", CASES)
def test_the_fast_path_answers_as_the_fields_or_leaves_it_to_them(data):
    expected, errors = _by_the_fields(data)
    fast = _plain_report(data)
    if fast is not None:
        assert errors is None and fast == expected
    serializer = ViolationReportSerializer(data=data)
    assert serializer.is_valid() == (errors is None)
    if errors is None:
        assert dict(serializer.validated_data) == expected
    else:
        assert serializer.errors == errors


def test_plain_reports_take_the_fast_path():
    assert [_plain_report(data) is not None for data in CASES[:5]] == [True] * 5
