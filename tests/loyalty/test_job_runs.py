"""The job log: every task run ends as a ``JobRun`` row (task, schedule, start, finish,
how it ended, and for a failure the exception's class name only), written from Celery's
signals, for eager runs in-process and for a real worker alike."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from celery import shared_task
from django.db import connection

from loyalty.kernel.models import JobRun
from staffauth.tasks import lockouts_expire_task, staff_sessions_purge_task
from tests.subprocess_env import ROOT, child_env

pytestmark = pytest.mark.django_db

# What an error message might carry (a path, a record's data): never stored. Not personal
# data here: Celery logs the message, and the run's log scan would rightly flag a name.
SECRET = "/srv/exports/batch-7731.csv"


class LedgerUnreachable(Exception):
    pass


@shared_task(name="tests.job_runs.failing_task")
def failing_task(member_name: str) -> None:
    raise LedgerUnreachable(f"could not reach the ledger for {member_name}")


def test_a_successful_run_is_recorded_with_its_times():
    # when: a shipped job runs (in-process, as the scheduler's "run now" would without a broker)
    result = lockouts_expire_task.apply()

    # then: one row, success, no error; started no later than finished
    assert result.successful()
    run = JobRun.objects.get()
    assert (run.task_name, run.state, run.error, run.periodic_task_name) == (
        "staffauth.tasks.lockouts_expire_task",
        "success",
        "",
        "",
    )
    assert run.started_at <= run.finished_at


def test_a_failed_run_keeps_the_error_class_name_and_nothing_else():
    # when: a task fails with a message holding data of its own
    result = failing_task.apply(args=[SECRET])

    # then: the row names the exception's class, never its message nor the arguments
    assert result.failed()
    run = JobRun.objects.get()
    assert (run.task_name, run.state, run.error) == ("tests.job_runs.failing_task", "failure", "LedgerUnreachable")
    stored = " ".join(str(value) for value in JobRun.objects.values_list().get())
    assert "batch-7731" not in stored and "ledger for" not in stored


def test_a_run_started_by_a_schedule_names_the_schedule():
    # given: the header django-celery-beat puts on the message of a scheduled run
    lockouts_expire_task.apply(headers={"periodic_task_name": "Expire lockouts"})

    assert JobRun.objects.get().periodic_task_name == "Expire lockouts"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_its_runs(settings):
    # given: a worker on its own queue, sharing the test database
    db = connection.settings_dict
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = child_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "loyalty", "worker", "--pool=solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # when: a task goes through the broker with the schedule's header
        assert not settings.CELERY_TASK_ALWAYS_EAGER
        result = staff_sessions_purge_task.apply_async(queue=queue, headers={"periodic_task_name": "Purge sessions"})
        result.get(timeout=60)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    # then: the worker wrote the row
    run = JobRun.objects.get()
    assert (run.task_name, run.periodic_task_name, run.state) == (
        "staffauth.tasks.staff_sessions_purge_task",
        "Purge sessions",
        "success",
    ), output
