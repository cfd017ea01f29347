"""Evidence redaction, applied before anything is stored. Pure functions.

What goes: Luhn-valid card numbers, Millimetric key tokens (kept as prefix and last 4),
values of password-like fields, and government ID numbers such as US SSNs.
"""

import re
from typing import Any

REDACTED = "[REDACTED]"

_CARD_CANDIDATE = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_KEY_TOKEN = re.compile(r"\b((?:pk|sk|rk)_live_)([A-Za-z0-9]{4,})\b")
_SSN = re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)")
_SECRET_FIELD = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|authorization|credential|private[_-]?key|(?:^|[_-])ssn(?:$|[_-])|"
    r"social[_-]?security|passport|national[_-]?id|tax[_-]?id|driver'?s?[_-]?licen[cs]e",
    re.IGNORECASE,
)
_INLINE_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key)\b\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s&,;]+)",
    re.IGNORECASE,
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _redact_card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"[CARD REDACTED ...{digits[-4:]}]"
    return match.group(0)


def _redact_key(match: re.Match) -> str:
    kind_prefix, body = match.group(1), match.group(2)
    if len(body) <= 12:
        return match.group(0)  # a public key prefix, not a token
    return f"{kind_prefix}{body[:8]}...{body[-4:]}"


def redact_text(text: str) -> str:
    text = _KEY_TOKEN.sub(_redact_key, text)
    text = _INLINE_SECRET.sub(lambda m: m.group("key") + REDACTED, text)
    text = _SSN.sub("[SSN REDACTED]", text)
    return _CARD_CANDIDATE.sub(_redact_card, text)


def redact(value: Any, *, key: str | None = None) -> Any:
    """Redact a JSON-like value recursively; field names that look secret lose their values."""
    if key is not None and _SECRET_FIELD.search(key) and value not in (None, "", [], {}):
        if isinstance(value, str) and _KEY_TOKEN.fullmatch(value.strip()):
            return redact_text(value)
        return REDACTED
    if isinstance(value, dict):
        return {str(k): redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        redacted = redact_text(text)
        return value if redacted == text else redacted
    return value
