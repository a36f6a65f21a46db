"""Celery tasks of the data-subject requests (thin: the work is in compliance.requests)."""

from __future__ import annotations

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def dsr_clock_task() -> dict:
    from compliance.requests import exports_expire, requests_clock

    counts = requests_clock()
    counts["exports_expired"] = exports_expire()
    return counts


@retrying_task()
def dsr_export_build_task(request_id: int) -> bool:
    from compliance.requests import export_build

    export_build(request_id=request_id)
    return True
