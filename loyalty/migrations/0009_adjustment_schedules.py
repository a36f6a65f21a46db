"""Default schedules of the adjustment jobs and the outbox sweeper, editable in the admin afterwards."""

from django.db import migrations

from loyalty.kernel.schedules import schedules_operation


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0008_adjustments"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [
        schedules_operation(
            [
                # 01:00 UTC is 09:00 in Kuala Lumpur: the previous local day is complete.
                ("Daily adjustment report", "loyalty.tasks.adjustment_report_task", "0", "1"),
                ("Expire undecided adjustment requests", "loyalty.tasks.adjustments_expire_task", "40", "*"),
                ("Deliver queued messages", "loyalty.tasks.messages_deliver_task", "*", "*"),
            ]
        )
    ]
