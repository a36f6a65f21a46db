"""The nightly retention purge's schedule."""

from django.db import migrations

from loyalty.kernel.schedules import schedules_operation


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0004_retention_sql"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        schedules_operation(
            [("Compliance: nightly retention purge", "compliance.tasks.retention_purge_task", "30", "19")]
        )
    ]
