"""A hot queryset's SQL compiled once per process and run again with new values.

Building a queryset with subqueries and annotations and compiling it to SQL costs more Python than the
round trip it makes (the report path's three reads took ~40% of a report's time in the ORM). A
``CompiledQuery`` builds its queryset from the values of one call, compiles it, and keeps the compiler,
its SQL and where each value lands among its parameters; later calls run that SQL with their own values
and load the rows exactly as the queryset would (the same compiler: converters, select_related,
annotations). The SQL is the ORM's own, on every database.

Which parameter is which value is found by compiling twice, the second time with other values of the same
type: a parameter that changes with one value (and only it) is that value, one that stays is a constant.
A query where that is not clear (a value the ORM transforms, or a type this module cannot vary) is never
kept: every call then builds and runs the queryset as usual. So ``build`` must depend on its values only
through the parameters it filters on, never through the shape of the query: different shapes are
different ``CompiledQuery`` objects.
"""

import copy
from datetime import date, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.query import ModelIterable
from django.db.transaction import TransactionManagementError

_UNCACHEABLE = object()


def _other(value, index: int):
    """A value of the same type as ``value``, different from it and from any other index's."""
    if isinstance(value, bool) or value is None:
        raise TypeError(value)
    if isinstance(value, str):
        return f"{value}\x1f{index}"
    if isinstance(value, int):
        return value + 1_000_003 + index
    if isinstance(value, datetime | date):
        return value + timedelta(days=1, seconds=index + 1)
    raise TypeError(value)


class _Replay:
    """What ``ModelIterable`` reads of a queryset, for a compiler that was set up already."""

    _known_related_objects: dict = {}

    def __init__(self, model, db: str, compiler):
        self.model, self.db, self._compiler = model, db, compiler

    @property
    def query(self):
        return self

    def get_compiler(self, using=None, connection=None):
        return self._compiler


class CompiledQuery:
    """``CompiledQuery(build).first(*values)``: ``build(*values).first()``, compiled once per database."""

    def __init__(self, build):
        self.build = build
        self._templates: dict = {}

    def _queryset(self, values):
        queryset = self.build(*values)
        if not queryset.ordered:
            queryset = queryset.order_by("pk")
        return queryset[:1]

    def _template(self, values, using):
        """(compiler, sql, slots, model, for_update) for ``values``' types, or ``_UNCACHEABLE``."""
        try:
            others = tuple(_other(value, index) for index, value in enumerate(values))
        except TypeError:
            return _UNCACHEABLE
        first, second = self._queryset(values), self._queryset(others)
        compiler = first.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        other_sql, other_params = second.query.get_compiler(using=using).as_sql()
        if sql != other_sql or len(params) != len(other_params):
            return _UNCACHEABLE
        slots = []
        for param, other in zip(params, other_params, strict=True):
            if type(param) is type(other) and param == other:
                slots.append((False, param))
                continue
            matches = [index for index, (value, changed) in enumerate(zip(values, others, strict=True))
                       if type(param) is type(value) and param == value and other == changed]
            if len(matches) != 1:
                return _UNCACHEABLE
            slots.append((True, matches[0]))
        features = compiler.connection.features
        for_update = bool(first.query.select_for_update) and features.has_select_for_update
        return compiler, sql, tuple(slots), first.model, for_update and features.supports_transactions

    def first(self, *values, using: str = DEFAULT_DB_ALIAS):
        connection = connections[using]
        key = (using, connection.vendor, tuple(type(value) for value in values))
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._template(values, using)
        if template is _UNCACHEABLE:
            return self.build(*values).first()
        compiler, sql, slots, model, for_update = template
        if for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = tuple(values[slot] if is_value else slot for is_value, slot in slots)
        replay = copy.copy(compiler)
        replay.connection = connection
        replay.as_sql = lambda *args, **kwargs: (sql, params)
        return next(iter(ModelIterable(_Replay(model, using, replay))), None)
