"""Fraud cases (FRAUD.md §3): alerts grouped per (inbox, subject), worked by analysts.

States: new → investigating → awaiting_action → investigating | closed; new → closed
(dismiss); closed → investigating (reopen, with a reason). Snooze is an overlay a new
signal lifts. Every change is one conditional UPDATE (a repeat changes nothing and
writes nothing), checked against ``fraud.permissions.WORK_CASE`` and recorded as a
``CaseEvent``. Refusals carry stable codes (``CaseRefused``).

At most one open case per (inbox, subject): the partial unique index
``fraud_case_one_open_per_subject`` decides between concurrent openers; the loser joins
the winner's case. A signal after a closure opens a new case linked to the old one
(``previous_case``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from fraud import config as fraud_config
from fraud.models import CaseEvent, DetectorSnooze, FraudCase, RiskSignal
from fraud.permissions import WORK_CASE, may_work_cases
from fraud.scoring import Subject, risk_score
from loyalty.kernel.refusals import Refusal

OPEN = ~Q(status=FraudCase.Status.CLOSED)
_OPEN_STATUSES = (FraudCase.Status.NEW, FraudCase.Status.INVESTIGATING, FraudCase.Status.AWAITING_ACTION)
SEVERITY_ORDER = list(fraud_config.SEVERITIES)  # low → critical
RESOLUTION_REASONS = ("contained", "mitigated", "false_positive", "benign", "duplicate", "insufficient_evidence")


class CaseRefused(Refusal):
    """A refused case operation, with a stable ``code``."""

    MESSAGES = {
        "permission_denied": "You may not do this.",
        "not_found": "No such case.",
        "illegal_transition": "The case is not in a state that allows this.",
        "already_closed": "This case is already closed.",
        "invalid_outcome": "Choose an outcome: confirmed fraud, not fraud or inconclusive.",
        "invalid_reason": "Choose a resolution reason.",
        "reason_required": "Give a reason.",
        "not_an_analyst": "Cases can only be assigned to a fraud analyst.",
        "open_case_exists": "The subject already has an open case in this inbox.",
        "invalid_snooze": "A snooze must end in the future.",
    }


def inbox_for(detector: str, subject: Subject) -> str:
    """The inbox of a detector's signal about ``subject``: staff → insider, store and
    till → store, client → api; a member → returns for the returns family, else ato."""
    if subject.kind == "member":
        family = fraud_config.detector(detector).family
        return FraudCase.Inbox.RETURNS if family == "returns" else FraudCase.Inbox.ATO
    return {"staff": FraudCase.Inbox.INSIDER, "client": FraudCase.Inbox.API}.get(subject.kind, FraudCase.Inbox.STORE)


def severity_for(alert_severity: str, score: int) -> str:
    """A case's severity: the alert's (low/medium/high), raised by the score (≥ the
    block_and_review band: critical; ≥ the step_up band: at least high)."""
    bands = fraud_config.fraud_config()["outcome_bands"]
    severity = alert_severity if alert_severity in SEVERITY_ORDER else "medium"
    if score >= int(bands["block_and_review"]):
        return "critical"
    if score >= int(bands["step_up"]) and SEVERITY_ORDER.index(severity) < SEVERITY_ORDER.index("high"):
        return "high"
    return severity


def _due(severity: str, start: datetime) -> datetime:
    return start + timedelta(hours=fraud_config.case_due_hours(severity))


def _event(
    case_id: int, kind: str, at: datetime, *, actor: Any = None, old: Any = "", new: Any = "", note: str = ""
) -> None:
    CaseEvent.objects.create(
        case_id=case_id,
        actor=actor,
        kind=kind,
        old_value="" if old is None else str(old)[:64],
        new_value="" if new is None else str(new)[:64],
        note=note,
        at=at,
    )


def case_event_record(
    case_id: int, kind: str, at: datetime, *, actor: Any = None, old: Any = "", new: Any = "", note: str = ""
) -> None:
    """Record one ``CaseEvent`` (the case actions of ``fraud.actions`` record theirs here)."""
    _event(case_id, kind, at, actor=actor, old=old, new=new, note=note)


def fraud_analysts() -> Any:
    """Active staff users who may work cases (by group or own permission), no superusers."""
    app_label, codename = WORK_CASE.split(".")
    perm = Q(groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label) | Q(
        user_permissions__codename=codename, user_permissions__content_type__app_label=app_label
    )
    return get_user_model().objects.filter(perm, is_active=True, is_superuser=False).distinct()


def _auto_assignee() -> int | None:
    """The least-loaded analyst (fewest open cases, then lowest id) under the cap."""
    cap = fraud_config.auto_assign_cap()
    loads = (
        get_user_model()
        .objects.filter(pk__in=fraud_analysts().values("pk"))
        .annotate(load=Count("fraud_cases", filter=Q(fraud_cases__status__in=_OPEN_STATUSES)))
        .filter(load__lt=cap)
        .order_by("load", "pk")
        .values_list("pk", flat=True)
    )
    return loads.first()


def _case_find_or_open(
    *,
    subject: Subject,
    inbox: str,
    severity: str,
    score: int,
    ruleset_version: int,
    first_signal_at: datetime,
    origin: str,
    note: str,
    now: datetime,
) -> tuple[FraudCase, bool]:
    """The open case of (inbox, subject), or a new one (auto-assigned, due by severity,
    linked to the subject's last closed case in the inbox; its ``opened`` event names
    ``origin``). Race-safe: a concurrent opener's case is returned. (case, opened)."""
    case = FraudCase.objects.filter(OPEN, inbox=inbox, subject_key=subject.key).first()
    if case is not None:
        return case, False
    level = severity_for(severity, score)
    previous = (
        FraudCase.objects.filter(inbox=inbox, subject_key=subject.key, status=FraudCase.Status.CLOSED)
        .order_by("-closed_at", "-id")
        .first()
    )
    try:
        with transaction.atomic():
            case = FraudCase.objects.create(
                inbox=inbox,
                severity=level,
                score_at_open=score,
                ruleset_version=ruleset_version,
                previous_case=previous,
                due_at=_due(level, now),
                first_signal_at=first_signal_at,
                opened_at=now,
                assigned_to_id=_auto_assignee(),
                **subject.fields(),
            )
            case.reference = f"FC-{now.year}-{case.pk:06d}"
            FraudCase.objects.filter(pk=case.pk).update(reference=case.reference)
            _event(case.pk, "opened", now, new=origin, note=note)
            if previous is not None:
                _event(case.pk, "linked", now, old=previous.reference)
            if case.assigned_to_id:
                _event(case.pk, "assigned", now, new=case.assigned_to_id, note="auto")
        return case, True
    except IntegrityError:
        return FraudCase.objects.get(OPEN, inbox=inbox, subject_key=subject.key), False


def case_for_signal(
    *, signal: RiskSignal, severity: str = "medium", now: datetime | None = None
) -> tuple[FraudCase, bool]:
    """Join ``signal`` to the open case of its (inbox, subject), or open one (auto-assigned,
    due by severity, linked to the subject's last closed case in the inbox). A join lifts
    a snooze and may raise the severity. Returns (case, opened). Race-safe: a concurrent
    opener's case is joined."""
    now = now or timezone.now()
    subject = Subject.of(signal)
    inbox = inbox_for(signal.detector, subject)
    case = FraudCase.objects.filter(OPEN, inbox=inbox, subject_key=subject.key).first()
    if case is None:
        case, opened = _case_find_or_open(
            subject=subject, inbox=inbox, severity=severity, score=risk_score(subject, now).score,
            ruleset_version=signal.ruleset_version, first_signal_at=signal.occurred_at, origin=signal.detector,
            note=f"signal {signal.pk}", now=now,
        )  # fmt: skip
        if opened:
            return case, True
    _event(case.pk, "signal_joined", now, new=signal.detector, note=f"signal {signal.pk}")
    _case_raise(case, severity, now, cause=signal.detector)
    if signal.occurred_at < case.first_signal_at:
        FraudCase.objects.filter(pk=case.pk, first_signal_at__gt=signal.occurred_at).update(
            first_signal_at=signal.occurred_at
        )
    case.refresh_from_db()
    return case, False


def case_for_decision(
    *,
    subject: Subject,
    detector: str,
    severity: str,
    score: int,
    ruleset_version: int,
    first_signal_at: datetime,
    decision_id: int,
    now: datetime | None = None,
) -> tuple[FraudCase, bool]:
    """The case a risk decision's outcome asks for (``fraud.outcomes``): the open case of
    (the inbox of ``detector``, its largest or forcing detector; ``subject``), its
    severity raised to ``severity`` (a snooze lifted), or a new one. Returns (case,
    opened). Race-safe like ``case_for_signal``."""
    now = now or timezone.now()
    inbox = inbox_for(detector, subject)
    case, opened = _case_find_or_open(
        subject=subject, inbox=inbox, severity=severity, score=score, ruleset_version=ruleset_version,
        first_signal_at=first_signal_at, origin="risk_decision", note=f"decision {decision_id}", now=now,
    )  # fmt: skip
    if not opened:
        _case_raise(case, severity, now, cause="risk_decision")
        case.refresh_from_db()
    return case, opened


def _case_raise(case: FraudCase, severity: str, now: datetime, *, cause: str) -> None:
    """A case joined by new evidence: a snooze lifted, the severity raised to ``severity``."""
    if FraudCase.objects.filter(pk=case.pk, snoozed_until__isnull=False).update(snoozed_until=None):
        _event(case.pk, "snooze_lifted", now, new=cause)
    level = severity if severity in SEVERITY_ORDER else "medium"
    higher = SEVERITY_ORDER[SEVERITY_ORDER.index(level) + 1 :]
    lower = [s for s in SEVERITY_ORDER if s not in higher and s != level]
    if lower and FraudCase.objects.filter(OPEN, pk=case.pk, severity__in=lower).update(
        severity=level, due_at=_due(level, now)
    ):
        _event(case.pk, "severity_raised", now, old=case.severity, new=level)


# --- The analyst's operations ---------------------------------------------------------------


def _authorised(actor: Any) -> None:
    if not may_work_cases(actor):
        raise CaseRefused("permission_denied")


def _get(case_id: int) -> FraudCase:
    case = FraudCase.objects.filter(pk=case_id).first()
    if case is None:
        raise CaseRefused("not_found")
    return case


def _transition(
    case_id: int, actor: Any, *, kind: str, to: str, allowed_from: tuple[str, ...], now: datetime | None, **extra: Any
) -> FraudCase:
    _authorised(actor)
    now = now or timezone.now()
    case = _get(case_id)
    if case.status == to and not extra:
        return case  # a repeat: nothing changes, nothing recorded
    changed = FraudCase.objects.filter(pk=case_id, status__in=allowed_from).update(status=to, **extra)
    if not changed:
        current = _get(case_id)
        if current.status == to:
            return current
        raise CaseRefused("already_closed" if current.status == FraudCase.Status.CLOSED else "illegal_transition")
    _event(case_id, kind, now, actor=actor, old=case.status, new=to)
    return _get(case_id)


def case_assign(*, case_id: int, assignee_id: int | None, actor: Any, now: datetime | None = None) -> FraudCase:
    """Assign an open case to an analyst (``assignee_id``; None unassigns)."""
    _authorised(actor)
    now = now or timezone.now()
    if assignee_id is not None and not fraud_analysts().filter(pk=assignee_id).exists():
        raise CaseRefused("not_an_analyst")
    case = _get(case_id)
    if case.status == FraudCase.Status.CLOSED:
        raise CaseRefused("already_closed")
    if (
        FraudCase.objects.filter(OPEN, pk=case_id)
        .exclude(assigned_to_id=assignee_id)
        .update(assigned_to_id=assignee_id)
    ):
        _event(case_id, "assigned", now, actor=actor, old=case.assigned_to_id, new=assignee_id)
    return _get(case_id)


def case_start(*, case_id: int, actor: Any, now: datetime | None = None) -> FraudCase:
    """new or awaiting_action → investigating."""
    return _transition(
        case_id, actor, kind="started", to=FraudCase.Status.INVESTIGATING,
        allowed_from=(FraudCase.Status.NEW, FraudCase.Status.AWAITING_ACTION), now=now,
    )  # fmt: skip


def case_await_action(*, case_id: int, actor: Any, note: str = "", now: datetime | None = None) -> FraudCase:
    """investigating → awaiting_action (a reversal, a deactivation or an identity proof pending)."""
    case = _transition(
        case_id, actor, kind="awaiting_action", to=FraudCase.Status.AWAITING_ACTION,
        allowed_from=(FraudCase.Status.INVESTIGATING,), now=now,
    )  # fmt: skip
    if note:
        case_note(case_id=case_id, actor=actor, note=note, now=now)
    return case


def case_close(
    *, case_id: int, outcome: str, resolution_reason: str, actor: Any, note: str = "", now: datetime | None = None
) -> FraudCase:
    """Close an open case with an outcome and a resolution reason (from any open state:
    new → closed is a dismissal). ``not_fraud`` snoozes the detectors that fired for the
    subject (``not_fraud_snooze_days``). Closing a closed case again with the same
    outcome changes nothing; with another: ``already_closed``."""
    _authorised(actor)
    if outcome not in FraudCase.Outcome.values:
        raise CaseRefused("invalid_outcome")
    if resolution_reason not in RESOLUTION_REASONS:
        raise CaseRefused("invalid_reason")
    now = now or timezone.now()
    case = _get(case_id)
    if case.status == FraudCase.Status.CLOSED:
        if case.outcome == outcome:
            return case
        raise CaseRefused("already_closed")
    with transaction.atomic():
        changed = FraudCase.objects.filter(OPEN, pk=case_id).update(
            status=FraudCase.Status.CLOSED,
            outcome=outcome,
            resolution_reason=resolution_reason,
            closed_at=now,
            closed_by=actor,
            snoozed_until=None,
        )
        if not changed:
            return case_close(
                case_id=case_id, outcome=outcome, resolution_reason=resolution_reason, actor=actor, now=now
            )
        _event(case_id, "closed", now, actor=actor, old=case.status, new=outcome, note=note)
        if outcome == FraudCase.Outcome.NOT_FRAUD:
            _snooze_fired_detectors(case, actor, now)
    return _get(case_id)


def _snooze_fired_detectors(case: FraudCase, actor: Any, now: datetime) -> None:
    detectors = sorted(
        set(
            RiskSignal.objects.filter(subject_key=case.subject_key, alert__case=case).values_list("detector", flat=True)
        )
        | set(case.events.filter(kind__in=("opened", "signal_joined")).values_list("new_value", flat=True))
    )
    until = now + timedelta(days=fraud_config.not_fraud_snooze_days())
    subject = Subject.of(case)
    for detector in detectors:
        DetectorSnooze.objects.create(
            detector=detector, until=until, reason=f"not_fraud {case.reference}", by=actor, **subject.fields()
        )


def case_reopen(*, case_id: int, reason: str, actor: Any, now: datetime | None = None) -> FraudCase:
    """closed → investigating, with a reason; the outcome is cleared (the events keep it).
    ``open_case_exists`` when the subject has another open case in the inbox."""
    _authorised(actor)
    if not reason.strip():
        raise CaseRefused("reason_required")
    now = now or timezone.now()
    case = _get(case_id)
    try:
        with transaction.atomic():
            changed = FraudCase.objects.filter(pk=case_id, status=FraudCase.Status.CLOSED).update(
                status=FraudCase.Status.INVESTIGATING, outcome="", resolution_reason="", closed_at=None, closed_by=None
            )
    except IntegrityError:
        raise CaseRefused("open_case_exists") from None
    if not changed:
        raise CaseRefused("illegal_transition")
    _event(case_id, "reopened", now, actor=actor, old=case.outcome, new=FraudCase.Status.INVESTIGATING, note=reason)
    return _get(case_id)


def case_snooze(
    *, case_id: int, until: datetime, actor: Any, reason: str = "", now: datetime | None = None
) -> FraudCase:
    """Hide an open case from the queue until ``until`` (a new signal lifts it)."""
    _authorised(actor)
    now = now or timezone.now()
    if until <= now:
        raise CaseRefused("invalid_snooze")
    case = _get(case_id)
    if case.status == FraudCase.Status.CLOSED:
        raise CaseRefused("already_closed")
    if FraudCase.objects.filter(OPEN, pk=case_id).exclude(snoozed_until=until).update(snoozed_until=until):
        _event(case_id, "snoozed", now, actor=actor, old=case.snoozed_until or "", new=until.isoformat(), note=reason)
    return _get(case_id)


def case_unsnooze(*, case_id: int, actor: Any, now: datetime | None = None) -> FraudCase:
    _authorised(actor)
    now = now or timezone.now()
    _get(case_id)
    if FraudCase.objects.filter(pk=case_id, snoozed_until__isnull=False).update(snoozed_until=None):
        _event(case_id, "unsnoozed", now, actor=actor)
    return _get(case_id)


def case_note(*, case_id: int, note: str, actor: Any, now: datetime | None = None) -> CaseEvent:
    """Add a note to a case's timeline (no personal data: it is the case's record)."""
    _authorised(actor)
    if not note.strip():
        raise CaseRefused("reason_required")
    _get(case_id)
    now = now or timezone.now()
    return CaseEvent.objects.create(case_id=case_id, actor=actor, kind="note", note=note, at=now)


def case_mark_contained(*, case_id: int, actor: Any, now: datetime | None = None) -> FraudCase:
    """Record when the case's harm was contained (once; the case actions call this)."""
    _authorised(actor)
    now = now or timezone.now()
    _get(case_id)
    if FraudCase.objects.filter(pk=case_id, contained_at__isnull=True).update(contained_at=now):
        _event(case_id, "contained", now, actor=actor)
    return _get(case_id)


def cases_escalate_overdue(now: datetime | None = None) -> int:
    """Raise the severity of every open case past its due time by one step (critical
    stays critical and is not touched again) and give it the new severity's due time.
    Idempotent per case and due time; returns the number of cases raised."""
    now = now or timezone.now()
    raised = 0
    overdue = FraudCase.objects.filter(OPEN, due_at__lt=now).exclude(severity=FraudCase.Severity.CRITICAL)
    for case_id, severity, due_at in overdue.values_list("pk", "severity", "due_at").order_by("due_at", "pk"):
        higher = SEVERITY_ORDER[SEVERITY_ORDER.index(severity) + 1]
        if FraudCase.objects.filter(OPEN, pk=case_id, severity=severity, due_at=due_at).update(
            severity=higher, due_at=_due(higher, now)
        ):
            _event(case_id, "severity_raised", now, old=severity, new=higher, note="overdue")
            raised += 1
    return raised
