"""Scheduled ledger jobs: expiry, lapsed holds, the nightly verification."""

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def points_expire_task(as_of: str | None = None) -> int:
    """Expire due lots. Idempotent and restartable (deterministic keys per lot)."""
    from datetime import date

    from loyalty.ledger.operations import points_expire_due

    return points_expire_due(as_of=date.fromisoformat(as_of) if as_of else None)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def holds_lapse_task() -> int:
    """Void redemption holds past their lapse time."""
    from loyalty.ledger.operations import points_holds_lapse

    return points_holds_lapse()


@shared_task(acks_late=True)
def ledger_verify_task() -> bool:
    """Verify every invariant; a failure is a security event for the fraud and ops teams."""
    from loyalty.verify import ledger_verify
    from staffauth.services import Kind, security_event_record

    report = ledger_verify()
    if not report.ok:
        security_event_record(
            kind=Kind.LEDGER_CHECK_FAILED, detail={"problems": report.problems[:20], "count": len(report.problems)}
        )
    return report.ok


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def points_pending_release_task() -> int:
    """Release earned points whose return window has closed. Idempotent."""
    from loyalty.ledger.operations import points_pending_release

    return points_pending_release()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def message_deliver_task(message_id: int) -> str:
    """Deliver one outbox message (queued by ``loyalty.notifications``). Idempotent."""
    from loyalty.notifications import message_deliver

    return message_deliver(message_id=message_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def messages_deliver_task() -> int:
    """Deliver whatever the outbox still holds queued."""
    from loyalty.notifications import messages_deliver_queued

    return messages_deliver_queued()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def adjustments_expire_task() -> int:
    """Expire adjustment requests nobody decided in time. Idempotent."""
    from loyalty.adjustments import adjustments_expire

    return adjustments_expire()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def adjustment_report_task(day: str | None = None) -> int:
    """Build the adjustment report of ``day`` (ISO date; by default yesterday, local
    time) and mail headquarters its summary, once per day. Idempotent: a re-run rebuilds
    the report and sends nothing more. Returns the report's id."""
    from datetime import date

    from loyalty.reports import adjustment_report_publish, yesterday

    return adjustment_report_publish(day=date.fromisoformat(day) if day else yesterday()).pk
