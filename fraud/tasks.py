"""Scheduled fraud work (schedules: django-celery-beat rows, fraud migration 0002)."""

from datetime import datetime

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def cases_escalate_overdue_task() -> int:
    """Raise the severity of open cases past their due time (``fraud.cases``). Idempotent;
    returns the number of cases raised."""
    from fraud.cases import cases_escalate_overdue

    return cases_escalate_overdue()


@retrying_task()
def returns_detect_task(now: str | None = None) -> dict:
    """The return detectors' micro-batch (FRAUD.md rows 13-19, every 5 minutes):
    ``fraud.detectors.returns.returns_detect``. Idempotent; returns the counts written."""
    from fraud.detectors.returns import returns_detect

    run = returns_detect(now=datetime.fromisoformat(now) if now else None)
    return {"signals": run.signals, "warnings": run.ladder.warnings, "reviews": run.ladder.reviews}


@retrying_task()
def returns_nightly_task(as_of: str | None = None) -> dict:
    """Return rate and buy-return-rebuy cycles (FRAUD.md rows 11-12), then the ladder.
    Idempotent; returns the counts written."""
    from fraud.detectors.returns import returns_nightly

    run = returns_nightly(as_of=datetime.fromisoformat(as_of) if as_of else None)
    return {"signals": run.signals, "warnings": run.ladder.warnings, "reviews": run.ladder.reviews}
