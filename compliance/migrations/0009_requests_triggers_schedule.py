"""Request events append-only; the deadline clock hourly (reminders, lapses, escalation)."""

from django.db import migrations

from loyalty.kernel.append_only import append_only_triggers
from loyalty.kernel.schedules import schedules_operation


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0008_requests"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        append_only_triggers("compliance_datasubjectrequestevent"),
        schedules_operation(
            [("Compliance: data-subject request deadlines", "compliance.tasks.dsr_clock_task", "15", "*")]
        ),
    ]
