"""On PostgreSQL, refuse UPDATE and DELETE of security events in the database itself.

A retention purge may delete old rows by setting ``loyalty.allow_purge`` to ``on`` for
its own transaction (``SET LOCAL``). SQLite runs rely on the model's Python guard.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('loyalty.allow_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""

TRIGGER = """
CREATE TRIGGER staffauth_securityevent_append_only
BEFORE UPDATE OR DELETE ON staffauth_securityevent
FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
"""

DROP = "DROP TRIGGER IF EXISTS staffauth_securityevent_append_only ON staffauth_securityevent;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        schema_editor.execute(TRIGGER, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("staffauth", "0002_roles")]
    operations = [migrations.RunPython(forwards, backwards)]
