"""Records of what happened cannot be rewritten by the application's role (issue 11, D1/D2).

- ``loyalty_refuse_change()`` loses its ``loyalty.allow_purge`` session switch (any role
  may set a custom setting): DELETE passes only for ``loyalty_retention``, the owner of
  the ``SECURITY DEFINER`` function ``loyalty_purge``, and only on tables marked
  purgeable; TRUNCATE is refused too (but for the tables' owner).
- Operation headers become append-only like their transfers; auditlog's entries too.
- Lots, balances, idempotency keys, adjustment requests, redemptions and fraud alerts
  may change only in the columns their write paths change, by their rules
  (``loyalty_guard_update``); a lot's ``remaining`` must equal its movements at commit.

See ``loyalty/append_only.py``; the grants that go with it are ``loyalty/dbroles.py``.
"""

from importlib import import_module

from django.db import migrations

from loyalty.kernel.append_only import (
    GUARD_UPDATE_FUNCTION,
    LOT_MATCHES_MOVEMENTS_FUNCTION,
    PURGE_FUNCTION,
    REFUSE_CHANGE_FUNCTION,
    append_only_triggers,
    guarded_triggers,
)

# What the function was before (as migration 0001 creates it), to go back to.
PREVIOUS_REFUSE_CHANGE = import_module("loyalty.migrations.0001_initial").REFUSE_CHANGE_FIRST

LOT_CONSTRAINT = """
CREATE CONSTRAINT TRIGGER loyalty_pointslot_matches_movements
AFTER UPDATE OF remaining ON loyalty_pointslot DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION loyalty_lot_matches_movements();
"""


def functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in (REFUSE_CHANGE_FUNCTION, GUARD_UPDATE_FUNCTION, PURGE_FUNCTION, LOT_MATCHES_MOVEMENTS_FUNCTION):
            schema_editor.execute(sql, params=None)
        schema_editor.execute(LOT_CONSTRAINT, params=None)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS loyalty_pointslot_matches_movements ON loyalty_pointslot;")
        schema_editor.execute("DROP FUNCTION IF EXISTS loyalty_lot_matches_movements();")
        schema_editor.execute("DROP FUNCTION IF EXISTS loyalty_purge(regclass, timestamptz, integer);")
        schema_editor.execute("DROP FUNCTION IF EXISTS loyalty_guard_update();")
        schema_editor.execute(PREVIOUS_REFUSE_CHANGE, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0009_adjustment_schedules"),
        ("staffauth", "0009_till_shift_events"),
        ("members", "0005_passwords_contact_consents"),
        ("vouchers", "0004_goodwill_issue_key"),
        ("fraud", "0001_initial"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [
        migrations.RunPython(functions, drop_functions),
        # The journal: never purged by the application.
        append_only_triggers("loyalty_ledgeroperation", "loyalty_transfer", "loyalty_lotmovement"),
        # Logs and events: purged after their retention period, through loyalty_purge only.
        append_only_triggers(
            "staffauth_securityevent",
            "members_membersecurityevent",
            "members_memberpiiaccess",
            "members_consentrecord",
            "vouchers_voucherscan",
            "loyalty_adjustmentevent",
            "auditlog_logentry",
            purgeable=True,
        ),
        guarded_triggers("loyalty_pointslot", "remaining"),
        guarded_triggers("loyalty_memberbalance", "credits_posted", "debits_posted", "debits_pending", "updated_at"),
        guarded_triggers("loyalty_idempotencykey", "status_code!", "response!"),
        guarded_triggers(
            "loyalty_adjustmentrequest",
            "state=pending>posted|pending>rejected|pending>expired",
            "approved_by_id!",
            "approved_at!",
            "reviewed_by_id!",
            "reviewed_at!",
            "operation_id!",
        ),
        guarded_triggers("vouchers_voucherredemption", "receipt!"),
        guarded_triggers(
            "vouchers_tillredemption",
            "challenge_id!",
            "authorisation_offer!",
            "authorised_via!",
            "authorised_at!",
            "captured_at!",
            "capture_shift_id!",
            "captured_points!",
            "voided_at!",
            "receipt!",
        ),
        guarded_triggers(
            "vouchers_redemptionaudit",
            "outcome=pending>confirmed|pending>irregular",
            "reviewed_by_id!",
            "reviewed_at!",
            "note!",
        ),
        guarded_triggers(
            "vouchers_pendingredemption",
            "status=pending>approved|pending>rejected",
            "decided_by_id!",
            "decided_at!",
            "decision_note!",
            "ledger_operation_id!",
        ),
        guarded_triggers("fraud_fraudalert", "status", "closed_at", "closed_by_id"),
    ]
