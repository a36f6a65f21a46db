"""Points redemption at the till: the controls around the ledger's hold-then-capture
(spec "POS Redemption Controls").

The ledger alone moves points (``loyalty.ledger.operations.points_hold`` / ``points_capture`` /
``points_void``); these services add, in this order:

Hold (``till_redemption_hold``):

1. an open shift of this till (``no_shift``): a member of staff is accountable;
2. the points within the redemption limits: at least ``VOUCHERS["redeem_min_points"]``
   (``below_minimum_redemption``), at most ``VOUCHERS["redeem_max_points"]``
   (``above_maximum_redemption``), detail ``points`` and ``minimum`` / ``maximum``;
3. the member identified (the caller looked them up by loyalty number) and active
   (``member_not_active``), and not under a fraud step-up that only an identity check in
   store can pass (``account_restricted``: ``members.services.restrictions``);
4. staff may not redeem to their own member account during their shift
   (``self_redemption_refused``), and nobody may redeem to the member account of a
   member of staff who is on shift anywhere (``member_staff_on_shift``). Policy: once
   that person has clocked out, a colleague on shift may redeem their points like any
   member's (a staff purchase, authorised by the member's own code or app like any
   other); their own shift is what makes it a conflict of interest, and without a shift
   they cannot work a till;
5. the role limit (``ROLE_LIMITS["redeem_below"]``, strictly below) of the shift's
   staff user, or a manager override (``vouchers.services.shifts.override_verify``: a second
   person's password and TOTP code; a Store Manager of the store or a Program
   Administrator whose own limit covers the points, never the cashier):
   ``limit_exceeded`` (detail ``override_required``), ``override_invalid`` (detail
   ``reason``), ``override_locked_out``;
6. the store's daily cap (``VOUCHERS["store_daily_redeem_points"]``, 0: none) over
   what the store redeemed today, points and vouchers (``store_daily_limit_reached``,
   detail ``limit``, ``used``, ``points``): checked here so the cashier hears it before
   the member is asked, and checked again at the capture under the store's lock;
7. ``points_hold`` (the real-time balance and the ledger's own rules, e.g.
   ``insufficient_points``), the ``TillRedemption`` row and the member's authorisation
   started, in one transaction: an SMS step-up code to the member's phone bound to the
   action ``pos_redeem:<hold_id>`` (``members.services.otp.otp_request``; its limits apply, and
   when it is refused or there is no phone, only the in-app confirmation is offered).

Authorisation (one of):

- ``till_redemption_authorise_code``: the member reads the code to the cashier
  (``otp_verify``: bound to this hold; three guesses; the number's daily failure cap); the
  code passes a step-up the fraud score requires of the member;
- ``member_redemption_confirm``: the member confirms in the app (a session that may
  redeem: ``session_may(session, "redeem")``; above ``VOUCHERS["step_up_above_points"]``
  a ``redeem`` step-up is spent; while the fraud score requires a step-up of the member,
  ``step_up_required`` until they verify one).

Capture (``till_redemption_capture``): an open shift of this till (``no_shift``; any
till of the hold's store), never the member's own (``self_redemption_refused``); refused
``member_authorisation_required`` until authorised; then, with the store's row locked
when it has a daily cap, ``points_capture`` and the cap (``store_daily_limit_reached``:
nothing is captured, the hold stays open to void), the row marked captured with its
receipt, the random audit sample, and the cashier frequency alert
(``vouchers.services.limits.cashier_frequency_check``: voucher and points redemptions
counted together).

Idempotency: the ledger's Idempotency-Key contract is kept (a retry with the same key
answers the saved result, byte for byte; the same key with another request is
``idempotency_key_reused``). A refusal of these controls (steps 1-6) is not saved under
the key: a retry is judged again. A hold retried under its key is answered from the
saved row, without checking the override again (its TOTP code cannot be used twice).

Nothing here logs or returns a code, password, phone number or full loyalty number.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from loyalty.kernel.crypto import DecryptionFailed
from loyalty.kernel.models import Till
from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger.operations import Actor, Outcome, points_capture, points_hold, points_void
from loyalty.ledger.selectors import hold_exists_at_store, hold_is_settled, holds_settled, member_balance
from members.models import Member, MemberSecurityEvent, MemberSession
from members.services.otp import TILL_REDEMPTION_ACTION_PREFIX, OtpRefused, otp_request, otp_step_up_consume, otp_verify
from members.services.pii import MemberPiiErased, member_pii_value
from members.services.restrictions import member_step_up_pass, step_up_check, step_up_demand
from members.services.sessions import session_may
from members.services.standing import account_restricted
from vouchers.models import RedemptionAudit, StaffShift, TillRedemption
from vouchers.services.limits import audit_sample, cashier_frequency_check, store_daily_limit_lock
from vouchers.services.redemption import loyalty_number_masked
from vouchers.services.till_controls import (
    OverrideCredentials,
    TillPointsRefused,
    limit_check,
    points_limits_check,
    shift_check,
    staff_check,
    store_cap_check,
)

logger = logging.getLogger("vouchers.till")

ACTION_PREFIX = TILL_REDEMPTION_ACTION_PREFIX  # the SMS says to give this code to the cashier
STEP_UP_ACTION = "redeem"
METHOD_SMS = TillRedemption.Authorisation.SMS_CODE
METHOD_APP = TillRedemption.Authorisation.APP


# --- helpers -------------------------------------------------------------------------------------


def _canonical(body: dict) -> dict:
    """Keys sorted at every level (as the ledger's saved bodies), so a replay renders
    byte for byte like the first answer."""
    return json.loads(json.dumps(body, sort_keys=True, default=str))


def authorisation_action(hold_id) -> str:
    """The OTP action a hold's SMS code is bound to."""
    return f"{ACTION_PREFIX}{hold_id}"


def _member_phone(member: Member) -> str | None:
    """The member's phone in clear, or None (none, erased, or unreadable: then the app is
    the only way to authorise, never a 500 at the till)."""
    try:
        return member_pii_value(member, "phone")
    except MemberPiiErased:
        return None
    except DecryptionFailed:
        logger.error("member phone unreadable", extra={"event": "member_pii_unreadable", "member_id": member.pk})
        return None


def _authorisation_start(*, record: TillRedemption, member: Member) -> dict:
    """Text the member a code bound to this hold (inside the hold's transaction: the SMS
    leaves on commit). Returns what the hold answers about authorisation."""
    offer = {"required": True, "methods": [METHOD_APP], "challenge_id": None, "expires_at": None, "sms": "no_phone"}
    phone = _member_phone(member) if member.phone_index else None
    if phone:
        try:
            challenge = otp_request(
                phone=phone, purpose="step_up", action=authorisation_action(record.hold_operation_id)
            )
        except OtpRefused as refusal:
            offer["sms"] = refusal.code
        else:
            record.challenge_id = challenge.challenge_id
            offer.update(
                methods=[METHOD_SMS, METHOD_APP],
                challenge_id=str(challenge.challenge_id),
                expires_at=iso_utc(challenge.expires_at),
                sms="sent",
            )
    return offer


def _parse_hold(hold_id) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(hold_id))
    except ValueError:
        return None


def _record_of_hold(hold_id, related: tuple[str, ...], **scope) -> TillRedemption | None:
    """The till record of the hold ``hold_id`` within ``scope``, or None (also for an id
    that is not one)."""
    parsed = _parse_hold(hold_id)
    if not parsed:
        return None
    return TillRedemption.objects.select_related(*related).filter(hold_operation_id=parsed, **scope).first()


def _record_at_store(hold_id, till: Till) -> TillRedemption:
    related = ("member", "staff", "till", "store", "hold_operation")
    record = _record_of_hold(hold_id, related, store_id=till.store_id)
    if record is None:
        raise TillPointsRefused("hold_not_found")
    return record


def _require_open(record: TillRedemption, now: datetime) -> None:
    hold = record.hold_operation
    settled = hold_is_settled(hold_id=hold.pk)
    if settled or record.captured_at or record.voided_at or (hold.hold_expires_at and hold.hold_expires_at <= now):
        raise TillPointsRefused("hold_not_open")


def _event(member: Member, kind: str, **detail) -> None:
    MemberSecurityEvent.objects.create(member=member, kind=kind, detail=detail)


# --- hold ----------------------------------------------------------------------------------------


def till_redemption_hold(
    *,
    till: Till,
    shift: StaffShift | None,
    member: Member,
    points: int,
    idempotency_key: str,
    override: OverrideCredentials | Mapping | None = None,
    fingerprint: dict | None = None,
    request=None,
    now: datetime | None = None,
) -> Outcome:
    """Hold ``points`` of ``member`` at ``till`` after the controls (module docstring).

    Returns the ledger's Outcome; a new or replayed hold's body carries
    ``authorisation`` {required, methods, challenge_id, expires_at, sms}. Raises
    TillPointsRefused (``no_shift``, ``below_minimum_redemption``,
    ``above_maximum_redemption``, ``member_not_active``, ``self_redemption_refused``,
    ``member_staff_on_shift``, ``limit_exceeded``, ``override_invalid``,
    ``override_locked_out``, ``store_daily_limit_reached``) and ``account_restricted`` (the
    fraud score requires a step-up that only an identity check in store can pass).
    ``fingerprint`` must not hold the override's secrets.
    """
    now = now or timezone.now()
    shift = shift_check(till=till, shift=shift, now=now)
    prior = TillRedemption.objects.filter(till=till, idempotency_key=idempotency_key).first()
    override_by = prior.override_by if prior else None
    if prior is None:
        points_limits_check(points)
        if member.status != Member.Status.ACTIVE:
            raise TillPointsRefused("member_not_active")
        demand = step_up_demand(member)
        if demand is not None and not demand.by_sms:  # neither the SMS code nor the app could authorise it
            raise account_restricted(member, now=now)
        staff_check(shift=shift, member=member, now=now)
        override_by = limit_check(till=till, shift=shift, points=points, override=override, request=request, now=now)
        store_cap_check(store_id=till.store_id, points=points, now=now)

    with transaction.atomic():
        outcome = points_hold(
            member=member, points=points, actor=Actor(till=till), idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )  # fmt: skip
        if not outcome.ok:
            return outcome
        hold_id = outcome.body["hold_id"]
        record = TillRedemption.objects.filter(hold_operation_id=hold_id).first()
        if record is None and not outcome.replayed:
            record = TillRedemption(
                hold_operation_id=hold_id, till=till, store_id=till.store_id, staff_id=shift.staff_id, shift=shift,
                member=member, points=points, idempotency_key=idempotency_key, override_by=override_by, created_at=now,
            )  # fmt: skip
            record.authorisation_offer = _authorisation_start(record=record, member=member)
            record.save(force_insert=True)
    if record is None:
        # A hold the ledger took without the till's controls (not through this service).
        return outcome
    if not outcome.replayed:
        logger.info(
            "till redemption held",
            extra={
                "event": "till_redemption_held",
                "till_id": till.pk,
                "staff_id": shift.staff_id,
                "hold_id": str(record.hold_operation_id),
                "points": points,
                "override_by": getattr(override_by, "pk", None),
            },
        )
    body = _canonical({**outcome.body, "authorisation": record.authorisation_offer})
    return Outcome(outcome.status_code, body, replayed=outcome.replayed)


# --- authorisation -------------------------------------------------------------------------------


def _authorise(record: TillRedemption, *, via: str, now: datetime, spend: Callable[[], bool] | None = None) -> None:
    with transaction.atomic():
        changed = TillRedemption.objects.filter(
            pk=record.pk, authorised_at__isnull=True, captured_at__isnull=True, voided_at__isnull=True
        ).update(authorised_via=via, authorised_at=now)
        if changed and spend is not None and not spend():
            raise TillPointsRefused("step_up_required", actions=[STEP_UP_ACTION])
        if changed:
            _event(record.member, "till_redemption_authorised", hold_id=str(record.hold_operation_id), via=via)
    record.refresh_from_db()


def till_redemption_authorise_code(
    *, till: Till, hold_id, challenge_id, code: str, now: datetime | None = None
) -> TillRedemption:
    """The member read the SMS code to the cashier: verify it for this hold and mark the
    redemption authorised (``sms_code``). Already authorised: answered as it is.

    Call outside a transaction (``otp_verify`` commits its counters before refusing).
    Raises TillPointsRefused: ``hold_not_found`` (none at this till's store),
    ``hold_not_open``, ``no_phone_on_file``, and the code's refusals ``otp_invalid``
    (another challenge), ``otp_wrong_code``, ``otp_expired``, ``otp_used``,
    ``otp_too_many_guesses``, ``otp_locked``; ``account_restricted`` (the fraud score
    requires a step-up of the member that only an identity check in store can pass).
    """
    now = now or timezone.now()
    record = _record_at_store(hold_id, till)
    if record.authorised_at is not None:
        return record
    _require_open(record, now)
    if record.challenge_id is None or str(record.challenge_id) != str(challenge_id):
        raise TillPointsRefused("otp_invalid", OtpRefused("otp_invalid").args[0])
    phone = _member_phone(record.member)
    if not phone:
        raise TillPointsRefused("no_phone_on_file")
    action = authorisation_action(record.hold_operation_id)
    try:
        challenge = otp_verify(
            challenge_id=record.challenge_id, phone=phone, code=code, purpose="step_up", action=action
        )
    except OtpRefused as refusal:
        raise TillPointsRefused.from_otp(refusal) from None
    if challenge.member_id != record.member_id:  # the number changed hands meanwhile
        raise TillPointsRefused("otp_invalid", OtpRefused("otp_invalid").args[0])
    # The code was texted to the member: it passes a step-up the fraud score requires of
    # them, unless their number is too new to prove who they are (identity in store).
    if not member_step_up_pass(member=record.member, challenge=challenge, now=now):
        raise account_restricted(record.member, now=now)
    # Spent at once: the code authorises this hold and nothing else, once.
    _authorise(record, via=METHOD_SMS, now=now, spend=lambda: otp_step_up_consume(member=record.member, action=action))
    return record


def member_redemption_confirm(
    *, member: Member, session: MemberSession, hold_id, now: datetime | None = None
) -> TillRedemption:
    """The member confirms a till redemption of theirs in the app (``app``). Already
    authorised: answered as it is.

    Raises TillPointsRefused: ``not_found`` (no such hold of this member: another
    member's answers the same), ``hold_not_open``, ``redeem_not_allowed`` (a web
    remember-me session), ``step_up_required`` (above ``VOUCHERS["step_up_above_points"]``
    without an unused ``redeem`` step-up; one is spent by the confirmation; or while the
    fraud score requires a step-up of the member, until they verify one) and
    ``account_restricted`` (that step-up needs an identity check in store).
    """
    now = now or timezone.now()
    record = _record_of_hold(hold_id, ("member", "hold_operation", "till", "store"), member=member)
    if record is None:
        raise TillPointsRefused("not_found")
    if record.authorised_at is not None:
        return record
    _require_open(record, now)
    if not session_may(session, STEP_UP_ACTION):
        raise TillPointsRefused("redeem_not_allowed")
    step_up_check(member, TillPointsRefused("step_up_required", actions=[STEP_UP_ACTION]))
    spend = None
    if record.points > settings.VOUCHERS.get("step_up_above_points", 5000):
        spend = lambda: otp_step_up_consume(member=member, action=STEP_UP_ACTION, now=now)  # noqa: E731
    _authorise(record, via=METHOD_APP, now=now, spend=spend)
    return record


def member_redemptions_pending(*, member: Member, now: datetime | None = None):
    """The member's till redemptions waiting for their authorisation (open holds)."""
    now = now or timezone.now()
    return (
        TillRedemption.objects.select_related("till", "store", "hold_operation")
        .filter(
            member=member,
            authorised_at__isnull=True,
            captured_at__isnull=True,
            voided_at__isnull=True,
            hold_operation__hold_expires_at__gt=now,
        )
        .exclude(hold_operation__in=holds_settled())
        .order_by("-created_at")
    )


# --- capture and void ----------------------------------------------------------------------------


def _receipt(*, record: TillRedemption, capture: dict, now: datetime) -> dict:
    assert record.authorised_at is not None  # captured only once authorised
    balance = member_balance(record.member)
    return {
        "redemption": "points",
        "hold_id": str(record.hold_operation_id),
        "capture_id": capture["operation_id"],
        "points_redeemed": capture["points"],
        "balance_remaining": balance.available if balance else 0,
        "balance_held": balance.debits_pending if balance else 0,
        "balance_pending": balance.debits_pending if balance else 0,  # deprecated: balance_held
        "loyalty_number": loyalty_number_masked(record.member.loyalty_number),
        "store": record.store.code,
        "till": record.till.code,
        "redeemed_at": iso_utc(now),
        "authorised_via": record.authorised_via,
        "authorised_at": iso_utc(record.authorised_at),
        "cashier_staff_id": record.staff_id,
        "override": record.override_by_id is not None,
        "override_by_staff_id": record.override_by_id,
    }


def _capture_body(ledger_body: dict, receipt: dict) -> dict:
    masked = {**ledger_body, "loyalty_number": receipt["loyalty_number"]}
    return _canonical({**masked, "receipt": receipt})


def till_redemption_capture(
    *,
    till: Till,
    shift: StaffShift | None,
    hold_id,
    idempotency_key: str,
    points: int | None = None,
    fingerprint: dict | None = None,
    now: datetime | None = None,
    sampler: Callable[[], bool] | None = None,
) -> Outcome:
    """Settle an authorised hold for ``points`` (default all) and answer the receipt.

    Returns the ledger's Outcome (its refusals, e.g. ``hold_not_open``,
    ``capture_exceeds_hold``, as they are); a capture's body is the ledger's with the
    loyalty number masked and ``receipt``. Raises TillPointsRefused: ``no_shift``,
    ``hold_not_found`` (none at this till's store), ``self_redemption_refused``,
    ``member_authorisation_required``, ``store_daily_limit_reached`` (nothing captured). ``sampler`` decides the audit sample (default
    ``vouchers.services.limits.audit_sample``).
    """
    now = now or timezone.now()
    shift = shift_check(till=till, shift=shift, now=now)
    parsed = _parse_hold(hold_id)
    try:
        record = _record_at_store(hold_id, till)
    except TillPointsRefused:
        held_here = parsed and hold_exists_at_store(hold_id=parsed, store_id=till.store_id)
        if held_here:  # taken without the till's controls: it can never be authorised
            raise TillPointsRefused("member_authorisation_required") from None
        raise
    if shift.staff.member_account_id is not None and shift.staff.member_account_id == record.member_id:
        raise TillPointsRefused("self_redemption_refused")
    if record.authorised_at is None:
        raise TillPointsRefused("member_authorisation_required")

    new = False
    with transaction.atomic():
        # With a daily cap the store's row is locked before the ledger's lock: concurrent
        # captures and voucher redemptions at the store are counted one after another.
        capped = store_daily_limit_lock(store_id=record.store_id)
        outcome = points_capture(
            hold_id=record.hold_operation_id,
            actor=Actor(till=till),
            idempotency_key=idempotency_key,
            points=points,
            fingerprint=fingerprint,
        )
        if not outcome.ok:
            return outcome
        if outcome.replayed:
            record.refresh_from_db()
            return Outcome(outcome.status_code, _capture_body(outcome.body, record.receipt), replayed=True)
        if capped:  # refused: the capture rolls back, the hold stays open
            store_cap_check(store_id=record.store_id, points=outcome.body["points"], now=now)
        changed = TillRedemption.objects.filter(pk=record.pk, captured_at__isnull=True, voided_at__isnull=True).update(
            captured_at=now, capture_shift=shift, captured_points=outcome.body["points"]
        )
        if not changed:  # the ledger held the member's lock and found the hold open
            raise AssertionError(f"till redemption {record.pk} settled while its hold was open")
        record.captured_at = now
        record.receipt = _receipt(record=record, capture=outcome.body, now=now)
        record.save(update_fields=["receipt"])
        if (sampler or audit_sample)():
            RedemptionAudit.objects.create(
                store_id=record.store_id,
                cashier_id=record.staff_id,
                ledger_operation_id=outcome.body["operation_id"],
                points=outcome.body["points"],
                sampled_at=now,
            )
        new = True
    if new:
        cashier_frequency_check(staff_id=record.staff_id, store_id=record.store_id, shift_id=record.shift_id, now=now)
        logger.info(
            "till redemption captured",
            extra={
                "event": "till_redemption_captured",
                "till_id": till.pk,
                "staff_id": shift.staff_id,
                "hold_id": str(record.hold_operation_id),
                "points": outcome.body["points"],
            },
        )
    return Outcome(outcome.status_code, _capture_body(outcome.body, record.receipt), replayed=False)


def till_redemption_void(
    *, till: Till, hold_id, idempotency_key: str, fingerprint: dict | None = None, now: datetime | None = None
) -> Outcome:
    """Cancel a hold (``points_void``: every held point goes back) and mark its till
    record voided. The caller checked the hold is of the till's store."""
    now = now or timezone.now()
    with transaction.atomic():
        outcome = points_void(
            hold_id=hold_id, actor=Actor(till=till), idempotency_key=idempotency_key, fingerprint=fingerprint
        )
        if outcome.ok and not outcome.replayed:
            TillRedemption.objects.filter(
                hold_operation_id=hold_id, captured_at__isnull=True, voided_at__isnull=True
            ).update(voided_at=now)
    return outcome
