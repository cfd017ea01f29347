"""On PostgreSQL the database itself refuses UPDATE and DELETE of audit rows."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION enforcement_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'enforcement_auditevent is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER enforcement_auditevent_append_only
    BEFORE UPDATE OR DELETE ON enforcement_auditevent
    FOR EACH ROW EXECUTE FUNCTION enforcement_auditevent_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS enforcement_auditevent_append_only ON enforcement_auditevent;
DROP FUNCTION IF EXISTS enforcement_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("enforcement", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
