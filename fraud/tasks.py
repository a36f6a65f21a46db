"""Scheduled fraud work (schedules: django-celery-beat rows, fraud migration 0002)."""

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def cases_escalate_overdue_task() -> int:
    """Raise the severity of open cases past their due time (``fraud.cases``). Idempotent;
    returns the number of cases raised."""
    from fraud.cases import cases_escalate_overdue

    return cases_escalate_overdue()


@retrying_task()
def security_event_assess_task(event_id: int) -> None:
    """Run the account detectors on one member security event (FRAUD.md rows 20-24;
    enqueued by ``fraud.receivers`` after the event's commit). Idempotent."""
    from fraud.detectors.accounts import security_event_assess

    security_event_assess(event_id=event_id)


@retrying_task()
def refresh_token_reuse_followups_task() -> int:
    """Every 5 minutes: a reused refresh token followed by a redemption within 24 h gets
    an alert and a case (row 23). Idempotent; returns the alerts standing."""
    from django.utils import timezone

    from fraud.detectors import DETECTORS

    return int(DETECTORS["refresh_token_reuse"](timezone.now()))


@retrying_task()
def staff_linked_accounts_task() -> int:
    """Nightly: members linked to a staff member (row 27). Idempotent within a quarter;
    returns the pairs found."""
    from django.utils import timezone

    from fraud.detectors import DETECTORS

    return int(DETECTORS["staff_linked_accounts"](timezone.now()))
