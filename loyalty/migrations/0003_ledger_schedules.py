"""Default schedules of the ledger jobs, editable in the admin afterwards."""

from django.db import migrations

from loyalty.kernel.schedules import schedules_operation


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0002_ledger"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [
        schedules_operation(
            [
                ("Expire points", "loyalty.tasks.points_expire_task", "5", "0"),
                ("Void lapsed redemption holds", "loyalty.tasks.holds_lapse_task", "*", "*"),
                ("Verify the ledger", "loyalty.tasks.ledger_verify_task", "30", "2"),
            ]
        )
    ]
