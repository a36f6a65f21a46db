"""Housekeeping tasks, called directly and run by a real Celery worker through Redis."""

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessAttemptExpiration
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from staffauth.tasks import lockouts_expire_task, staff_sessions_purge_task
from tests.subprocess_env import ROOT, child_env


def _session(key: str, expires_in: timedelta) -> Session:
    return Session.objects.create(session_key=key, session_data="e30:1", expire_date=timezone.now() + expires_in)


@pytest.mark.django_db
def test_purge_deletes_only_expired_sessions():
    _session("a" * 32, timedelta(minutes=-1))
    _session("b" * 32, timedelta(minutes=5))
    assert staff_sessions_purge_task() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == ["b" * 32]
    assert staff_sessions_purge_task() == 0  # idempotent


@pytest.mark.django_db
def test_lockouts_expire_after_their_cool_off():
    fields = {
        "user_agent": "",
        "http_accept": "",
        "path_info": "/",
        "get_data": "",
        "post_data": "",
        "failures_since_start": 5,
    }
    old = AccessAttempt.objects.create(username="old", ip_address="10.0.0.1", **fields)
    new = AccessAttempt.objects.create(username="new", ip_address="10.0.0.1", **fields)
    AccessAttemptExpiration.objects.create(access_attempt=old, expires_at=timezone.now() - timedelta(minutes=1))
    AccessAttemptExpiration.objects.create(access_attempt=new, expires_at=timezone.now() + timedelta(minutes=10))
    assert lockouts_expire_task() == 1
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["new"]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_through_redis(settings):
    # given: committed rows in the test database, and a worker on its own queue
    _session("c" * 32, timedelta(minutes=-1))
    _session("d" * 32, timedelta(hours=1))
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
        # when: the task goes through the broker (not eager)
        assert not settings.CELERY_TASK_ALWAYS_EAGER
        result = staff_sessions_purge_task.apply_async(queue=queue)
        deleted = result.get(timeout=60)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    # then: the worker deleted the expired row in the shared database
    assert deleted == 1, output
    assert list(Session.objects.values_list("session_key", flat=True)) == ["d" * 32]
