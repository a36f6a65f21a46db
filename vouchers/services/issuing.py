"""Vouchers on the member's side: bought with points, given as goodwill by staff,
reported lost by the member, revoked by staff (issue 6).

A purchase is one transaction: the ledger's one-step redemption (``points_redeem``,
the only writer of points), the stock decrement and the voucher row. Any refusal
rolls all of it back, the ledger's idempotency key included, so nothing is half done
and the client may retry the same key once the cause is gone (points topped up, a
step-up verified).

Idempotency: the ledger key is ``voucher:<member_id>:<sha256 of the client's key>``.
Member operations share the ledger's ``member`` scope, so the member's pseudonymous id
in the key keeps two members' keys apart. The voucher is found again through
``Voucher.ledger_operation`` (the ledger's operation id for that key): the same key and
reward answers the same voucher; the same key for another reward is refused
(``idempotency_key_reused``). Concurrent duplicates wait on the ledger's key row and
then find the first one's voucher.

Locks, always in this order: the member's balance row (taken by the ledger), then the
reward row (the conditional stock UPDATE). The per-member limit is counted while the
member's balance row is locked, so two purchases by one member cannot both pass it.

Refusals are ``VoucherRefused`` (a ``loyalty.kernel.refusals.Refusal``) with a stable ``code`` and a message
that never holds a code, token or personal data.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from auditlog.models import LogEntry
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from loyalty.kernel.refusals import Refusal
from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger.operations import Actor, Outcome, points_redeem
from loyalty.ledger.selectors import member_balance, saved_outcome
from members.models import Member, MemberSecurityEvent, MemberSession
from members.services.otp import otp_step_up_consume, otp_step_up_valid
from members.services.restrictions import step_up_check
from members.services.sessions import session_may
from vouchers.models import Reward, Voucher
from vouchers.permissions import goodwill_limit, may_revoke_vouchers
from vouchers.services.codes import code_generate

STEP_UP_ACTION = "redeem"
CODE_ATTEMPTS = 5
REASON_MAX = 200
LEDGER_SCOPE = Actor(member=True).scope


class VoucherRefused(Refusal):
    """A refusal with a stable ``code`` and optional facts in ``detail`` (ids, limits,
    statuses; never a code or personal data)."""

    message = "The request was refused."

    MESSAGES = {
        "reward_not_found": "No such reward.",
        "voucher_not_found": "No such voucher.",
        "reward_inactive": "This reward is not offered any more.",
        "reward_not_yet_available": "This reward is not available yet.",
        "reward_no_longer_available": "This reward is no longer available.",
        "out_of_stock": "This reward is out of stock.",
        "per_member_limit_reached": "You already hold as many vouchers of this reward as one member may.",
        "voucher_not_active": "This voucher is not active (redeemed, revoked, reported lost or expired).",
        "tier_too_low": "This reward is for members of a higher tier.",
        "redeem_not_allowed": "This session (web, remember me) may not redeem. Sign in again without remember me.",
        "step_up_required": "Verify an SMS code for this redemption first (step-up), then retry within five minutes.",
        "member_not_active": "The member's account is not active.",
        "permission_denied": "You may not do this.",
        "goodwill_not_permitted": "Your role may not issue goodwill vouchers.",
        "goodwill_above_limit": "This reward is above the goodwill limit of your role.",
        "own_member_account": "Staff may not issue vouchers to their own member account.",
        "reason_required": "Give a reason (at most 200 characters).",
        "insufficient_points": "The member does not have enough available points.",
        "idempotency_key_reused": "This idempotency key was used for a different request.",
    }

    @classmethod
    def from_ledger(cls, outcome: Outcome) -> VoucherRefused:
        """The ledger's refusal (insufficient_points, velocity limits, member_not_active...)
        with its own code, status, message and detail."""
        error = outcome.body["error"]
        return cls(error["code"], error["message"], **error.get("detail", {}))


@dataclass(frozen=True)
class Purchase:
    voucher: Voucher
    replayed: bool  # True: the saved result of an earlier request with this key


# --- shared checks ---------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def reward_get(reward_id) -> Reward:
    """The reward by id; ``reward_not_found`` for anything else (ids are positive ints)."""
    if isinstance(reward_id, bool) or not isinstance(reward_id, int | str):
        raise VoucherRefused("reward_not_found")
    text = str(reward_id)
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise VoucherRefused("reward_not_found")
    reward = Reward.objects.filter(pk=int(text)).first()
    if reward is None:
        raise VoucherRefused("reward_not_found")
    return reward


def reward_offered_check(reward: Reward, *, now: datetime) -> None:
    """Active and inside its availability window (``available_until`` exclusive)."""
    if not reward.active:
        raise VoucherRefused("reward_inactive")
    if reward.available_from is not None and now < reward.available_from:
        raise VoucherRefused("reward_not_yet_available", available_from=iso_utc(reward.available_from))
    if reward.available_until is not None and now >= reward.available_until:
        raise VoucherRefused("reward_no_longer_available")


def _held(member: Member, reward: Reward) -> int:
    """Vouchers of ``reward`` the member has been issued, in any state ("in all")."""
    return Voucher.objects.filter(member=member, reward=reward).count()


def _limit_check(member: Member, reward: Reward) -> None:
    if reward.per_member_limit is not None and _held(member, reward) >= reward.per_member_limit:
        raise VoucherRefused("per_member_limit_reached", limit=reward.per_member_limit)


def _stock_take(reward: Reward) -> None:
    """Take one from the stock: one conditional UPDATE (NULL stays NULL: unlimited). A
    concurrent buyer waits on the row and re-checks ``stock_remaining > 0`` after it."""
    taken = (
        Reward.objects.filter(pk=reward.pk, active=True)
        .filter(Q(stock_remaining__isnull=True) | Q(stock_remaining__gt=0))
        .update(stock_remaining=F("stock_remaining") - 1)
    )
    if not taken:
        active = Reward.objects.filter(pk=reward.pk, active=True).exists()
        raise VoucherRefused("out_of_stock" if active else "reward_inactive")


def _voucher_insert(**fields) -> Voucher:
    """Insert with a fresh random code; a clash with an existing code (about 1 in 10^22
    per pair) draws again, in a savepoint so the transaction carries on."""
    for attempt in range(1, CODE_ATTEMPTS + 1):
        code = code_generate()
        try:
            with transaction.atomic():
                return Voucher.objects.create(code=code, **fields)
        except IntegrityError:
            if attempt == CODE_ATTEMPTS or not Voucher.objects.filter(code=code).exists():
                raise
    raise AssertionError("unreachable")


def _expiry(reward: Reward, issued_at: datetime) -> datetime:
    return issued_at + timedelta(days=reward.valid_days)


def _member_event(member: Member, kind: str, **detail) -> None:
    MemberSecurityEvent.objects.create(member=member, kind=kind, detail=detail)


def _audit(voucher: Voucher, *, action: int, actor, changes: dict) -> None:
    """An audit-log entry (django-auditlog's table, written explicitly: the status
    changes are conditional UPDATEs, which its signals never see). Never the code."""
    LogEntry.objects.log_create(voucher, action=action, actor=actor, changes=changes, force_log=True)


# --- purchase ------------------------------------------------------------------------------------


def ledger_key(*, member: Member, idempotency_key: str) -> str:
    """The ledger key of a member's purchase (see the module docstring): 109 characters."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"voucher:{member.member_id}:{digest}"


def _replay(key: str, reward: Reward) -> Voucher | None:
    """The voucher an earlier request with this key bought; refuses another reward."""
    saved = saved_outcome(scope=LEDGER_SCOPE, key=key)
    operation_id = saved.operation_id if saved is not None else None  # None: unused, or a refusal
    if operation_id is None:
        return None
    voucher = Voucher.objects.select_related("reward").filter(ledger_operation_id=operation_id).first()
    if voucher is None:  # cannot happen: the ledger's key commits with the voucher
        raise RuntimeError("a saved voucher purchase without its voucher")
    if voucher.reward_id != reward.pk:
        raise VoucherRefused("idempotency_key_reused")
    return voucher


class _Replayed(Exception):
    """Leaves the transaction (nothing written) when the ledger replays the key."""


def voucher_purchase(
    *, member: Member, reward_id, idempotency_key: str, session: MemberSession, now: datetime | None = None
) -> Purchase:
    """Buy one voucher of ``reward_id`` with points. Idempotent per (member, key).

    Raises VoucherRefused: ``redeem_not_allowed`` (web remember-me session),
    ``reward_not_found``, ``idempotency_key_reused``, ``reward_inactive``,
    ``reward_not_yet_available``, ``reward_no_longer_available``, ``tier_too_low``,
    ``per_member_limit_reached``, ``out_of_stock``, ``insufficient_points`` and the
    ledger's other refusals (``member_not_active``, daily redemption limits), and
    ``step_up_required`` when the price is above ``VOUCHERS["step_up_above_points"]``
    and no unused step-up for ``redeem`` was verified (the step-up is spent by the
    purchase, and given back if anything refuses it), or while the fraud score requires
    a step-up of the member (``members.services.restrictions.step_up_check``: until they
    verify one; ``account_restricted`` when only an identity check in store will do).
    """
    if not idempotency_key or len(idempotency_key) > 128:
        raise ValueError("an idempotency key of 1 to 128 characters is required")
    if not session_may(session, "redeem"):
        raise VoucherRefused("redeem_not_allowed")
    now = _now(now)
    key = ledger_key(member=member, idempotency_key=idempotency_key)
    reward = reward_get(reward_id)
    if (voucher := _replay(key, reward)) is not None:
        return Purchase(voucher=voucher, replayed=True)

    # Checked again under the locks below; here for early, specific answers.
    reward_offered_check(reward, now=now)
    if member.tier < reward.min_tier:
        raise VoucherRefused("tier_too_low", min_tier=reward.min_tier)
    _limit_check(member, reward)
    if reward.stock_remaining == 0:
        raise VoucherRefused("out_of_stock")
    balance = member_balance(member)
    available = balance.available if balance is not None else 0
    if available < reward.points_price:
        raise VoucherRefused("insufficient_points", available=available, requested=reward.points_price)
    step_up = reward.points_price > settings.VOUCHERS.get("step_up_above_points", 5000)
    if step_up and not otp_step_up_valid(member=member, action=STEP_UP_ACTION):
        raise VoucherRefused("step_up_required", actions=[STEP_UP_ACTION])
    step_up_check(member, VoucherRefused("step_up_required", actions=[STEP_UP_ACTION]))

    try:
        with transaction.atomic():
            outcome = points_redeem(
                member=member,
                points=reward.points_price,
                actor=Actor(member=True),
                idempotency_key=key,
                reason=f"voucher: reward {reward.pk}",
                fingerprint={"reward_id": reward.pk},
            )
            if outcome.replayed:
                raise _Replayed()
            if not outcome.ok:
                raise VoucherRefused.from_ledger(outcome)
            # From here the member's balance row is locked until commit, and ``member``
            # holds the status and tier the ledger read under that lock.
            if member.tier < reward.min_tier:
                raise VoucherRefused("tier_too_low", min_tier=reward.min_tier)
            _limit_check(member, reward)
            if step_up and not otp_step_up_consume(member=member, action=STEP_UP_ACTION, now=now):
                raise VoucherRefused("step_up_required", actions=[STEP_UP_ACTION])
            _stock_take(reward)
            voucher = _voucher_insert(
                reward=reward,
                member=member,
                source=Voucher.Source.PURCHASE,
                points_paid=reward.points_price,
                ledger_operation_id=uuid.UUID(outcome.body["operation_id"]),
                issued_at=now,
                expires_at=_expiry(reward, now),
            )
    except _Replayed:
        # A concurrent request with this key committed first (the ledger waited for it).
        voucher = _replay(key, reward)
        if voucher is None:
            raise RuntimeError("the ledger replayed a key without a saved operation") from None
        return Purchase(voucher=voucher, replayed=True)
    return Purchase(voucher=voucher, replayed=False)


# --- goodwill ------------------------------------------------------------------------------------


def voucher_goodwill_issue(
    *, staff, member: Member, reward: Reward, reason: str, issue_key: str | None = None, now: datetime | None = None
) -> Voucher:
    """Give ``member`` a voucher of ``reward`` for free (a goodwill gesture).

    The reward must be active and in stock (goodwill takes stock like a purchase) and
    its points price within the staff user's goodwill limit; a reason is required; the
    member must be active and not the staff user's own member account. Tier, window and
    per-member limit are the staff user's judgement and not checked. Records a
    ``voucher_goodwill_issued`` event on the member and an audit-log entry.

    Raises VoucherRefused: ``goodwill_not_permitted``, ``goodwill_above_limit``,
    ``reason_required``, ``own_member_account``, ``member_not_active``,
    ``reward_inactive``, ``out_of_stock``.

    ``issue_key`` (the issuing form's one-time id) makes it idempotent: the same staff
    user and key give the voucher issued the first time (a unique constraint settles two
    concurrent submissions), with no second stock take, event or audit entry.
    """
    now = _now(now)
    if issue_key and (issued := _goodwill_issued(staff, issue_key)) is not None:
        return issued
    limit = goodwill_limit(staff)
    if limit is None:
        raise VoucherRefused("goodwill_not_permitted")
    if reward.points_price > limit:
        raise VoucherRefused("goodwill_above_limit", limit=limit, points_price=reward.points_price)
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise VoucherRefused("reason_required")
    if getattr(staff, "member_account_id", None) is not None and staff.member_account_id == member.pk:
        raise VoucherRefused("own_member_account")
    if not reward.active:
        raise VoucherRefused("reward_inactive")
    try:
        return _goodwill_write(staff=staff, member=member, reward=reward, reason=reason, issue_key=issue_key, now=now)
    except IntegrityError:
        # The same form sent twice at once: the other submission committed first.
        if issue_key and (issued := _goodwill_issued(staff, issue_key)) is not None:
            return issued
        raise


def _goodwill_issued(staff, issue_key: str) -> Voucher | None:
    return Voucher.objects.filter(issued_by=staff, issue_key=issue_key, source=Voucher.Source.GOODWILL).first()


def _goodwill_write(*, staff, member: Member, reward: Reward, reason: str, issue_key: str | None, now) -> Voucher:
    with transaction.atomic():
        status = Member.objects.filter(pk=member.pk).values_list("status", flat=True).first()
        if status != Member.Status.ACTIVE:
            raise VoucherRefused("member_not_active")
        _stock_take(reward)
        voucher = _voucher_insert(
            reward=reward,
            member=member,
            source=Voucher.Source.GOODWILL,
            points_paid=0,
            issued_by=staff,
            issue_reason=reason,
            issue_key=issue_key or None,
            issued_at=now,
            expires_at=_expiry(reward, now),
        )
        _member_event(
            member, "voucher_goodwill_issued", voucher_id=str(voucher.id), reward_id=reward.pk, staff_id=staff.pk
        )
        _audit(
            voucher,
            action=LogEntry.Action.CREATE,
            actor=staff,
            changes={
                "source": [None, Voucher.Source.GOODWILL],
                "reward": [None, str(reward.pk)],
                "member": [None, str(member.member_id)],
                "issue_reason": [None, reason],
                "expires_at": [None, voucher.expires_at.isoformat()],
            },
        )
    return voucher


# --- reported lost, revoked ---------------------------------------------------------------------


def _voucher_uuid(voucher_id) -> uuid.UUID | None:
    if isinstance(voucher_id, uuid.UUID):
        return voucher_id
    try:
        return uuid.UUID(str(voucher_id))
    except ValueError:
        return None


def _not_active(voucher: Voucher, now: datetime) -> VoucherRefused:
    from vouchers.selectors import voucher_state

    return VoucherRefused("voucher_not_active", state=voucher_state(voucher, now=now))


def voucher_report_lost(*, member: Member, voucher_id, now: datetime | None = None) -> Voucher:
    """The member reports their voucher lost or stolen: it stops validating at once.
    Only an active, unexpired voucher (one conditional UPDATE). Another member's
    voucher is ``voucher_not_found``; otherwise ``voucher_not_active``."""
    now = _now(now)
    pk = _voucher_uuid(voucher_id)
    mine = Voucher.objects.filter(pk=pk, member=member) if pk else Voucher.objects.none()
    with transaction.atomic():
        changed = mine.filter(status=Voucher.Status.ACTIVE, expires_at__gt=now).update(
            status=Voucher.Status.REPORTED, reported_at=now
        )
        voucher = mine.select_related("reward").first()
        if voucher is None:
            raise VoucherRefused("voucher_not_found")
        if not changed:
            raise _not_active(voucher, now)
        _member_event(member, "voucher_reported_lost", voucher_id=str(voucher.id))
    return voucher


def voucher_report_suspected(*, staff, voucher_id, reason: str, now: datetime | None = None) -> Voucher:
    """The fraud team reports a member's voucher as suspected stolen or misused: it stops
    validating at once (status ``reported``, as when the member reports it lost). The
    caller (``fraud.actions``) checks the right to act on the case; here, the staff user
    must be active and see vouchers. One conditional UPDATE; an event on the member.

    Raises VoucherRefused: ``permission_denied``, ``reason_required``,
    ``voucher_not_found``, ``voucher_not_active``.
    """
    now = _now(now)
    if not (staff is not None and staff.is_active and staff.has_perm("vouchers.view_voucher")):
        raise VoucherRefused("permission_denied")
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise VoucherRefused("reason_required")
    pk = _voucher_uuid(voucher_id)
    rows = Voucher.objects.filter(pk=pk) if pk else Voucher.objects.none()
    with transaction.atomic():
        changed = rows.filter(status=Voucher.Status.ACTIVE, expires_at__gt=now).update(
            status=Voucher.Status.REPORTED, reported_at=now
        )
        voucher = rows.select_related("reward", "member").first()
        if voucher is None:
            raise VoucherRefused("voucher_not_found")
        if not changed:
            raise _not_active(voucher, now)
        _member_event(voucher.member, "voucher_reported_by_staff", voucher_id=str(voucher.id), staff_id=staff.pk)
    return voucher


def voucher_revoke(*, staff, voucher_id, reason: str, now: datetime | None = None) -> Voucher:
    """Staff revoke an active, unexpired voucher (permission ``vouchers.revoke_voucher``,
    a reason required). One conditional UPDATE; an event on the member and an
    audit-log entry. No points are given back (a refund is a separate decision).

    Raises VoucherRefused: ``permission_denied``, ``reason_required``,
    ``voucher_not_found``, ``voucher_not_active``.
    """
    now = _now(now)
    if not may_revoke_vouchers(staff):
        raise VoucherRefused("permission_denied")
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise VoucherRefused("reason_required")
    pk = _voucher_uuid(voucher_id)
    rows = Voucher.objects.filter(pk=pk) if pk else Voucher.objects.none()
    with transaction.atomic():
        changed = rows.filter(status=Voucher.Status.ACTIVE, expires_at__gt=now).update(
            status=Voucher.Status.REVOKED, revoked_at=now, revoked_by=staff, revoke_reason=reason
        )
        voucher = rows.select_related("reward", "member").first()
        if voucher is None:
            raise VoucherRefused("voucher_not_found")
        if not changed:
            raise _not_active(voucher, now)
        _member_event(voucher.member, "voucher_revoked", voucher_id=str(voucher.id), staff_id=staff.pk)
        _audit(
            voucher,
            action=LogEntry.Action.UPDATE,
            actor=staff,
            changes={"status": [Voucher.Status.ACTIVE, Voucher.Status.REVOKED], "revoke_reason": [None, reason]},
        )
    return voucher
