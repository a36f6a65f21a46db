"""Celery tasks of the compliance app (thin: the services do the work)."""

from __future__ import annotations

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def retention_purge_task() -> int:
    """The nightly retention purge (resumes an unfinished run first)."""
    from compliance.purge import retention_purge

    return retention_purge(dry_run=False, started_by="schedule").pk
