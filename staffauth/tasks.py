"""Scheduled housekeeping for staff security data (schedules: django-celery-beat)."""

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def staff_sessions_purge_task() -> int:
    """Delete expired sessions from the session table. Idempotent; returns rows deleted."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def lockouts_expire_task() -> int:
    """Delete axes failure records whose cool-off has passed. Idempotent; returns rows deleted."""
    from axes.models import AccessAttempt
    from django.utils import timezone

    _, per_model = AccessAttempt.objects.filter(expiration__expires_at__lt=timezone.now()).delete()
    return per_model.get(AccessAttempt._meta.label, 0)
