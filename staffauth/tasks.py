"""Scheduled housekeeping for staff security data (schedules: django-celery-beat)."""

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def staff_sessions_purge_task() -> int:
    """Delete expired sessions from the session table. Idempotent; returns rows deleted."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@retrying_task()
def lockouts_expire_task() -> int:
    """Delete axes failure records whose cool-off has passed. Idempotent; returns rows deleted."""
    from axes.models import AccessAttempt
    from django.utils import timezone

    _, per_model = AccessAttempt.objects.filter(expiration__expires_at__lt=timezone.now()).delete()
    return per_model.get(AccessAttempt._meta.label, 0)
