"""One shape for the programme's scheduled jobs."""

from collections.abc import Callable
from typing import Any

from celery import shared_task  # type: ignore[import-untyped]
from django.db import OperationalError

RETRYING = {"acks_late": True, "autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


def retrying_task(name: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Register a job (under ``name``, or by default under its module and function name):
    acknowledged late, retried (backing off, five times at most) when the database is
    briefly unreachable."""
    options: dict[str, Any] = dict(RETRYING)
    if name is not None:
        options["name"] = name
    decorator: Callable[[Callable[..., Any]], Any] = shared_task(**options)
    return decorator


# --- the job log (``JobRun``) ------------------------------------------------------------------
#
# The worker (or an eager run in-process) records each run as it ends, from Celery's
# signals: the start time is kept in memory under the task id between ``task_prerun`` and
# ``task_postrun``, and ``task_failure`` notes the exception's class name (never its
# message, nor the task's arguments or result: they may hold personal data). One INSERT
# per run; a run whose record cannot be written (the database is down: that is why it
# failed) is logged and the worker carries on.

_started: dict[str, Any] = {}
_errors: dict[str, str] = {}
_STATES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}


def _job_started(task_id: str | None = None, **_: Any) -> None:
    from django.utils import timezone

    if task_id:
        _started[task_id] = timezone.now()


def _job_failed(task_id: str | None = None, exception: BaseException | None = None, **_: Any) -> None:
    if task_id and exception is not None:
        _errors[task_id] = type(exception).__name__[:200]


def _job_retried(request: Any = None, reason: Any = None, **_: Any) -> None:
    task_id = getattr(request, "id", None)
    if task_id and isinstance(reason, BaseException):
        _errors[task_id] = type(reason).__name__[:200]


def _job_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    import logging

    from django.db import DatabaseError
    from django.utils import timezone

    from loyalty.kernel.models import JobRun

    started = _started.pop(task_id, None) if task_id else None
    error = _errors.pop(task_id, "") if task_id else ""
    recorded = _STATES.get(state or "")
    if task is None or recorded is None:
        return  # a state we do not log (e.g. an ignored or rejected task)
    request = getattr(task, "request", None)
    schedule = (getattr(request, "periodic_task_name", None) or "") if request is not None else ""
    if not schedule and request is not None:
        schedule = (getattr(request, "headers", None) or {}).get("periodic_task_name") or ""
    now = timezone.now()
    try:
        JobRun.objects.create(
            task_name=task.name[:200],
            periodic_task_name=str(schedule)[:200],
            started_at=started or now,
            finished_at=now,
            state=recorded,
            error=error if recorded != "success" else "",
        )
    except DatabaseError:
        logging.getLogger(__name__).warning("job run of %s not recorded (database error)", task.name)


def job_log_connect() -> None:
    """Record every task run as a ``JobRun`` (idempotent: receivers are connected once)."""
    from celery import signals

    signals.task_prerun.connect(_job_started, weak=False, dispatch_uid="loyalty.job_log.prerun")
    signals.task_failure.connect(_job_failed, weak=False, dispatch_uid="loyalty.job_log.failure")
    signals.task_retry.connect(_job_retried, weak=False, dispatch_uid="loyalty.job_log.retry")
    signals.task_postrun.connect(_job_finished, weak=False, dispatch_uid="loyalty.job_log.postrun")
