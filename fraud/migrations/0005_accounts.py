"""Schedules of the account and staff detectors (FRAUD.md rows 23 and 27)."""

from django.db import migrations

from loyalty.kernel.schedules import schedules_operation


class Migration(migrations.Migration):
    dependencies = [
        ("fraud", "0004_returns"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        schedules_operation(
            [
                (
                    "Fraud: reused refresh tokens followed by a redemption",
                    "fraud.tasks.refresh_token_reuse_followups_task",
                    "*/5",
                    "*",
                ),
                ("Fraud: staff-linked member accounts", "fraud.tasks.staff_linked_accounts_task", "40", "2"),
            ]
        ),
    ]
