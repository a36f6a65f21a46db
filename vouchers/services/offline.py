"""Redemptions a till attempted while offline (spec "POS Redemption Controls", "Offline
Mode": redemption disabled offline, earning only; redemption requests queued for online
approval; the member told it awaits verification).

Nothing here moves points or consumes a voucher when the till submits: a till that was
offline sends what it attempted (points or a voucher code, with the original
``attempted_at``) and ``offline_redemption_submit`` stores it as a ``PendingRedemption``
(idempotent per till and Idempotency-Key) and tells the member it awaits verification.

A Store Manager of the store (permission ``vouchers.decide_pendingredemption``;
headquarters roles holding it decide for every store) then approves or rejects it:

- ``pending_redemption_approve`` carries it out online with every normal check at that
  moment: the member active, no redemption to the account of a member of staff who is
  on shift nor to the attempting cashier's or the approver's own account, never the
  cashier approving their own attempt, the approver's own role limit
  (``ROLE_LIMITS["redeem_below"]``); points go through the ledger (``points_redeem``:
  the real-time balance and the velocity limits), a voucher through the till's own
  single-use step (``vouchers.services.redemption.voucher_consume``: not used, not expired, not
  revoked or reported, and its ``VoucherRedemption``). Once only (a conditional update claims it); a refusal leaves it
  pending and writes nothing. The member is told the outcome.
- ``pending_redemption_reject`` (with a reason) closes it; the member is told.

Offline earns need nothing here: ``POST /api/v1/pos/purchases`` takes the purchase's
original ``occurred_at`` and earns once per receipt, whatever the key.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from loyalty.kernel.models import Till
from loyalty.kernel.refusals import Refusal
from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger.operations import Actor, points_redeem
from loyalty.notifications import notify_member
from members.models import Member
from vouchers.models import PendingRedemption, StaffShift, Voucher
from vouchers.permissions import may_decide_offline, pending_decidable_by
from vouchers.services.codes import CodeInvalid, code_normalise
from vouchers.services.redemption import voucher_consume
from vouchers.services.shifts import shift_open_for_member, staff_redeem_limit, within_limit

logger = logging.getLogger("vouchers.offline")

REASON_MAX = 200
TOPIC = "redemption"


class OfflineRefused(Refusal):
    """A refusal with a stable ``code`` and optional facts in ``detail`` (ids, limits;
    never a code or personal data)."""

    message = "The offline redemption was refused."

    MESSAGES = {
        **CodeInvalid.MESSAGES,
        "redemption_input_invalid": "Give exactly one of points and voucher_code.",
        "voucher_not_found": "No such voucher for this member.",
        "idempotency_key_reused": "This idempotency key was used at this till for another offline redemption.",
        "permission_denied": "You may not do this.",
        "not_found": "No such pending redemption.",
        "already_decided": "This offline redemption was already approved or rejected.",
        "own_attempt": "You may not approve a redemption you attempted yourself.",
        "self_redemption_refused": "Staff may not redeem to their own member account.",
        "member_staff_on_shift": "This member is a member of staff on shift; they may not redeem now.",
        "member_not_active": "The member's account is not active.",
        "limit_exceeded": "This redemption is above your role's limit: a higher role must approve it.",
        "reason_required": "Give a reason (at most 200 characters).",
        "voucher_already_redeemed": "This voucher has already been redeemed.",
        "voucher_expired": "This voucher has expired.",
        "voucher_revoked": "This voucher has been revoked.",
        "voucher_reported": "This voucher has been reported lost or stolen.",
    }


@dataclass(frozen=True)
class Submitted:
    pending: PendingRedemption
    replayed: bool  # True: the saved record of an earlier request with this key


# --- submit (the till) -----------------------------------------------------------------------------


def _same(prior: PendingRedemption, *, member, points, voucher, attempted_at, shift) -> bool:
    return (
        prior.member_id == member.pk
        and prior.points == points
        and prior.voucher_id == getattr(voucher, "pk", None)
        and prior.attempted_at == attempted_at
    )


def offline_redemption_submit(
    *,
    till: Till,
    shift: StaffShift | None,
    member: Member,
    idempotency_key: str,
    attempted_at: datetime,
    points: int | None = None,
    voucher_code: str | None = None,
) -> Submitted:
    """Queue what a till attempted offline; never honoured as it stands. Idempotent per
    (till, key): the same attempt again answers the saved record, another attempt under
    the key is ``idempotency_key_reused``. The member is told (once) it awaits
    verification. Raises OfflineRefused: ``redemption_input_invalid``, ``code_malformed``,
    ``code_check_failed``, ``voucher_not_found`` (none of this member's),
    ``idempotency_key_reused``."""
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 128:
        raise ValueError("idempotency_key must be 1 to 128 characters")
    if (points is None) == (voucher_code is None) or (points is not None and points <= 0):
        raise OfflineRefused("redemption_input_invalid")
    voucher = None
    if voucher_code is not None:
        try:
            code = code_normalise(voucher_code)
        except CodeInvalid as exc:
            raise OfflineRefused(exc.code) from None
        voucher = Voucher.objects.filter(code=code, member=member).first()
        if voucher is None:
            raise OfflineRefused("voucher_not_found")
    attempt = {"member": member, "points": points, "voucher": voucher, "attempted_at": attempted_at, "shift": shift}

    prior = PendingRedemption.objects.filter(till=till, idempotency_key=idempotency_key).first()
    if prior is not None:
        if not _same(prior, **attempt):
            raise OfflineRefused("idempotency_key_reused")
        return Submitted(pending=prior, replayed=True)
    try:
        with transaction.atomic():
            pending = PendingRedemption.objects.create(
                till=till,
                store_id=till.store_id,
                staff_id=getattr(shift, "staff_id", None),
                member=member,
                voucher=voucher,
                points=points,
                idempotency_key=idempotency_key,
                attempted_at=attempted_at,
            )
            what = f"{points:,} points" if points is not None else "a voucher"
            notify_member(
                member=member,
                channel="preferred",
                subject="Your redemption awaits verification",
                body=(
                    f"A redemption of {what} at {till.store.name} could not be checked while the till was offline. "
                    "It has not been carried out: it awaits verification by the store, and we will tell you the "
                    "outcome. If you did not ask for it, please contact us."
                ),
                topic=TOPIC,
            )
    except IntegrityError:
        # A concurrent request under the same key stored it first.
        prior = PendingRedemption.objects.get(till=till, idempotency_key=idempotency_key)
        if not _same(prior, **attempt):
            raise OfflineRefused("idempotency_key_reused") from None
        return Submitted(pending=prior, replayed=True)
    logger.info(
        "offline redemption queued",
        extra={"event": "offline_redemption_queued", "till_id": till.pk, "pending_id": str(pending.pk)},
    )
    return Submitted(pending=pending, replayed=False)


# --- decide (a Store Manager, in the admin) --------------------------------------------------------


def _visible(pending_id, actor) -> PendingRedemption:
    if not may_decide_offline(actor):
        raise OfflineRefused("permission_denied")
    try:
        pk = uuid.UUID(str(pending_id))
    except ValueError:
        raise OfflineRefused("not_found") from None
    visible = pending_decidable_by(actor).select_related("member", "till", "store", "staff")
    pending = visible.filter(pk=pk).first()
    if pending is None:
        raise OfflineRefused("not_found")
    if pending.status != PendingRedemption.Status.PENDING:
        raise OfflineRefused("already_decided")
    return pending


def _claim(pending: PendingRedemption, *, status: str, actor, now: datetime, note: str = "") -> None:
    claimed = PendingRedemption.objects.filter(pk=pending.pk, status=PendingRedemption.Status.PENDING).update(
        status=status, decided_by=actor, decided_at=now, decision_note=note
    )
    if not claimed:
        raise OfflineRefused("already_decided")
    pending.status, pending.decided_by, pending.decided_at, pending.decision_note = status, actor, now, note


def _approval_checks(pending: PendingRedemption, actor, now: datetime) -> None:
    member = pending.member
    if pending.staff_id is not None and pending.staff_id == actor.pk:
        raise OfflineRefused("own_attempt")
    own = {actor.member_account_id, getattr(pending.staff, "member_account_id", None)} - {None}
    if member.pk in own:
        raise OfflineRefused("self_redemption_refused")
    if shift_open_for_member(member, now=now) is not None:
        raise OfflineRefused("member_staff_on_shift")
    if member.status != Member.Status.ACTIVE:
        raise OfflineRefused("member_not_active")
    if pending.points is not None:
        points = pending.points
    else:
        assert pending.voucher is not None  # a voucher or points (pending_redemption_voucher_or_points)
        points = pending.voucher.reward.points_price
    limit = staff_redeem_limit(actor)
    if not within_limit(points, limit):
        raise OfflineRefused("limit_exceeded", points=points, limit=limit)


def _voucher_consume(pending: PendingRedemption, *, actor, now: datetime) -> None:
    """The till's single-use step (``vouchers.services.redemption.voucher_consume``), under the key
    ``offline:<pending id>`` at the till that attempted it, with the offline receipt."""
    voucher = pending.voucher
    assert voucher is not None  # called when points is None, so the row has a voucher (check constraint)
    redemption = voucher_consume(
        voucher=voucher,
        till=pending.till,
        staff_id=pending.staff_id,
        shift=None,
        idempotency_key=f"offline:{pending.pk}",
        now=now,
        receipt={
            "offline": True,
            "pending_id": str(pending.pk),
            "attempted_at": iso_utc(pending.attempted_at),
            "approved_by_staff_id": actor.pk,
            "voucher_id": str(voucher.pk),
            "store": pending.store.code,
            "till": pending.till.code,
            "redeemed_at": iso_utc(now),
        },
    )
    if redemption is None:
        voucher.refresh_from_db()
        if voucher.status == Voucher.Status.REDEEMED:
            raise OfflineRefused("voucher_already_redeemed")
        if voucher.expires_at <= now:
            raise OfflineRefused("voucher_expired")
        raise OfflineRefused("voucher_revoked" if voucher.status == Voucher.Status.REVOKED else "voucher_reported")


def pending_redemption_approve(*, pending_id, actor, now: datetime | None = None) -> PendingRedemption:
    """Carry out an offline redemption online after every check (module docstring).
    Raises OfflineRefused: ``permission_denied``, ``not_found`` (none, or another
    store's), ``already_decided``, ``own_attempt``, ``self_redemption_refused``,
    ``member_staff_on_shift``, ``member_not_active``, ``limit_exceeded``, the voucher's
    ``voucher_already_redeemed`` / ``voucher_expired`` / ``voucher_revoked`` /
    ``voucher_reported``, and the ledger's refusals with their own codes
    (``insufficient_points``, velocity limits). A refusal writes nothing."""
    now = now or timezone.now()
    pending = _visible(pending_id, actor)
    _approval_checks(pending, actor, now)
    with transaction.atomic():
        _claim(pending, status=PendingRedemption.Status.APPROVED, actor=actor, now=now)
        if pending.points is not None:
            outcome = points_redeem(
                member=pending.member,
                points=pending.points,
                actor=Actor(staff=actor, store=pending.store),
                idempotency_key=f"offline-redemption:{pending.pk}",
                reason=f"offline till redemption {pending.pk} (till {pending.till.code})",
            )
            if not outcome.ok:
                error = outcome.body["error"]
                raise OfflineRefused(error["code"], error["message"], **error.get("detail", {}))
            pending.ledger_operation_id = outcome.body["operation_id"]
            pending.save(update_fields=["ledger_operation"])
            what = f"{pending.points:,} points"
        else:
            _voucher_consume(pending, actor=actor, now=now)
            what = "your voucher"
        notify_member(
            member=pending.member,
            channel="preferred",
            subject="Your redemption was approved",
            body=f"The redemption of {what} at {pending.store.name}, made while the till was offline, was approved.",
            topic=TOPIC,
        )
    logger.info(
        "offline redemption approved",
        extra={"event": "offline_redemption_approved", "pending_id": str(pending.pk), "staff_id": actor.pk},
    )
    return pending


def pending_redemption_reject(*, pending_id, actor, reason: str, now: datetime | None = None) -> PendingRedemption:
    """Reject an offline redemption with a reason; nothing is redeemed and the member is
    told. Raises OfflineRefused: ``permission_denied``, ``not_found``, ``already_decided``,
    ``reason_required``."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise OfflineRefused("reason_required")
    pending = _visible(pending_id, actor)
    with transaction.atomic():
        _claim(pending, status=PendingRedemption.Status.REJECTED, actor=actor, now=now, note=reason)
        what = f"{pending.points:,} points" if pending.points is not None else "a voucher"
        notify_member(
            member=pending.member,
            channel="preferred",
            subject="Your redemption was not approved",
            body=(
                f"The redemption of {what} at {pending.store.name}, attempted while the till was offline, was not "
                "approved, and nothing was redeemed. Please ask at the store or contact us."
            ),
            topic=TOPIC,
        )
    return pending
