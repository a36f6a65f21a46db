"""Scheduled fraud work (schedules: django-celery-beat rows, fraud migration 0002)."""

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def cases_escalate_overdue_task() -> int:
    """Raise the severity of open cases past their due time (``fraud.cases``). Idempotent;
    returns the number of cases raised."""
    from fraud.cases import cases_escalate_overdue

    return cases_escalate_overdue()
