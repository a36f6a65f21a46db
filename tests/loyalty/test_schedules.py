"""The database schedules (django-celery-beat rows the migrations ship) name tasks a
worker knows: after Celery's autodiscovery every scheduled task name is registered. The
ledger's and the adjustments' jobs live in ``loyalty/ledger/tasks.py`` and
``loyalty/adjustments/tasks.py`` and keep the names the rows store (``loyalty.tasks.*``)."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from loyalty.celery import app

pytestmark = pytest.mark.django_db

# The jobs that moved out of loyalty/tasks.py, under the names the schedules store.
MOVED = {
    "loyalty.tasks.points_expire_task",
    "loyalty.tasks.holds_lapse_task",
    "loyalty.tasks.points_pending_release_task",
    "loyalty.tasks.adjustments_expire_task",
    "loyalty.tasks.adjustment_report_task",
}


def scheduled_task_names() -> set[str]:
    return set(PeriodicTask.objects.values_list("task", flat=True))


def test_every_scheduled_task_is_registered_after_autodiscovery():
    app.loader.import_default_modules()
    scheduled = scheduled_task_names()
    assert scheduled, "the migrations ship schedules"
    assert sorted(scheduled - set(app.tasks)) == []


def test_the_moved_jobs_keep_their_scheduled_names():
    app.loader.import_default_modules()
    assert scheduled_task_names() >= MOVED
    assert {app.tasks[name].__module__ for name in MOVED} == {"loyalty.ledger.tasks", "loyalty.adjustments.tasks"}
