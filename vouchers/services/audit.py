"""The audit queue of sampled till redemptions: a Store Manager confirms each or marks it
irregular (which raises a fraud alert)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from fraud.services import redemption_irregular_alert_raise
from loyalty.kernel.refusals import Refusal
from vouchers.models import RedemptionAudit
from vouchers.permissions import audits_reviewable_by, may_review_audits

if TYPE_CHECKING:
    from staffauth.models import StaffUser

# --- the audit queue and alerts (admin) ----------------------------------------------------------


class ReviewRefused(Refusal):
    """An audit review refused: ``code`` (``permission_denied``, ``not_found``,
    ``own_redemption``, ``already_reviewed``). Closing an alert is the fraud app's
    (``fraud.services.AlertRefused``)."""

    MESSAGES = {
        "permission_denied": "You may not do this.",
        "not_found": "No such item.",
        "own_redemption": "You may not review a redemption you made yourself.",
        "already_reviewed": "This redemption has already been reviewed.",
    }


def redemption_audit_review(
    *, audit_id: int, reviewer: StaffUser, outcome: str, note: str = "", now: datetime | None = None
) -> RedemptionAudit:
    """A Store Manager of the audit's store (permission ``vouchers.review_redemptionaudit``;
    headquarters roles with it review every store) records the outcome of a sampled
    redemption: ``confirmed`` or ``irregular``. Never their own redemption; once only
    (a conditional UPDATE). ``irregular`` raises a ``redemption_irregular`` fraud alert.
    Raises ReviewRefused."""
    if outcome not in (RedemptionAudit.Outcome.CONFIRMED, RedemptionAudit.Outcome.IRREGULAR):
        raise ValueError("outcome must be confirmed or irregular")
    if not may_review_audits(reviewer):
        raise ReviewRefused("permission_denied")
    now = now or timezone.now()
    audit = audits_reviewable_by(reviewer).filter(pk=audit_id).first()
    if audit is None:
        raise ReviewRefused("not_found")
    if audit.cashier_id == reviewer.pk:
        raise ReviewRefused("own_redemption")
    note = (note or "").strip()[:1000]
    with transaction.atomic():
        changed = RedemptionAudit.objects.filter(pk=audit.pk, outcome=RedemptionAudit.Outcome.PENDING).update(
            outcome=outcome, reviewed_by=reviewer, reviewed_at=now, note=note
        )
        if not changed:
            raise ReviewRefused("already_reviewed")
        audit.refresh_from_db()
        if outcome == RedemptionAudit.Outcome.IRREGULAR:
            redemption = audit.voucher_redemption
            redemption_irregular_alert_raise(
                audit_id=audit.pk,
                staff_id=audit.cashier_id,
                store_id=audit.store_id,
                member_id=redemption.voucher.member_id if redemption else None,
                voucher_redemption_id=audit.voucher_redemption_id,
                ledger_operation_id=audit.ledger_operation_id,
                reviewed_by_id=reviewer.pk,
                points=audit.points,
            )
    return audit
