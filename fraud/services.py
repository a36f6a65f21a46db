"""Raising and closing fraud alerts; the pipeline from a detector to a case.

The pipeline (FRAUD.md §2-3):

1. **Detector** (in the app that owns the data, or a fraud batch task) computes facts
   (ids, counts, enums, times) and calls ``alert_raise`` (an alert, its signals and their
   cases) or ``fraud.scoring.signal_raise`` (a signal only: weight without an alert).
2. **Signal** (``RiskSignal``): one per (incident, subject), the detector's weight copied
   from the active ``FraudRuleset``; nothing while the detector is snoozed for the subject.
3. **Score / decision** (``fraud.scoring.risk_score`` / ``risk_decide``): the decayed,
   capped sum of a subject's signals mapped to allow / review / step_up /
   block_and_review, or an outcome a detector forces; stored with its contributions.
   After the signal's transaction commits the subject is decided once and the outcome
   applied (``fraud.outcomes``: an alert, a case, a member's step-up or spending freeze).
4. **Alert** (``FraudAlert``): one per ``dedupe_key``; more than ``storm_alerts_per_hour``
   from one detector trip it (one ``detector_storm`` alert; while tripped its signals are
   still recorded but raise no alerts or cases, and ``detector_paused`` tells automatic
   actions to hold).
5. **Case** (``fraud.cases``): each signal of an alert joins the open case of its
   (inbox, subject) or opens one; analysts work it (``case_*`` services).

Other apps report what they saw through these functions, with facts as ids and counts
(never a code, a token, personal data or a secret): fraud imports no app that raises
alerts, so a detector computes its facts from its own tables and passes them in
(``vouchers.services.redemption``: a rescan of a used voucher, a cashier redeeming too often, a
sampled redemption found irregular). One alert per incident: each kind has its
``dedupe_key`` and a second raise finds the first, even when two raise at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from fraud import config as fraud_config
from fraud.cases import (  # noqa: F401  (re-exported: the case services' public home)
    CaseRefused,
    case_assign,
    case_await_action,
    case_close,
    case_for_signal,
    case_mark_contained,
    case_note,
    case_reopen,
    case_snooze,
    case_start,
    case_unsnooze,
    cases_escalate_overdue,
)
from fraud.models import FraudAlert, FraudCase, RiskSignal
from fraud.permissions import may_close_alerts
from fraud.scoring import (  # noqa: F401  (re-exported)
    SignalRefused,
    Subject,
    risk_decide,
    risk_score,
    ruleset_current,
    signal_raise,
)
from loyalty.kernel.models import Till
from loyalty.kernel.refusals import Refusal


class AlertRefused(Refusal):
    """A refused alert operation, with a stable ``code`` (``permission_denied``,
    ``not_found``, ``already_closed``) and a message safe to show."""

    MESSAGES = {
        "permission_denied": "You may not do this.",
        "not_found": "No such item.",
        "already_closed": "This alert is already closed.",
    }


def fraud_alert_raise(*, kind: str, dedupe_key: str, severity: str, **fields: Any) -> tuple[FraudAlert, bool]:
    """One alert per ``dedupe_key`` (concurrent raises find the first): returns the
    alert and whether this call created it. ``fields`` are the model's other fields
    (``member``/``member_id``, ``staff_id``, ``store_id``, ``detail``)."""
    try:
        with transaction.atomic():
            return FraudAlert.objects.get_or_create(
                dedupe_key=dedupe_key, defaults={"kind": kind, "severity": severity, **fields}
            )
    except IntegrityError:
        return FraudAlert.objects.get(dedupe_key=dedupe_key), False


@dataclass(frozen=True)
class AlertKind:
    """What the one raiser needs to know of a kind of alert: its severity, the facts that
    name one incident (its ``dedupe_key``, after the kind) and the facts it keeps."""

    severity: str
    incident: tuple[str, ...]
    detail: tuple[str, ...]


ALERT_KINDS: dict[str, AlertKind] = {
    # A used voucher presented again: one per voucher and local day.
    "voucher_rescan": AlertKind(
        FraudAlert.Severity.HIGH,
        incident=("voucher_id", "day"),
        detail=("voucher_id", "till_id", "redeemed_at_till_id", "day"),
    ),
    # A cashier redeeming too often: one per staff member and window.
    "cashier_redemption_frequency": AlertKind(
        FraudAlert.Severity.MEDIUM,
        incident=("staff_id", "window_minutes", "window"),
        detail=("redemptions", "threshold", "window_minutes", "shift_id"),
    ),
    # A sampled redemption found irregular by a store manager: one per audit row.
    "redemption_irregular": AlertKind(
        FraudAlert.Severity.HIGH,
        incident=("audit_id",),
        detail=("audit_id", "voucher_redemption_id", "ledger_operation_id", "reviewed_by", "points"),
    ),
}


def fraud_alert_raise_kind(
    kind: str,
    *,
    member_id: int | None = None,
    staff_id: int | None = None,
    store_id: int | None = None,
    occurred_at: datetime | None = None,
    **facts: Any,
) -> FraudAlert:
    """Raise (or find) the alert of one incident of ``kind`` (``ALERT_KINDS``): its
    dedupe key and kept detail are read from ``facts`` (ids and counts only). The till's
    alerts signal the staff member, the till and the store (FRAUD.md row 26), each
    joining or opening its case."""
    spec = ALERT_KINDS[kind]
    named = {**facts, "staff_id": staff_id}
    subjects = [Subject.staff(staff_id)] if staff_id else []
    till_id = facts.get("till_id")
    if till_id and Till.objects.filter(pk=till_id).exists():
        subjects.append(Subject.till(till_id))
    if store_id:
        subjects.append(Subject.store(store_id))
    raised = alert_raise(
        detector=kind,
        subjects=subjects,
        facts={fact: facts[fact] for fact in spec.detail},
        occurred_at=occurred_at or timezone.now(),
        dedupe_key=":".join([kind, *(str(named[fact]) for fact in spec.incident)]),
        severity=spec.severity,
        member_id=member_id,
        staff_id=staff_id,
        store_id=store_id,
    )
    if raised.alert is None:  # a tripped detector: the alert is still the incident's record
        alert, _ = fraud_alert_raise(
            kind=kind,
            dedupe_key=":".join([kind, *(str(named[fact]) for fact in spec.incident)]),
            severity=spec.severity,
            member_id=member_id,
            staff_id=staff_id,
            store_id=store_id,
            detail={fact: facts[fact] for fact in spec.detail},
        )
        return alert
    return raised.alert


@dataclass
class Raised:
    """What ``alert_raise`` did: the alert (None while the detector is tripped), whether
    this call created it, the signals recorded and the cases they joined or opened."""

    alert: FraudAlert | None
    created: bool
    signals: list[RiskSignal] = field(default_factory=list)
    cases: list[FraudCase] = field(default_factory=list)
    paused: bool = False


STORM_KIND = "detector_storm"


def detector_paused(detector: str, now: datetime | None = None) -> bool:
    """True while ``detector`` is tripped: an open ``detector_storm`` alert about it from
    the last hour. Automatic actions (freezes, throttles) of a tripped detector wait."""
    now = now or timezone.now()
    return (
        FraudAlert.objects.filter(kind=STORM_KIND, detail__detector=detector, created_at__gte=now - timedelta(hours=1))
        .exclude(status=FraudAlert.Status.CLOSED)
        .exists()
    )


def _storm_check(detector: str, now: datetime) -> None:
    limit = fraud_config.storm_alerts_per_hour()
    count = FraudAlert.objects.filter(kind=detector, created_at__gte=now - timedelta(hours=1)).count()
    if count > limit:
        fraud_alert_raise(
            kind=STORM_KIND,
            dedupe_key=f"{STORM_KIND}:{detector}:{int(now.timestamp()) // 3600}",
            severity=FraudAlert.Severity.HIGH,
            detail={"detector": detector, "alerts": count, "limit": limit},
        )


def alert_raise(
    *,
    detector: str,
    subjects: Sequence[Subject],
    facts: dict[str, Any],
    occurred_at: datetime,
    dedupe_key: str,
    severity: str = FraudAlert.Severity.MEDIUM,
    member_id: int | None = None,
    staff_id: int | None = None,
    store_id: int | None = None,
    weight: int | None = None,
    now: datetime | None = None,
) -> Raised:
    """One incident seen by ``detector``: one alert per ``dedupe_key`` (kind = the
    detector, detail = ``facts``; ``member_id``/``staff_id``/``store_id`` are the alert's
    own columns, for its lists), one signal per subject (dedupe ``<dedupe_key>|<subject>``)
    and each signal's case, joined or opened (``fraud.cases.case_for_signal``); the
    alert's ``case`` is its first subject's. A repeat finds everything and writes
    nothing. While the detector is tripped (``detector_paused``), signals only. Raises
    SignalRefused for facts that are not ids, counts, codes or times."""
    from fraud.scoring import facts_check

    facts_check(facts)
    now = now or timezone.now()
    if detector_paused(detector, now):
        signals = [
            result.signal
            for subject in subjects
            if (
                result := signal_raise(
                    detector=detector, subject=subject, facts=facts, occurred_at=occurred_at,
                    dedupe_key=f"{dedupe_key}|{subject.key}", weight=weight,
                )
            ).signal is not None
        ]  # fmt: skip
        return Raised(None, False, signals=signals, paused=True)
    alert, created = fraud_alert_raise(
        kind=detector,
        dedupe_key=dedupe_key,
        severity=severity,
        member_id=member_id,
        staff_id=staff_id,
        store_id=store_id,
        detail=facts,
    )
    raised = Raised(alert, created)
    if not created:
        raised.signals = list(alert.signals.order_by("pk"))
        raised.cases = list(FraudCase.objects.filter(alerts=alert))
        return raised
    for subject in subjects:
        result = signal_raise(
            detector=detector, subject=subject, facts=facts, occurred_at=occurred_at,
            dedupe_key=f"{dedupe_key}|{subject.key}", weight=weight, alert=alert,
        )  # fmt: skip
        if result.signal is None:
            continue
        raised.signals.append(result.signal)
        if result.created:
            case, _ = case_for_signal(signal=result.signal, severity=severity, now=now)
            raised.cases.append(case)
    if raised.cases:
        FraudAlert.objects.filter(pk=alert.pk, case__isnull=True).update(case=raised.cases[0])
        alert.case = raised.cases[0]
    _storm_check(detector, now)
    return raised


def pii_reveal_volume_alert_raise(*, staff_id: int, facts: dict[str, Any], now: datetime | None = None) -> Raised:
    """A staff member throttled for revealing too much personal data (FRAUD.md §1 row 28):
    one ``pii_reveal_volume`` alert (high) per staff member and hour, with its signal on
    the staff member (their risk score, their case). Counts only, from the throttle's facts."""
    now = now or timezone.now()
    hour = int(now.timestamp()) // 3600
    return alert_raise(
        detector="pii_reveal_volume", subjects=[Subject.staff(staff_id)], occurred_at=now,
        dedupe_key=f"pii_reveal_volume:{staff_id}:{hour}", severity=FraudAlert.Severity.HIGH, staff_id=staff_id,
        facts={key: value for key, value in facts.items() if key != "newly"}, now=now,
    )  # fmt: skip


def voucher_rescan_alert_raise(
    *,
    voucher_id: UUID,
    member_id: int,
    staff_id: int | None,
    store_id: int,
    till_id: int,
    redeemed_at_till_id: int | None,
    now: datetime,
) -> FraudAlert:
    """A used voucher presented again: one ``voucher_rescan`` alert (high) per voucher
    and local day."""
    return fraud_alert_raise_kind(
        "voucher_rescan", member_id=member_id, staff_id=staff_id, store_id=store_id,
        voucher_id=str(voucher_id), till_id=till_id, redeemed_at_till_id=redeemed_at_till_id,
        day=timezone.localdate(now).isoformat(), occurred_at=now,
    )  # fmt: skip


def cashier_frequency_alert_raise(
    *,
    staff_id: int,
    store_id: int,
    redemptions: int,
    threshold: int,
    window_minutes: int,
    now: datetime,
    shift_id: int | None = None,
) -> FraudAlert:
    """A cashier redeemed ``redemptions`` times (above ``threshold``) in the
    ``window_minutes`` ending at ``now``: one ``cashier_redemption_frequency`` alert
    (medium) per staff member and window."""
    return fraud_alert_raise_kind(
        "cashier_redemption_frequency", staff_id=staff_id, store_id=store_id,
        redemptions=redemptions, threshold=threshold, window_minutes=window_minutes, shift_id=shift_id,
        window=int(now.timestamp()) // (window_minutes * 60), occurred_at=now,
    )  # fmt: skip


def redemption_irregular_alert_raise(
    *,
    audit_id: int,
    staff_id: int | None,  # the audit's cashier (a nullable column)
    store_id: int,
    member_id: int | None,
    voucher_redemption_id: int | None,
    ledger_operation_id: UUID | None,
    reviewed_by_id: int,
    points: int,
) -> FraudAlert:
    """A store manager found a sampled redemption irregular: one ``redemption_irregular``
    alert (high) per audit row."""
    return fraud_alert_raise_kind(
        "redemption_irregular", member_id=member_id, staff_id=staff_id, store_id=store_id,
        audit_id=audit_id, voucher_redemption_id=voucher_redemption_id, reviewed_by=reviewed_by_id, points=points,
        ledger_operation_id=str(ledger_operation_id) if ledger_operation_id else None,
    )  # fmt: skip


def fraud_alert_close(*, alert_id: int, actor: Any, now: datetime | None = None) -> FraudAlert:
    """Close an alert after investigation (``fraud.permissions.CLOSE_ALERT``). Only the
    status, ``closed_at`` and ``closed_by`` change, once (a conditional UPDATE).
    Raises AlertRefused."""
    if not may_close_alerts(actor):
        raise AlertRefused("permission_denied")
    now = now or timezone.now()
    changed = (
        FraudAlert.objects.filter(pk=alert_id)
        .exclude(status=FraudAlert.Status.CLOSED)
        .update(status=FraudAlert.Status.CLOSED, closed_at=now, closed_by=actor)
    )
    alert = FraudAlert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise AlertRefused("not_found")
    if not changed:
        raise AlertRefused("already_closed")
    return alert
