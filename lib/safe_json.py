"""Parsing JSON from strangers: bounded nesting, finite numbers, text the database can store.

``json.loads`` recurses once per nesting level, so a body of 100,000 ``[`` raises ``RecursionError``
(a 500, and a worker's stack spent). ``1e400`` parses as infinity, which neither PostgreSQL's jsonb
nor JSON itself can hold, and PostgreSQL refuses NUL (``\\u0000``) and unpaired surrogates in text and
jsonb. Every entry point that takes JSON (the API's parser, the GitHub endpoint, the admin's evidence
box) parses with ``parse_json_safely``, so each of these is the same 400 everywhere.

The nesting is measured before anything is decoded, in one pass without recursion: strings are
skipped (a ``[`` inside one is text), what is left is brackets, counted with an early exit.
The caller bounds the size (``API_MAX_BODY_BYTES``); the work here is linear in it.
"""

import json
import math
import re
from typing import Any

MAX_DEPTH = 32

# A JSON string (to its closing quote, or to the end of an unterminated one) or a run of anything that is
# neither a string nor a bracket. Possessive, and never failing once it starts at a quote, so each character
# is looked at once: a backtracking pattern would be quadratic on ``"\"\"\"...`` (one failed try per quote).
_NOT_A_BRACKET = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[^"\[\]{}]++', re.DOTALL)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The escapes that decode to NUL or to a surrogate (a paired one decodes to one character, and is fine).
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class UnsafeJSON(ValueError):
    """Not JSON we accept. ``code`` says why, in words the API uses as its error code:
    ``parse_error`` (not JSON), ``too_deep``, ``non_finite_number``, ``forbidden_character``."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


def parse_json_safely(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``raw`` (UTF-8 bytes, or text) as a Python value, or ``UnsafeJSON``. Never recurses deeper than
    ``max_depth`` (the top-level value's brackets count as 1)."""
    if isinstance(raw, bytes | bytearray):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeJSON("The JSON is not valid UTF-8.", code="parse_error") from None
    else:
        text = raw
    check_depth(text, max_depth)
    if _UNSTORABLE.search(text):
        raise UnsafeJSON(
            "The JSON contains a NUL character or an unpaired surrogate, which cannot be stored.",
            code="forbidden_character",
        )
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_refuse_constant)
    except UnsafeJSON:
        raise
    except json.JSONDecodeError as exc:
        raise UnsafeJSON(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                         code="parse_error") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise UnsafeJSON(f"Not valid JSON: {exc}", code="parse_error") from None
    if _UNSTORABLE_ESCAPE.search(text):
        _check_text(value)
    return value


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``UnsafeJSON`` (``too_deep``) if ``text`` nests arrays and objects deeper than ``max_depth``."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # most bodies: too few brackets to be too deep, wherever they are
    depth = 0
    for bracket in _NOT_A_BRACKET.sub("", text):
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeJSON(f"The JSON nests deeper than {max_depth} levels.", code="too_deep")
        else:
            depth -= 1


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise UnsafeJSON(f"The number {literal[:40]} is too large to store.", code="non_finite_number")
    return value


def _refuse_constant(name: str):
    raise UnsafeJSON(f"{name} is not a JSON number.", code="non_finite_number")


def _check_text(value: Any) -> None:
    """Every string (keys too) of a decoded value is free of NUL and unpaired surrogates; no recursion.
    The refusal names where the string is (``evidence.note``, ``violations.2.summary``)."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if _UNSTORABLE.search(key):
                    _refuse_text(f"A key of {path}" if path else "A key")
                pending.append((child, f"{path}.{_printable(key)}" if path else _printable(key)))
        elif isinstance(item, list):
            pending.extend((child, f"{path}.{index}" if path else str(index)) for index, child in enumerate(item))
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            _refuse_text(f"The string at {path}" if path else "The string")


def _refuse_text(subject: str):
    raise UnsafeJSON(
        f"{subject} contains a NUL character (\\u0000) or an unpaired surrogate, which cannot be stored.",
        code="forbidden_character",
    )


def _printable(key: str) -> str:
    """A key as a message may quote it: short, and encodable (an error message is JSON too)."""
    return _UNSTORABLE.sub("?", key[:40])
