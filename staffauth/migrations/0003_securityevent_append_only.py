"""On PostgreSQL, refuse UPDATE and DELETE of security events in the database itself.

The trigger function ``loyalty_refuse_change()`` is the loyalty app's: its migration
0001 creates it (this migration created it until issue 12 moved it to its owner; on a
database migrated before, that move changed nothing). SQLite runs rely on the model's
Python guard.
"""

from django.db import migrations

TRIGGER = """
CREATE TRIGGER staffauth_securityevent_append_only
BEFORE UPDATE OR DELETE ON staffauth_securityevent
FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
"""

DROP = "DROP TRIGGER IF EXISTS staffauth_securityevent_append_only ON staffauth_securityevent;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("staffauth", "0002_roles")]
    operations = [migrations.RunPython(forwards, backwards)]
