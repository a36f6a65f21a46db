"""Voucher validation and redemption at the till (spec "Redemption Fraud Prevention",
"POS Redemption Controls").

``voucher_validate`` checks only; ``voucher_redeem`` consumes. Both run the same checks,
in this order, each refusing with its own code (``RedemptionRefused.code``; the API
answers it with the status of ``loyalty.api.errors.REFUSAL_STATUS``):

1. an open shift of this till (``shift_required``);
2. what was presented: exactly one of a code or a QR token (``voucher_input_invalid``),
   and with a typed code the member's loyalty number (``member_identification_required``);
3. the QR token's signature and time step (``qr_malformed``, ``qr_unknown_key``,
   ``qr_signature_invalid``, ``qr_expired``, ``qr_not_yet_valid``), checked offline from
   the token alone, ``grace_steps=VOUCHERS["qr_grace_steps"]``;
4. the code's check character (``code_malformed``, ``code_check_failed``), before any
   database query;
5. the voucher exists and belongs to the presented member (``voucher_not_found`` for
   both: a till cannot tell someone else's voucher from none);
6. not used (``voucher_already_redeemed``; a scan of a used voucher under another key
   raises a ``voucher_rescan`` fraud alert, one per voucher and day);
7. not expired (``voucher_expired``: from the expiry instant itself);
8. not revoked, not reported lost or stolen (``voucher_revoked``, ``voucher_reported``);
9. the member's account is active (``member_not_active``);
10. the cashier's role limit (``ROLE_LIMITS["redeem_below"]``, strictly below) against
    the reward's points price, unless a valid manager override covers it
    (``role_limit_exceeded``, ``override_same_person``, ``override_store_mismatch``,
    ``override_insufficient``);
11. the store's daily cap, ``VOUCHERS["store_daily_redeem_points"]`` (0: none), over
    the points captured at the store's tills and the vouchers redeemed there (by their
    reward's points price) in the local day: this voucher must fit in what is left
    (``store_daily_limit_reached``; see ``store_daily_limit_check``);
12. staff may not redeem to their own member account during their shift
    (``own_member_account``), and no one may redeem to the member account of a member
    of staff who is on shift (``member_staff_on_shift``). Policy: once that person has
    clocked out, a colleague on shift may redeem their voucher like any member's (a
    staff purchase); their own shift is what makes it a conflict of interest.

Redemption is single-use, held by the database: ``voucher_consume``, one conditional
``UPDATE ... SET status='redeemed' WHERE id=... AND status='active' AND expires_at > now``
and the ``VoucherRedemption`` insert (unique per voucher, unique per till and key) in one
transaction (the offline queue's approval consumes through it too). With a store cap,
the store's row is locked first and the cap checked again under the lock, so two tills
cannot both pass it. It is idempotent per (till, Idempotency-Key): a retry answers the saved
receipt; the same key for another voucher is ``idempotency_key_reused``.

Every attempt, whatever its result, writes one append-only ``VoucherScan`` (till,
store, staff, action, result), committed outside the refused work. Call these services
outside a transaction (the till API does) or the scan shares the caller's fate.

After a redemption: ``cashier_frequency_check``, the one frequency rule for vouchers and
points at the till (``vouchers.services.till_points`` calls it after a capture): a cashier
redeeming more than ``VOUCHERS["cashier_redemptions_alert"]`` times in
``cashier_redemptions_window_minutes`` raises a ``cashier_redemption_frequency`` alert
(one per cashier and window); ``VOUCHERS["audit_sample_percent"]`` of redemptions,
drawn with ``secrets``, go to the store manager's ``RedemptionAudit`` queue.

The alerts are written by ``fraud.services`` (its kinds, severities and one-per-incident
keys); this module finds the facts in the voucher tables and passes them as ids and counts.

Nothing here logs or puts into an error a code, a token or a loyalty number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from fraud.services import voucher_rescan_alert_raise
from loyalty.kernel.models import Till
from loyalty.kernel.refusals import Refusal
from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger.selectors import balance_figures, member_balance
from members.models import Member
from vouchers.models import RedemptionAudit, StaffShift, Voucher, VoucherRedemption, VoucherScan
from vouchers.services.codes import CodeInvalid, code_normalise
from vouchers.services.limits import (
    StoreDailyLimitReached,
    audit_sample,
    cashier_frequency_check,
    store_daily_limit_check,
)
from vouchers.services.shifts import (
    Override,
    ShiftRefused,
    override_verify,
    shift_current_at,
    shift_still_open,
    staff_member_conflict,
    staff_redeem_limit,
    within_limit,
)
from vouchers.services.tokens import QrClaims, QrTokenInvalid, qr_token_verify

logger = logging.getLogger("vouchers.till")

SCAN_OK = "ok"
SCAN_REPLAYED = "replayed"
KEY_MAX = 128
LOYALTY_NUMBER_MAX = 32


class RedemptionRefused(Refusal):
    """A till refusal: stable ``code``, optional facts in ``detail`` (ids and limits;
    never a code, token or loyalty number) and the ``voucher`` it was about, if found."""

    message = "The voucher was refused."

    MESSAGES = {
        **QrTokenInvalid.MESSAGES,
        **CodeInvalid.MESSAGES,
        "shift_required": "Clock in first: send the shift token in X-Staff-Shift (an open shift of this till).",
        "voucher_input_invalid": "Give exactly one of the voucher code and the QR token.",
        "member_identification_required": "Identify the member (loyalty number) to redeem a typed voucher code.",
        "voucher_not_found": "No such voucher for this member.",
        "voucher_already_redeemed": "This voucher has already been redeemed.",
        "idempotency_key_reused": "This idempotency key was used at this till for another voucher.",
        "voucher_expired": "This voucher has expired.",
        "voucher_revoked": "This voucher has been revoked.",
        "voucher_reported": "This voucher has been reported lost or stolen.",
        "member_not_active": "The member's account is not active.",
        "role_limit_exceeded": "This voucher is above your redemption limit: a manager override is required.",
        "override_same_person": "The override must come from another member of staff than the cashier.",
        "override_store_mismatch": "The override was given for another store.",
        "override_insufficient": "The override does not cover this voucher's points.",
        "store_daily_limit_reached": "This store has reached its daily redemption limit.",
        "own_member_account": "Staff may not redeem to their own member account during their shift.",
        "member_staff_on_shift": "This member is a member of staff on shift; they may not redeem now.",
    }

    def __init__(self, code: str, *, voucher: Voucher | None = None, **detail):
        self.voucher = voucher
        super().__init__(code, **detail)


@dataclass(frozen=True)
class Validation:
    voucher: Voucher
    summary: dict  # what the till shows (masked code, reward, expiry): no personal data


@dataclass(frozen=True)
class Redemption:
    redemption: VoucherRedemption
    receipt: dict
    replayed: bool  # True: the saved receipt of an earlier request with this key


# --- presentation --------------------------------------------------------------------------------


def code_masked(code: str) -> str:
    return f"••••-••••-••••-{code[-4:]}"


def loyalty_number_masked(number: str) -> str:
    return f"{number[:2]}{'•' * (len(number) - 6)}{number[-4:]}"


def voucher_summary(voucher: Voucher) -> dict:
    reward = voucher.reward
    return {
        "voucher_id": str(voucher.id),
        "code": code_masked(voucher.code),
        "reward": {
            "name": reward.name,
            "kind": reward.kind,
            "value_minor": reward.value_minor,
            "percent": reward.percent,
            "item": reward.item,
            "points_price": reward.points_price,
        },
        "expires_at": iso_utc(voucher.expires_at),
    }


# --- checks --------------------------------------------------------------------------------------


def _present(*, code, qr_token, member_loyalty_number, now: datetime) -> tuple[str | None, QrClaims | None]:
    """Steps 2 to 4: no database access."""
    if (code is None) == (qr_token is None):
        raise RedemptionRefused("voucher_input_invalid")
    if code is not None and not member_loyalty_number:
        raise RedemptionRefused("member_identification_required")
    if qr_token is not None:
        grace = int(settings.VOUCHERS.get("qr_grace_steps", 0))
        try:
            return None, qr_token_verify(qr_token, now=now, grace_steps=grace)
        except QrTokenInvalid as exc:
            raise RedemptionRefused(exc.code) from None
    try:
        return code_normalise(code), None
    except CodeInvalid as exc:
        raise RedemptionRefused(exc.code) from None


def _voucher_find(*, code, claims, member_loyalty_number) -> Voucher:
    """Step 5: the voucher, if it exists and is the presented member's."""
    vouchers = Voucher.objects.select_related("reward", "member")
    voucher = vouchers.filter(code=code).first() if code else vouchers.filter(pk=claims.voucher_id).first()
    if voucher is None:
        raise RedemptionRefused("voucher_not_found")
    # Someone else's voucher: the till hears "not found", the scan log keeps the voucher
    # (a stolen code tried at a till is what the fraud team looks for).
    if claims is not None and claims.member_id != voucher.member.member_id:
        raise RedemptionRefused("voucher_not_found", voucher=voucher)
    if member_loyalty_number is not None and member_loyalty_number != voucher.member.loyalty_number:
        raise RedemptionRefused("voucher_not_found", voucher=voucher)
    return voucher


def _state_check(voucher: Voucher, *, now: datetime) -> None:
    """Steps 6 to 9."""
    if voucher.status == Voucher.Status.REDEEMED:
        raise RedemptionRefused("voucher_already_redeemed", voucher=voucher)
    if voucher.expires_at <= now:
        raise RedemptionRefused("voucher_expired", voucher=voucher)
    if voucher.status == Voucher.Status.REVOKED:
        raise RedemptionRefused("voucher_revoked", voucher=voucher)
    if voucher.status == Voucher.Status.REPORTED:
        raise RedemptionRefused("voucher_reported", voucher=voucher)
    if voucher.member.status != Member.Status.ACTIVE:
        raise RedemptionRefused("member_not_active", voucher=voucher)


def _limit_check(voucher: Voucher, *, shift: StaffShift, override: Override | None) -> bool:
    """Step 10. True when an override was needed (and valid)."""
    points = voucher.reward.points_price
    limit = staff_redeem_limit(shift.staff)
    if within_limit(points, limit):
        return False
    if override is None:
        raise RedemptionRefused("role_limit_exceeded", voucher=voucher, points=points, limit=limit)
    if override.staff.pk == shift.staff_id:
        raise RedemptionRefused("override_same_person", voucher=voucher)
    if override.store_id != shift.store_id:
        raise RedemptionRefused("override_store_mismatch", voucher=voucher)
    if override.points < points or not within_limit(points, override.limit):
        raise RedemptionRefused("override_insufficient", voucher=voucher, points=points)
    return True


def _store_cap_check(voucher: Voucher, *, store_id: int, now: datetime, lock: bool = False) -> None:
    """Step 11 (``lock``: under the store's row lock, inside the consuming transaction)."""
    try:
        store_daily_limit_check(store_id=store_id, points=voucher.reward.points_price, now=now, lock=lock)
    except StoreDailyLimitReached as reached:
        raise RedemptionRefused("store_daily_limit_reached", voucher=voucher, **reached.detail) from None


STAFF_CONFLICT_CODES = {"own_account": "own_member_account", "member_on_shift": "member_staff_on_shift"}


def _staff_check(voucher: Voucher, *, shift: StaffShift, now: datetime) -> None:
    """Step 12."""
    if conflict := staff_member_conflict(shift, voucher.member, now=now):
        raise RedemptionRefused(STAFF_CONFLICT_CODES[conflict], voucher=voucher)


def _checks(
    *, till, shift, code, qr_token, member_loyalty_number, now, override=None, idempotency_key=None
) -> tuple[Voucher, bool, VoucherRedemption | None]:
    if not shift_current_at(shift, till, now):
        raise RedemptionRefused("shift_required")
    if member_loyalty_number is not None and (
        not isinstance(member_loyalty_number, str) or len(member_loyalty_number) > LOYALTY_NUMBER_MAX
    ):
        raise RedemptionRefused("voucher_input_invalid")
    code, claims = _present(code=code, qr_token=qr_token, member_loyalty_number=member_loyalty_number, now=now)
    if not shift_still_open(shift):
        raise RedemptionRefused("shift_required")
    voucher = _voucher_find(code=code, claims=claims, member_loyalty_number=member_loyalty_number)
    if idempotency_key is not None:
        # A retry answers its saved receipt, before "already redeemed" could refuse it.
        prior = _prior(till, idempotency_key, voucher)
        if prior is not None:
            return voucher, False, prior
    _state_check(voucher, now=now)
    needed = _limit_check(voucher, shift=shift, override=override)
    _store_cap_check(voucher, store_id=till.store_id, now=now)
    _staff_check(voucher, shift=shift, now=now)
    return voucher, needed, None


def _prior(till: Till, key: str, voucher: Voucher) -> VoucherRedemption | None:
    prior = VoucherRedemption.objects.filter(till=till, idempotency_key=key).first()
    if prior is not None and prior.voucher_id != voucher.pk:
        raise RedemptionRefused("idempotency_key_reused", voucher=voucher)
    return prior


# --- records and alerts --------------------------------------------------------------------------


def _scan(*, till: Till, shift: StaffShift | None, voucher: Voucher | None, action: str, result: str) -> None:
    VoucherScan.objects.create(
        voucher=voucher,
        till=till,
        store_id=till.store_id,
        staff_id=getattr(shift, "staff_id", None),
        action=action,
        result=result,
    )


def _rescan_alert(*, voucher: Voucher, till: Till, shift: StaffShift | None, now: datetime) -> None:
    redemption = VoucherRedemption.objects.filter(voucher=voucher).first()
    voucher_rescan_alert_raise(
        voucher_id=voucher.pk,
        member_id=voucher.member_id,
        staff_id=getattr(shift, "staff_id", None),
        store_id=till.store_id,
        till_id=till.pk,
        redeemed_at_till_id=getattr(redemption, "till_id", None),
        now=now,
    )


def _refused(refusal: RedemptionRefused, *, till, shift, action: str, now: datetime) -> RedemptionRefused:
    """Write the scan (and the rescan alert) for a refusal, outside the refused work."""
    _scan(till=till, shift=shift, voucher=refusal.voucher, action=action, result=refusal.code)
    if refusal.code == "voucher_already_redeemed" and refusal.voucher is not None:
        _rescan_alert(voucher=refusal.voucher, till=till, shift=shift, now=now)
    logger.info(
        "voucher %s refused: %s",
        action,
        refusal.code,
        extra={
            "event": "voucher_refused",
            "action": action,
            "code": refusal.code,
            "till_id": till.pk,
            "staff_id": getattr(shift, "staff_id", None),
            "voucher_id": str(refusal.voucher.pk) if refusal.voucher else None,
        },
    )
    return refusal


# --- services ------------------------------------------------------------------------------------


def voucher_validate(
    *,
    till: Till,
    shift: StaffShift | None,
    code: str | None = None,
    qr_token: str | None = None,
    member_loyalty_number: str | None = None,
    now: datetime | None = None,
) -> Validation:
    """Run every check without consuming the voucher. A voucher above the cashier's
    limit is refused ``role_limit_exceeded`` (the till then asks for an override and
    redeems with it). Writes one VoucherScan. Raises RedemptionRefused."""
    now = now or timezone.now()
    action = VoucherScan.Action.VALIDATE
    try:
        voucher, _, _ = _checks(
            till=till, shift=shift, code=code, qr_token=qr_token, member_loyalty_number=member_loyalty_number, now=now
        )
    except RedemptionRefused as refusal:
        raise _refused(refusal, till=till, shift=shift, action=action, now=now) from None
    _scan(till=till, shift=shift, voucher=voucher, action=action, result=SCAN_OK)
    return Validation(voucher=voucher, summary=voucher_summary(voucher))


def _receipt(*, voucher: Voucher, till: Till, shift: StaffShift, now: datetime, redemption_id, override) -> dict:
    balance = member_balance(voucher.member)
    return {
        "redemption_id": redemption_id,
        "voucher": voucher_summary(voucher),
        "member": {"loyalty_number": loyalty_number_masked(voucher.member.loyalty_number)},
        "balance": balance_figures(member=voucher.member, balance=balance),
        "store": till.store.code,
        "till": till.code,
        "shift_id": shift.pk,
        "override": override is not None,
        "redeemed_at": iso_utc(now),
    }


def voucher_redeem(
    *,
    till: Till,
    shift: StaffShift | None,
    idempotency_key: str,
    code: str | None = None,
    qr_token: str | None = None,
    member_loyalty_number: str | None = None,
    override: Override | None = None,
    now: datetime | None = None,
    sampler: Callable[[], bool] | None = None,
) -> Redemption:
    """Consume the voucher after every check; returns the receipt. Idempotent per
    (till, ``idempotency_key``). ``sampler`` decides the audit sample (default:
    ``audit_sample``; tests pass their own). Writes one VoucherScan. Raises
    RedemptionRefused (a lost race is ``voucher_already_redeemed``)."""
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= KEY_MAX:
        raise ValueError("idempotency_key must be 1 to 128 characters")
    now = now or timezone.now()
    action = VoucherScan.Action.REDEEM
    try:
        voucher, overridden, prior = _checks(
            till=till,
            shift=shift,
            code=code,
            qr_token=qr_token,
            member_loyalty_number=member_loyalty_number,
            now=now,
            override=override,
            idempotency_key=idempotency_key,
        )
        if prior is not None:
            _scan(till=till, shift=shift, voucher=voucher, action=action, result=SCAN_REPLAYED)
            return Redemption(redemption=prior, receipt=prior.receipt, replayed=True)
        redemption = _consume(
            voucher=voucher,
            till=till,
            shift=shift,
            key=idempotency_key,
            now=now,
            override=override if overridden else None,
            sampler=sampler or audit_sample,
        )
    except RedemptionRefused as refusal:
        raise _refused(refusal, till=till, shift=shift, action=action, now=now) from None
    except _LostToRetry as lost:
        _scan(till=till, shift=shift, voucher=voucher, action=action, result=SCAN_REPLAYED)
        return Redemption(redemption=lost.prior, receipt=lost.prior.receipt, replayed=True)
    assert shift is not None  # _checks refuses without one (shift_required)
    _scan(till=till, shift=shift, voucher=voucher, action=action, result=SCAN_OK)
    cashier_frequency_check(staff_id=shift.staff_id, store_id=till.store_id, shift_id=shift.pk, now=now)
    logger.info(
        "voucher redeemed",
        extra={
            "event": "voucher_redeemed",
            "till_id": till.pk,
            "staff_id": shift.staff_id,
            "voucher_id": str(voucher.pk),
        },
    )
    return Redemption(redemption=redemption, receipt=redemption.receipt, replayed=False)


class _LostToRetry(Exception):
    """A concurrent request with the same till and key redeemed this voucher first."""

    def __init__(self, prior: VoucherRedemption):
        self.prior = prior
        super().__init__("replayed")


def _consume(*, voucher, till, shift, key, now, override, sampler) -> VoucherRedemption:
    try:
        return _consume_once(
            voucher=voucher, till=till, shift=shift, key=key, now=now, override=override, sampler=sampler
        )
    except IntegrityError:
        # Only (till, key) can collide here (the conditional UPDATE guards the voucher):
        # a concurrent request under the same key, for this voucher or another.
        prior = _prior(till, key, voucher)
        if prior is None:
            raise
        raise _LostToRetry(prior) from None


def voucher_consume(
    *,
    voucher: Voucher,
    till: Till,
    staff_id: int | None,
    shift: StaffShift | None,
    idempotency_key: str,
    now: datetime,
    receipt: dict | None = None,
) -> VoucherRedemption | None:
    """The single-use step, for the till and the offline queue's approval alike: one
    conditional UPDATE (the voucher still the member's, active and unexpired at ``now``)
    and the ``VoucherRedemption`` insert, in one transaction (a savepoint inside the
    caller's). Returns the redemption, or None when the voucher was no longer active and
    unexpired (nothing written: the caller reads the voucher again to say why). The
    insert's constraints refuse a second redemption of the voucher and a second use of
    (till, ``idempotency_key``) with IntegrityError. ``voucher`` comes back redeemed."""
    with transaction.atomic():
        consumed = Voucher.objects.filter(
            pk=voucher.pk, member_id=voucher.member_id, status=Voucher.Status.ACTIVE, expires_at__gt=now
        ).update(status=Voucher.Status.REDEEMED, redeemed_at=now)
        if not consumed:
            return None
        redemption = VoucherRedemption.objects.create(
            voucher=voucher,
            till=till,
            store_id=till.store_id,
            staff_id=staff_id,
            shift=shift,
            idempotency_key=idempotency_key,
            redeemed_at=now,
            receipt=receipt or {},
        )
    voucher.status, voucher.redeemed_at = Voucher.Status.REDEEMED, now
    return redemption


def _consume_once(*, voucher, till, shift, key, now, override, sampler) -> VoucherRedemption:
    with transaction.atomic():
        # Under the store's lock when it has a daily cap: the check before was advisory.
        _store_cap_check(voucher, store_id=till.store_id, now=now, lock=True)
        redemption = voucher_consume(
            voucher=voucher, till=till, staff_id=shift.staff_id, shift=shift, idempotency_key=key, now=now
        )
        if redemption is not None:
            redemption.receipt = _receipt(
                voucher=voucher, till=till, shift=shift, now=now, redemption_id=redemption.pk, override=override
            )
            if override is not None:
                redemption.receipt["override_by_staff_id"] = override.staff.pk
            redemption.save(update_fields=["receipt"])
            if sampler():
                RedemptionAudit.objects.create(
                    store_id=till.store_id,
                    cashier_id=shift.staff_id,
                    voucher_redemption=redemption,
                    points=voucher.reward.points_price,
                    sampled_at=now,
                )
    if redemption is not None:
        return redemption
    # Someone else changed the voucher between the checks and the update: a retry of
    # this very request (same till and key), or another scan that won the race.
    prior = VoucherRedemption.objects.filter(till=till, idempotency_key=key, voucher=voucher).first()
    if prior is not None:
        raise _LostToRetry(prior)
    voucher.refresh_from_db()
    _state_check(voucher, now=now)
    raise RedemptionRefused("voucher_already_redeemed", voucher=voucher)


def override_for_voucher(
    *,
    till: Till,
    shift: StaffShift | None,
    username: str,
    password: str,
    otp_token: str,
    code: str | None = None,
    qr_token: str | None = None,
    member_loyalty_number: str | None = None,
    request=None,
    now: datetime | None = None,
) -> Override | None:
    """A manager override (``vouchers.services.shifts.override_verify``) for the points of the
    voucher presented, given with the redemption. None when there is no shift or the
    voucher cannot be identified: the redemption then refuses with its own code. A
    refused override writes a redeem VoucherScan with its code and raises ShiftRefused.
    """
    now = now or timezone.now()
    if shift is None or shift.till_id != till.pk:
        return None
    try:
        code, claims = _present(code=code, qr_token=qr_token, member_loyalty_number=member_loyalty_number, now=now)
        voucher = _voucher_find(code=code, claims=claims, member_loyalty_number=member_loyalty_number)
    except RedemptionRefused:
        return None
    try:
        return override_verify(
            store=till.store,
            username=username,
            password=password,
            otp_token=otp_token,
            points=voucher.reward.points_price,
            shift=shift,
            request=request,
            now=now,
        )
    except ShiftRefused as refusal:
        _scan(till=till, shift=shift, voucher=voucher, action=VoucherScan.Action.REDEEM, result=refusal.code)
        raise
