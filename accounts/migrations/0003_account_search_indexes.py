from django.db import migrations

from lib.migrations import PostgresOnlySQL


class Migration(migrations.Migration):
    """The accounts search on PostgreSQL: email exact or by prefix (``UPPER(email)`` with text_pattern_ops serves
    ``iexact`` and ``istartswith``) and a name's part (a trigram index serves ``icontains``). pg_trgm is a trusted
    extension: the database's owner may create it."""

    dependencies = [
        ('accounts', '0002_apikey_updated_at_index'),
    ]

    operations = [
        PostgresOnlySQL('CREATE EXTENSION IF NOT EXISTS pg_trgm', migrations.RunSQL.noop),
        PostgresOnlySQL(
            'CREATE INDEX "account_email_upper_idx" ON "accounts_account" (UPPER("email"::text) text_pattern_ops)',
            'DROP INDEX IF EXISTS "account_email_upper_idx"',
        ),
        PostgresOnlySQL(
            'CREATE INDEX "account_name_upper_trgm_idx" ON "accounts_account" '
            'USING gin (UPPER("name"::text) gin_trgm_ops)',
            'DROP INDEX IF EXISTS "account_name_upper_trgm_idx"',
        ),
    ]
