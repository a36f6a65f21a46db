"""Scheduled fraud work (schedules: django-celery-beat rows, fraud migration 0002)."""

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def cases_escalate_overdue_task() -> int:
    """Raise the severity of open cases past their due time (``fraud.cases``). Idempotent;
    returns the number of cases raised."""
    from fraud.cases import cases_escalate_overdue

    return cases_escalate_overdue()


def _report(period: str) -> int:
    from fraud.reports import fraud_report_publish, previous_start

    return fraud_report_publish(period=period, day=previous_start(period)).pk


@retrying_task()
def fraud_report_daily_task() -> int:
    """Build yesterday's fraud report (local day) and mail its summary once. Idempotent:
    a final report is never rebuilt, a summary never sent twice. Returns the report's id."""
    return _report("daily")


@retrying_task()
def fraud_report_weekly_task() -> int:
    """Build last week's (Monday to Sunday) fraud report and mail its summary once."""
    return _report("weekly")


@retrying_task()
def fraud_report_monthly_task() -> int:
    """Build last month's fraud report and mail its summary once."""
    return _report("monthly")
