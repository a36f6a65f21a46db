"""Database guards of consumer protection: acceptances and complaint events append-only;
a complaint's workflow columns alone move, by their rules; a published terms version
never changes (nor is any version deleted)."""

from django.db import migrations

from loyalty.kernel.append_only import append_only_triggers, guarded_triggers

STATES = "|".join(
    f"{a}>{b}"
    for a, targets in {
        "open": ("responded", "escalated", "resolved", "rejected"),
        "responded": ("escalated", "resolved", "rejected"),
        "escalated": ("responded", "resolved", "rejected"),
    }.items()
    for b in targets
)

PUBLISHED_FROZEN = """
CREATE OR REPLACE FUNCTION compliance_terms_frozen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.published_at IS NOT NULL THEN
        RAISE EXCEPTION 'terms version % is published: UPDATE refused', OLD.version
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER compliance_termsversion_frozen BEFORE UPDATE ON compliance_termsversion
FOR EACH ROW EXECUTE FUNCTION compliance_terms_frozen();
"""
PUBLISHED_FROZEN_UNDO = """
DROP TRIGGER IF EXISTS compliance_termsversion_frozen ON compliance_termsversion;
DROP FUNCTION IF EXISTS compliance_terms_frozen();
"""


def _on_postgres(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("compliance", "0010_consumer"), ("loyalty", "0010_tamper_proof")]

    operations = [
        append_only_triggers("compliance_termsacceptance", "compliance_complaintevent"),
        guarded_triggers(
            "compliance_termsversion", "title", "body", "effective_from", "published_at!", "published_by_id!"
        ),
        migrations.RunPython(_on_postgres(PUBLISHED_FROZEN), _on_postgres(PUBLISHED_FROZEN_UNDO)),
        guarded_triggers(
            "compliance_complaint",
            f"state={STATES}",
            "assignee_id",
            "first_responded_at!",
            "closed_at!",
            "reminded_at!",
            "escalated_at!",
            "adjustment_id!",
        ),
    ]
