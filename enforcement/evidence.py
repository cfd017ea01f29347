"""What a violation's evidence may be, whoever sends it (the API, the admin's report form).

A JSON object, bounded in size and nesting (it is redacted, stored, shown to staff and rendered on
every case page), with text the database can store. A plain function, so that each entry point
reports the problem in its own way: a field error in the API, a form error in the admin.
"""

import re
from typing import Any

MAX_EVIDENCE_BYTES = 64 * 1024
MAX_EVIDENCE_DEPTH = 10

PROBLEMS = {
    "not_object": "Must be a JSON object.",
    "too_large": f"Must be at most {MAX_EVIDENCE_BYTES} bytes of JSON.",
    "too_deep": f"Must nest at most {MAX_EVIDENCE_DEPTH} levels.",
    "bad_text": "Text may not contain NUL or unpaired surrogate characters.",
}
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL stores neither in text or jsonb


def evidence_problem(value: Any) -> str | None:
    """The key of ``PROBLEMS`` that ``value`` has, or None. Walks the value without recursion; strings
    count their length, other scalars 8 bytes each, towards ``MAX_EVIDENCE_BYTES``."""
    if not isinstance(value, dict):
        return "not_object"
    budget = MAX_EVIDENCE_BYTES
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_EVIDENCE_DEPTH:
            return "too_deep"
        if isinstance(item, dict):
            pending.extend((str(key), depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            budget -= len(item) + 2
            if _BAD_TEXT.search(item):
                return "bad_text"
        else:
            budget -= 8
        if budget < 0:
            return "too_large"
    return None
