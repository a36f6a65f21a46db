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
