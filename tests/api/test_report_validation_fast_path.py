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


def test_times_rendered_with_the_zone_read_once_read_as_drf_renders_them():
    """The batch answer renders its times through ``iso_renderer()``: the same text as DRF's field, in UTC and
    in an activated zone, for aware and naive times and None."""
    from datetime import UTC, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from django.utils import timezone as django_timezone

    from enforcement.api.serializers import _DATETIME, iso_renderer

    values = [
        None, datetime(2026, 12, 1, 14, 30, 5, 123456, tzinfo=UTC), datetime(2026, 12, 1, 14, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2026, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))), datetime(2026, 1, 2, 3, 4, 5),
    ]
    expected_utc = [None, "2026-12-01T14:30:05.123456Z", "2026-12-01T14:30:00Z", "2026-03-29T00:30:00Z",
                    "2026-07-01T14:30:00Z", "2026-01-02T03:04:05Z"]
    for zone, expected in (("UTC", expected_utc), ("America/New_York", None)):
        with django_timezone.override(ZoneInfo(zone)):
            iso = iso_renderer()
            drf = [None if value is None else _DATETIME.to_representation(value) for value in values]
            assert [iso(value) for value in values] == drf
            if expected is not None:
                assert drf == expected
            else:
                assert drf[1] == "2026-12-01T09:30:05.123456-05:00"
