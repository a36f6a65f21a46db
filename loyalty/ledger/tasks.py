"""The ledger's scheduled jobs (registered as ``loyalty.tasks.*``: the schedules name them)."""

from celery import shared_task

from loyalty.kernel.jobs import retrying_task


@retrying_task("loyalty.tasks.points_expire_task")
def points_expire_task(as_of: str | None = None) -> int:
    """Expire due lots. Idempotent and restartable (deterministic keys per lot)."""
    from datetime import date

    from loyalty.ledger.operations import points_expire_due

    return points_expire_due(as_of=date.fromisoformat(as_of) if as_of else None)


@retrying_task("loyalty.tasks.holds_lapse_task")
def holds_lapse_task() -> int:
    """Void redemption holds past their lapse time."""
    from loyalty.ledger.operations import points_holds_lapse

    return points_holds_lapse()


@shared_task(name="loyalty.tasks.ledger_verify_task", acks_late=True)
def ledger_verify_task() -> bool:
    """Verify every invariant; a failure is a security event for the fraud and ops teams."""
    from loyalty.ledger.verify import ledger_verify
    from staffauth.services import Kind, security_event_record

    report = ledger_verify()
    if not report.ok:
        security_event_record(
            kind=Kind.LEDGER_CHECK_FAILED, detail={"problems": report.problems[:20], "count": len(report.problems)}
        )
    return report.ok


@retrying_task("loyalty.tasks.points_pending_release_task")
def points_pending_release_task() -> int:
    """Release earned points whose return window has closed. Idempotent."""
    from loyalty.ledger.operations import points_pending_release

    return points_pending_release()
