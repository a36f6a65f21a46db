"""Schedule of the complaint deadline sweep: every 15 minutes."""

from django.db import migrations

from loyalty.kernel.schedules import schedules_operation


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0011_consumer_guards"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        schedules_operation(
            [("Complaints: reminders and escalations", "compliance.tasks.complaints_deadline_sweep_task", "*/15", "*")]
        ),
    ]
