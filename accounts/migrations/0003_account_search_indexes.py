"""Indexes for the console's account search (``accounts.search``), on PostgreSQL only.

The search matches an account's id, email and name case-insensitively: Django writes those lookups as
``UPPER(col::text) LIKE UPPER(...)``, which indexes on the same expressions answer without reading the whole
table: a trigram GIN index a substring (``LIKE '%X%'``, the name), ``text_pattern_ops`` B-trees a prefix
(``LIKE 'X%'``, the id and the email). Key prefixes are matched
case-sensitively by their start: the ``varchar_pattern_ops`` index Django gives the unique ``prefix`` serves it.
SQLite (the quick start) has no trigram indexes; its search reads the small table it has."""

from django.db import migrations

INDEXES = [  # (name, method, expression)
    ("accounts_account_name_trgm", "gin", 'UPPER("name"::text) gin_trgm_ops'),
    # Ids and emails are searched by their start: a B-tree on the same expression answers a prefix (and an
    # exact match) faster than trigrams whose first ones ("ACC", "CCT") every id shares.
    ("accounts_account_public_id_upper_prefix", "btree", 'UPPER("public_id"::text) text_pattern_ops'),
    ("accounts_account_email_upper_prefix", "btree", 'UPPER("email"::text) text_pattern_ops'),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, method, expression in INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "accounts_account" USING {method} ({expression})')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_apikey_updated_at_index"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
