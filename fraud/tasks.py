"""Scheduled fraud work (schedules: django-celery-beat rows, fraud migration 0002)."""

from datetime import datetime

from django.utils import timezone

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def cases_escalate_overdue_task() -> int:
    """Raise the severity of open cases past their due time (``fraud.cases``). Idempotent;
    returns the number of cases raised."""
    from fraud.cases import cases_escalate_overdue

    return cases_escalate_overdue()


# --- outcomes (FRAUD.md §2; fraud.outcomes) ----------------------------------------------------


@retrying_task()
def risk_decide_apply_task(subject_keys: list[str]) -> dict:
    """After a commit that recorded signals: decide each subject now and apply the
    decision (``fraud.outcomes.subject_decide_apply``). Idempotent in effect: a repeat
    records another decision, which applies nothing new. Returns the outcomes applied."""
    from fraud.outcomes import subject_decide_apply, subject_of_key

    applied: dict[str, int] = {}
    for key in subject_keys:
        application = subject_decide_apply(subject_of_key(key))
        applied[application.outcome_after] = applied.get(application.outcome_after, 0) + 1
    return applied


@retrying_task()
def decisions_catch_up_task() -> int:
    """Every 5 minutes: decide the subjects whose newest signal has no decision after it
    (``fraud.outcomes.decisions_catch_up``). Returns the number decided."""
    from fraud.outcomes import decisions_catch_up

    return decisions_catch_up()


# --- batch detectors (FRAUD.md rows 2-10; fraud.detectors) ------------------------------------


def _as_of(as_of: str | None) -> datetime:
    return datetime.fromisoformat(as_of) if as_of else timezone.now()


@retrying_task()
def detectors_micro_batch_task(as_of: str | None = None) -> dict:
    """Every 5 minutes: the micro-batch detectors (earn_above_baseline,
    redemption_deviation, redemption_spike, store_issue_cap) over their watermark
    windows, 5 minutes behind ``as_of`` (default now). Idempotent (dedupe keys)."""
    from fraud.detectors import detectors_run

    return detectors_run("mb", _as_of(as_of))


@retrying_task()
def detectors_nightly_task(as_of: str | None = None) -> dict:
    """Nightly: refresh the last two local days' ``MemberDayStats``, then the nightly
    detectors (velocity_cap_streak, store_adjust_rate, staff_adjust_frequency,
    adjust_salami) over the days before ``as_of``'s. Idempotent."""
    from fraud.detectors import detectors_run
    from fraud.detectors.common import local_day
    from fraud.detectors.earning import member_day_stats_nightly

    when = _as_of(as_of)
    member_day_stats_nightly(local_day(when))
    return detectors_run("nb", when)


@retrying_task()
def detectors_monthly_task(as_of: str | None = None) -> dict:
    """On the 1st: the previous month's rationale audit sample (adjust_rationale_audit).
    Idempotent: the same draw, one row per adjustment."""
    from fraud.detectors import detectors_run

    return detectors_run("mo", _as_of(as_of))


@retrying_task()
def adjust_salami_posted_task(staff_id: int, as_of: str | None = None) -> dict:
    """After an adjustment posts (PC): the salami patterns of its requester alone."""
    from fraud.detectors.adjustments import adjust_salami
    from fraud.detectors.runs import snapshot

    with snapshot():
        return adjust_salami(_as_of(as_of), staff_id=staff_id)


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

    from fraud.detectors import REGISTRY

    return int(REGISTRY["refresh_token_reuse"](timezone.now()))


@retrying_task()
def staff_linked_accounts_task() -> int:
    """Nightly: members linked to a staff member (row 27). Idempotent within a quarter;
    returns the pairs found."""
    from django.utils import timezone

    from fraud.detectors import REGISTRY

    return int(REGISTRY["staff_linked_accounts"](timezone.now()))


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
