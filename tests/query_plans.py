"""Which index PostgreSQL uses for a query, asked so that the answer does not depend on a test table's size.

A test table holds a handful of rows, so the planner's choice among several indexes that could all serve a
query (a foreign key's own index, the primary key walked with a filter, the index under test) turns on
statistics that change from one run to the next. ``plan_using_only`` asks a narrower question that has one
answer: inside the test's transaction, the table's other indexes that no constraint needs are dropped (DDL is
transactional in PostgreSQL; the test's rollback brings them back) and sequential scans and sorts are priced
out, so the plan names the index under test exactly when that index can serve the query."""

from django.db import connection


def plan_using_only(index: str, queryset, *, bitmap: bool = False) -> str:
    """The plan of ``queryset`` with ``index`` the only optional index on its table. ``bitmap``: plain index
    scans are priced out too, so a constraint's index cannot be walked whole with a filter (for a condition
    that is no ordering, e.g. a search)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT other.relname FROM pg_index i
            JOIN pg_class target ON target.relname = %s
            JOIN pg_index t ON t.indexrelid = target.oid
            JOIN pg_class other ON other.oid = i.indexrelid
            WHERE i.indrelid = t.indrelid AND i.indexrelid <> target.oid
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            """,
            [index],
        )
        others = [row[0] for row in cursor.fetchall()]
        for name in others:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        if bitmap:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_indexonlyscan = off")
    return queryset.explain()
