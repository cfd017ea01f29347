"""Many rows of one model in one INSERT, with as little work per row in Python as the database allows.

``bulk_create`` on PostgreSQL binds each value of each row on the client (arrays of literals for its UNNEST, or
one placeholder per value): for a batch of reports that costs more than the INSERT itself. Here the rows go
to the server as one JSON document, made there into rows of the table's type (``jsonb_populate_record``): one
``json.dumps`` on the client, one parameter. Other databases get ``bulk_create``. Like ``bulk_create``: no
``save()``, no signals; fields' ``pre_save`` runs (``auto_now_add``), and each object gets its primary key.
"""

from __future__ import annotations

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


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (all new) and set their primary keys."""
    if not objs:
        return
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin))]
    table = connection.ops.quote_name(meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    chosen = ", ".join(f"r.{connection.ops.quote_name(f.column)}" for f in fields)
    # Each element becomes a record of the table's own row type (its columns' types, as the table parses them).
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {chosen} "
        f"FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(doc, n), "
        f"LATERAL jsonb_populate_record(NULL::{table}, e.doc) AS r ORDER BY e.n "
        f"RETURNING {connection.ops.quote_name(meta.pk.column)}"
    )
    json_fields = {f for f in fields if isinstance(f, models.JSONField)}
    as_is = {f: _as_is_type(f) for f in fields}
    for start in range(0, len(objs), CHUNK):
        chunk = objs[start:start + CHUNK]
        rows = []
        for obj in chunk:
            obj._prepare_related_fields_for_save(operation_name="bulk_insert")
            row = {}
            for f in fields:
                value = f.pre_save(obj, add=True)
                kind = as_is[f]
                if kind is not None and (value is None or type(value) is kind):
                    pass
                elif f not in json_fields:
                    value = _plain(f.get_db_prep_save(value, connection))
                elif value is not None and f.encoder is not None:
                    value = json.loads(json.dumps(value, cls=f.encoder))
                row[f.column] = value
            rows.append(row)
        with connection.cursor() as cursor:
            cursor.execute(sql, [json.dumps(rows)])
            pks = [pk for (pk,) in cursor.fetchall()]
        for obj, pk in zip(chunk, pks, strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = using

