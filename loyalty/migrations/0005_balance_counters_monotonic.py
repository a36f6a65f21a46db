"""On PostgreSQL, a member's posted counters only ever grow (LEDGER.md invariant 14).

credits_posted and debits_posted are sums over an append-only journal, so a write that
lowers one is a bug or tampering; debits_pending goes down when a hold settles.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_counters_monotonic() RETURNS trigger AS $$
BEGIN
    IF NEW.credits_posted < OLD.credits_posted OR NEW.debits_posted < OLD.debits_posted THEN
        RAISE EXCEPTION 'posted counters of account % may not decrease', OLD.account_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
TRIGGER = """
CREATE TRIGGER loyalty_memberbalance_monotonic BEFORE UPDATE ON loyalty_memberbalance
FOR EACH ROW EXECUTE FUNCTION loyalty_counters_monotonic();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        schema_editor.execute(TRIGGER, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS loyalty_memberbalance_monotonic ON loyalty_memberbalance;", params=None
        )


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0004_pending_earns")]
    operations = [migrations.RunPython(forwards, backwards)]
