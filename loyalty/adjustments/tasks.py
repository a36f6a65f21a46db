"""Adjustments' scheduled jobs (registered as ``loyalty.tasks.*``: the schedules name them)."""

from loyalty.kernel.jobs import retrying_task


@retrying_task("loyalty.tasks.adjustments_expire_task")
def adjustments_expire_task() -> int:
    """Expire adjustment requests nobody decided in time. Idempotent."""
    from loyalty.adjustments.services import adjustments_expire

    return adjustments_expire()


@retrying_task("loyalty.tasks.adjustment_report_task")
def adjustment_report_task(day: str | None = None) -> int:
    """Build the adjustment report of ``day`` (ISO date; by default yesterday, local
    time) and mail headquarters its summary, once per day. Idempotent: a re-run rebuilds
    the report and sends nothing more. Returns the report's id."""
    from datetime import date

    from loyalty.adjustments.reports import adjustment_report_publish, yesterday

    return adjustment_report_publish(day=date.fromisoformat(day) if day else yesterday()).pk
