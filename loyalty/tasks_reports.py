"""Scheduled report jobs: the daily adjustment report.

Celery's autodiscovery imports each app's ``tasks.py`` only; ``loyalty.tasks`` imports
this module so that workers register its tasks.
"""

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def adjustment_report_task(day: str | None = None) -> int:
    """Build the adjustment report of ``day`` (ISO date; by default yesterday, local
    time) and mail headquarters its summary, once per day. Idempotent: a re-run rebuilds
    the report and sends nothing more. Returns the report's id."""
    from datetime import date

    from loyalty.reports import adjustment_report_publish, yesterday

    return adjustment_report_publish(day=date.fromisoformat(day) if day else yesterday()).pk
