"""Indexes for the console's account search (``accounts.search``), on PostgreSQL only.

The search matches an account's id, email and name case-insensitively: Django writes those lookups as
``UPPER(col::text) LIKE UPPER(...)``, which trigram GIN indexes on the same expressions answer, for a prefix
(``LIKE 'X%'``) as for a substring (``LIKE '%X%'``), without reading the whole table. Key prefixes are matched
case-sensitively by their start: the ``varchar_pattern_ops`` index Django gives the unique ``prefix`` serves it.
SQLite (the quick start) has no trigram indexes; its search reads the small table it has."""

from django.db import migrations

INDEXES = [
    ("accounts_account_name_trgm", 'UPPER("name"::text) gin_trgm_ops'),
    ("accounts_account_email_trgm", 'UPPER("email"::text) gin_trgm_ops'),
    ("accounts_account_public_id_trgm", 'UPPER("public_id"::text) gin_trgm_ops'),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "accounts_account" USING gin ({expression})')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_apikey_updated_at_index"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
