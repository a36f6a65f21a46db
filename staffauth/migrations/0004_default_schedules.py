"""Default schedules of the housekeeping tasks, editable in the admin afterwards."""

from django.db import migrations

from loyalty.kernel.schedules import schedules_operation


class Migration(migrations.Migration):
    dependencies = [
        ("staffauth", "0003_securityevent_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        schedules_operation(
            [
                ("Purge expired staff sessions", "staffauth.tasks.staff_sessions_purge_task", "15", "3"),
                ("Expire lockout records", "staffauth.tasks.lockouts_expire_task", "*/30", "*"),
            ]
        )
    ]
