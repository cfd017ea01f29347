"""The API's one parser: JSON, through ``lib.safe_json`` (nesting, numbers and text checked before and while
decoding), so a hostile body is a 400 and never a RecursionError or a row the database refuses."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from lib.safe_json import UnsafeJSON, parse_json_safely


class SafeJSONParser(JSONParser):
    """DRF's ``JSONParser`` with ``parse_json_safely``. A refusal's code says why: ``parse_error`` (not JSON),
    ``too_deep`` (nested deeper than 32), ``non_finite_number`` (NaN, Infinity, 1e400),
    ``forbidden_character`` (NUL or an unpaired surrogate in a string)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read()  # at most API_MAX_BODY_BYTES: the size guard (enforcement.api.limits) saw to it
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(f"The body is not valid {encoding}.") from None
        try:
            return parse_json_safely(text)
        except UnsafeJSON as exc:
            raise ParseError(exc.message, code=exc.code) from None
