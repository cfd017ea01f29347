"""lib.safe_json: JSON from strangers, with plain inputs (the entry points' own tests send it over HTTP)."""

import json
import time

import pytest

from lib.safe_json import MAX_DEPTH, UnsafeJSON, parse_json_safely


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def refusal(raw) -> str:
    with pytest.raises(UnsafeJSON) as caught:
        parse_json_safely(raw)
    assert isinstance(caught.value, ValueError)
    return caught.value.code


def test_depth_32_is_accepted_and_33_refused_arrays_and_objects_alike():
    assert MAX_DEPTH == 32
    assert parse_json_safely(nested(32)) == json.loads(nested(32))
    assert refusal(nested(33)) == "too_deep"
    objects = lambda depth: '{"a":' * depth + "1" + "}" * depth  # noqa: E731
    assert parse_json_safely(objects(32))["a"]["a"]["a"]
    assert refusal(objects(33)) == "too_deep"
    assert parse_json_safely("1") == 1 and parse_json_safely('"x"') == "x"  # a scalar nests 0 deep


def test_a_body_nested_100000_deep_is_refused_before_decoding_and_quickly():
    for raw in (nested(100_000), "[" * 100_000, ("{" + '"k":[' * 50_000).encode()):
        started = time.perf_counter()
        assert refusal(raw) == "too_deep"
        assert time.perf_counter() - started < 0.5


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[" * 1000 + "{" * 1000, "b": ['\\"[[[[', "]]]]"]})
    assert parse_json_safely(text)["a"].startswith("[[[")
    # An escaped quote does not end a string, an escaped backslash before a quote does.
    raw = r'["\"' + "[" * 40 + r'", "\\"]'
    assert parse_json_safely(raw) == ['"' + "[" * 40, "\\"]


def test_an_unterminated_string_full_of_escaped_quotes_is_scanned_in_linear_time():
    raw = '["' + '\\"[' * 300_000  # one regex try per quote would be quadratic
    started = time.perf_counter()
    assert refusal(raw) == "parse_error"
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("raw", ['{"a": 1e400}', "[-1e400]", '{"a": NaN}', "[Infinity]", "[-Infinity]"])
def test_numbers_that_are_not_finite_are_refused(raw):
    assert refusal(raw) == "non_finite_number"


def test_finite_numbers_and_big_integers_are_kept():
    assert parse_json_safely('[1e308, 1e-400, -0.5, 12345678901234567890]') == [1e308, 0.0, -0.5, 12345678901234567890]
    assert refusal("[" + "9" * 5000 + "]") == "parse_error"  # Python's limit on integer digits, as a 400


@pytest.mark.parametrize("raw", [
    r'{"a": "x\u0000y"}', r'{"a\u0000": 1}', r'[["\u0000"]]', '{"a": "x\x00y"}', b'["\x00"]',
    r'["\ud800"]', r'["\udfff x"]', '["\ud800"]',
])
def test_nul_and_unpaired_surrogates_are_refused_escaped_or_raw(raw):
    assert refusal(raw) == "forbidden_character"


def test_text_that_only_looks_like_those_escapes_is_kept():
    assert parse_json_safely(r'["\\u0000", "\ud83d\ude00"]') == ["\\u0000", "\U0001f600"]


@pytest.mark.parametrize("raw", [b"\xff\xfe[]", "{not json", "", "[1,]", "[1] [2]"])
def test_what_is_not_json_is_a_parse_error(raw):
    assert refusal(raw) == "parse_error"
