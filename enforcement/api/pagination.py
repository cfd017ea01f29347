"""Cursor pagination for every list: ``{"results": [...], "next": url|null, "previous": url|null}``.

A cursor is opaque to clients, so one the API did not make (garbage, base64 of garbage, a position
that is not a value of the ordering field, or one the database cannot compare) is a 400
``invalid_cursor``, never a query that fails; a ``page_size`` that is not a whole number is a 400 too.
"""

from base64 import b64decode
from urllib import parse

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from enforcement.errors import ValidationFailed

INVALID_CURSOR = "Not a cursor of this list: use the next or previous link of an earlier page."


def _well_formed(encoded: str) -> bool:
    """Strict base64 of what DRF encodes (``o``, ``r``, ``p``, once each). DRF's own decoding skips characters
    that are not base64, so ``%%%`` would otherwise be read as no cursor at all."""
    try:
        tokens = parse.parse_qs(b64decode(encoded, validate=True).decode("ascii"), keep_blank_values=True)
    except ValueError:  # not base64, not ASCII
        return False
    if not tokens:
        return encoded == ""  # what DRF encodes for the first page
    return set(tokens) <= {"o", "r", "p"} and all(len(values) == 1 for values in tokens.values())


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(f"cursor: {INVALID_CURSOR}", fields={"cursor": [INVALID_CURSOR]}, code="invalid_cursor")


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    # Newest first by id: unique and never changes, so a cursor never skips or repeats a row.
    ordering = "-id"

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model  # decode_cursor checks the position against the ordering field
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and int(raw) >= 1):
            raise ValidationFailed(
                f"page_size: a whole number from 1 to {self.max_page_size}.",
                fields={"page_size": [f"A whole number from 1 to {self.max_page_size}."]},
            )
        return min(int(raw), self.max_page_size)  # more than the maximum: the maximum, as documented

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None and not _well_formed(encoded):
            raise _invalid_cursor()
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF's answer to a cursor it cannot decode
            raise _invalid_cursor() from None
        if cursor is not None and cursor.position is not None and not self._is_position(cursor.position):
            raise _invalid_cursor()
        return cursor

    def _is_position(self, position: str) -> bool:
        """A value of the (first) ordering field that the database can compare: an id in range, text
        without NUL (PostgreSQL refuses it)."""
        field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        if "\x00" in position:
            return False
        try:
            field.run_validators(field.to_python(position))
        except DjangoValidationError:
            return False
        return True

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
