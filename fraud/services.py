"""Raising and closing fraud alerts.

Other apps report what they saw through these functions, with facts as ids and counts
(never a code, a token, personal data or a secret): fraud imports no app that raises
alerts, so a detector computes its facts from its own tables and passes them in
(``vouchers.services.redemption``: a rescan of a used voucher, a cashier redeeming too often, a
sampled redemption found irregular). One alert per incident: each kind has its
``dedupe_key`` and a second raise finds the first, even when two raise at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from fraud.models import FraudAlert
from fraud.permissions import may_close_alerts
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
    kind: str, *, member_id: int | None = None, staff_id: int | None = None, store_id: int | None = None, **facts: Any
) -> FraudAlert:
    """Raise (or find) the alert of one incident of ``kind`` (``ALERT_KINDS``): its
    dedupe key and kept detail are read from ``facts`` (ids and counts only)."""
    spec = ALERT_KINDS[kind]
    named = {**facts, "staff_id": staff_id}
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
        day=timezone.localdate(now).isoformat(),
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
        window=int(now.timestamp()) // (window_minutes * 60),
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
