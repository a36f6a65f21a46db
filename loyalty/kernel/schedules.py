"""Default schedules shipped by data migrations (django-celery-beat rows, editable in
the admin afterwards). One helper, so every migration creates them the same way."""

from __future__ import annotations

from typing import Any

from django.db import migrations

# (name, task, minute, hour): daily or hourly crontabs in UTC.
Schedule = tuple[str, str, str, str]


def schedules_operation(schedules: list[Schedule]) -> migrations.RunPython:
    """A RunPython operation creating ``schedules`` (idempotently) and removing them on reverse."""

    def create(apps: Any, schema_editor: Any) -> None:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        for name, task, minute, hour in schedules:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
            )
            PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})

    def remove(apps: Any, schema_editor: Any) -> None:
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[s[0] for s in schedules]).delete()

    return migrations.RunPython(create, remove)
