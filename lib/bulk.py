"""Many rows of one model in one INSERT, with as little work per row in Python as the database allows.

``bulk_create`` on PostgreSQL binds each value of each row on the client (arrays of literals for its UNNEST, or
one placeholder per value): for a batch of reports that costs more than the INSERT itself. Here the rows go
to the server as one JSON document, made there into rows of the table's type (``jsonb_populate_record``): one
``json.dumps`` on the client, one parameter. Other databases get ``bulk_create``. Like ``bulk_create``: no
``save()``, no signals; fields' ``pre_save`` runs (``auto_now_add``), and each object gets its primary key.

``insert_statement`` and ``row_documents`` are the two halves, for a caller that writes more in the same
statement (a data-modifying ``WITH``: see ``enforcement.services.report_writes``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from uuid import UUID

from django.db import connections, models, router
from django.db.models.fields import AutoFieldMixin

CHUNK = 5000


def _plain(value):
    """A value as JSON carries it for its column (the server parses the text as the column's type)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


# Fields whose ``get_db_prep_save`` gives back a value of this exact type unchanged (PostgreSQL adapts none of
# them): such a value goes into the JSON as it is, without the field's conversions.
_AS_IS = {
    models.CharField: str, models.TextField: str, models.BooleanField: bool, models.IntegerField: int,
    models.BigIntegerField: int, models.SmallIntegerField: int, models.PositiveIntegerField: int,
    models.PositiveSmallIntegerField: int, models.PositiveBigIntegerField: int,
}
_AUTO = (models.AutoField, models.BigAutoField, models.SmallAutoField)


def _as_is_type(field: models.Field) -> type | None:
    """The type of value that ``field`` stores unchanged, if any."""
    if type(field) is models.ForeignKey and type(field.target_field) in _AUTO:
        return int
    return _AS_IS.get(type(field))


@functools.cache
def _inserted_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin)))


def insert_statement(model: type[models.Model], connection, *, returning: Sequence[str] = ()) -> str:
    """PostgreSQL: ``INSERT INTO <table> ... RETURNING <pk>[, returning...]`` of the rows in its one parameter,
    a JSON array of ``row_documents`` (inserted in the array's order)."""
    quote = connection.ops.quote_name
    fields = _inserted_fields(model)
    table = quote(model._meta.db_table)
    names = ", ".join(quote(f.column) for f in fields)
    chosen = ", ".join(f"r.{quote(f.column)}" for f in fields)
    returned = ", ".join(quote(column) for column in (model._meta.pk.column, *returning))
    # Each element becomes a record of the table's own row type (its columns' types, as the table parses them).
    return (
        f"INSERT INTO {table} ({names}) SELECT {chosen} "
        f"FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(doc, n), "
        f"LATERAL jsonb_populate_record(NULL::{table}, e.doc) AS r ORDER BY e.n "
        f"RETURNING {returned}"
    )


@functools.cache
def _plan(model: type[models.Model]) -> tuple[tuple[models.Field, str, str, type | None, bool, bool, bool], ...]:
    """Per inserted field: the field, its attribute and column, the type it stores as is (``_as_is_type``),
    whether ``pre_save`` is ``Field``'s own (the attribute as it is), whether it is a date-time field and
    whether it is a JSON field."""
    return tuple(
        (f, f.attname, f.column, _as_is_type(f), type(f).pre_save is models.Field.pre_save,
         isinstance(f, models.DateTimeField), isinstance(f, models.JSONField))
        for f in _inserted_fields(model)
    )


def row_documents(model: type[models.Model], objs: Sequence[models.Model], connection) -> list[dict]:
    """Each new object as the JSON object ``insert_statement`` reads (``pre_save`` run: ``auto_now_add``)."""
    plan = _plan(model)
    rows = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_insert")
        row = {}
        for f, attname, column, kind, plain_pre_save, is_datetime, is_json in plan:
            value = getattr(obj, attname) if plain_pre_save else f.pre_save(obj, add=True)
            if value is None or (kind is not None and type(value) is kind):
                pass
            elif is_datetime and type(value) is datetime and value.tzinfo is not None:
                value = value.isoformat()  # what the field's conversions and ``_plain`` make of an aware time
            elif not is_json:
                value = _plain(f.get_db_prep_save(value, connection))
            elif f.encoder is not None:
                value = json.loads(json.dumps(value, cls=f.encoder))
            row[column] = value
        rows.append(row)
    return rows


def mark_saved(obj: models.Model, pk, using: str) -> None:
    """What ``save()`` leaves on an object it inserted."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = using


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (all new) and set their primary keys."""
    if not objs:
        return
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    sql = insert_statement(model, connection)
    for start in range(0, len(objs), CHUNK):
        chunk = objs[start:start + CHUNK]
        with connection.cursor() as cursor:
            cursor.execute(sql, [json.dumps(row_documents(model, chunk, connection))])
            pks = [pk for (pk,) in cursor.fetchall()]
        for obj, pk in zip(chunk, pks, strict=True):
            mark_saved(obj, pk, using)
