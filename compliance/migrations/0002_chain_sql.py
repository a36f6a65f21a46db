"""Tamper-evident logs: links, purge records, checkpoints and anchors append-only (triggers);
one head per stream; the sealer, anchor and verification schedules (COMPLIANCE.md §3)."""

from typing import Any

from django.db import migrations
from django.utils import timezone

from loyalty.kernel.append_only import append_only_triggers

STREAMS = ["security", "member-security", "access", "consent", "adjustments", "vouchers", "audit", "ledger"]

SCHEDULES = [
    # (name, task, minute, hour)
    ("Compliance: anchor the chains (database)", "compliance.tasks.chain_anchor_task", "*/15", "*"),
    ("Compliance: anchor the chains (outside sink)", "compliance.tasks.chain_anchor_external_task", "10", "0"),
    ("Compliance: verify the chains", "compliance.tasks.chain_verify_task", "30", "1"),
    ("Compliance: unsealed ledger entries", "compliance.tasks.chain_unsealed_alert_task", "*", "*"),
]
SEALER = "Compliance: seal the ledger chain queue"


def create(apps: Any, schema_editor: Any) -> None:
    ChainHead = apps.get_model("compliance", "ChainHead")
    for stream in STREAMS:
        ChainHead.objects.get_or_create(stream=stream)
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})
    every, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=SEALER, defaults={"task": "compliance.tasks.chain_seal_task", "interval": every}
    )


def remove(apps: Any, schema_editor: Any) -> None:
    names = [s[0] for s in SCHEDULES] + [SEALER]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()
    apps.get_model("compliance", "ChainHead").objects.filter(stream__in=STREAMS).delete()


# The ledger's hot path writes operations in one data-modifying CTE (no post_save): an AFTER
# INSERT trigger queues each operation, whoever writes it (services, bulk loads, raw SQL).
ENQUEUE_SQL = """
CREATE OR REPLACE FUNCTION compliance_chain_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO compliance_chainqueue (stream, ref, queued_at) VALUES (TG_ARGV[0], NEW.id::text, now());
    RETURN NULL;
END;
$$;
CREATE TRIGGER compliance_chain_enqueue AFTER INSERT ON loyalty_ledgeroperation
    FOR EACH ROW EXECUTE FUNCTION compliance_chain_enqueue('ledger');
"""
ENQUEUE_UNDO = """
DROP TRIGGER IF EXISTS compliance_chain_enqueue ON loyalty_ledgeroperation;
DROP FUNCTION IF EXISTS compliance_chain_enqueue();
"""


# SQLite (the embedded first run) stores a UUID as 32 hex digits: the queue holds its
# canonical text form, as PostgreSQL's ``id::text`` gives it.
SQLITE_UUID_TEXT = (
    "lower(substr({c},1,8)||'-'||substr({c},9,4)||'-'||substr({c},13,4)||'-'||substr({c},17,4)||'-'||substr({c},21))"
)
ENQUEUE_SQLITE = f"""
CREATE TRIGGER compliance_chain_enqueue AFTER INSERT ON loyalty_ledgeroperation
BEGIN
    INSERT INTO compliance_chainqueue (stream, ref, queued_at)
    VALUES ('ledger', {SQLITE_UUID_TEXT.format(c="NEW.id")}, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
"""  # noqa: S608 (constants)


def enqueue(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ENQUEUE_SQL)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(ENQUEUE_SQLITE)


def enqueue_undo(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ENQUEUE_UNDO)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS compliance_chain_enqueue")


def adopt(apps: Any, schema_editor: Any) -> None:
    """Link the rows written before the chains existed, in id order (the chains start at this
    deployment: what was changed before it cannot be told)."""
    from compliance.chain import STREAMS, chain_append

    for stream in STREAMS.values():
        app_label, name = stream.model.split(".")
        model = apps.get_model(app_label, name)
        if stream.queued:
            sqlite = schema_editor.connection.vendor == "sqlite"
            ref = SQLITE_UUID_TEXT.format(c="id") if sqlite else "CAST(id AS TEXT)"
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO compliance_chainqueue (stream, ref, queued_at) "  # noqa: S608 (constants)
                    f"SELECT %s, {ref}, %s FROM {model._meta.db_table} ORDER BY created_at, id",
                    [stream.name, timezone.now()],
                )
            continue
        for row in model.objects.order_by("pk").iterator():
            chain_append(stream.name, row)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0001_chain"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("loyalty", "0012_till_data"),
        # the streams' tables (linked by ``adopt``)
        ("staffauth", "0010_audit_chain_broken"),
        ("members", "0008_step_up_restriction"),
        ("vouchers", "0004_goodwill_issue_key"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [
        append_only_triggers(
            "compliance_chainlink", "compliance_chainpurge", "compliance_chaincheckpoint", "compliance_chainanchor"
        ),
        migrations.RunPython(create, remove),
        migrations.RunPython(enqueue, enqueue_undo),
        migrations.RunPython(adopt, migrations.RunPython.noop),
    ]
