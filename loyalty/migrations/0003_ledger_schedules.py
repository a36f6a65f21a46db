"""Default schedules of the ledger jobs, editable in the admin afterwards."""

from django.db import migrations

SCHEDULES = [
    # (name, task, minute, hour)
    ("Expire points", "loyalty.tasks.points_expire_task", "5", "0"),
    ("Void lapsed redemption holds", "loyalty.tasks.holds_lapse_task", "*", "*"),
    ("Verify the ledger", "loyalty.tasks.ledger_verify_task", "30", "2"),
]


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[n for n, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0002_ledger"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(create, remove)]
