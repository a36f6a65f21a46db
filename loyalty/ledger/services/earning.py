"""Earning points for a purchase, releasing pending earns, and returns.

One earn per receipt reference, ever. With ``LOYALTY_PENDING_DAYS`` > 0 an earn's
points stay pending (recorded, not yet in the journal, not spendable) until the return
window closes; ``release`` then posts them, less anything returned meanwhile. A return
never takes more than the purchase earned; points already spent are not clawed into a
negative balance: the shortfall goes to the RETURN_SHORTFALL account, flagged for review.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger import policy
from loyalty.ledger import refusals as refusals
from loyalty.ledger.models import Account, LedgerOperation, MemberBalance, Transfer
from loyalty.ledger.services.core import (
    OP,
    TK,
    Entry,
    NothingToWrite,
    Posting,
    add_to_balance,
    consume_fefo,
    credit,
    expiry_date,
    lock_member,
    operation_write,
    record,
    require_active,
    system_account,
    transfer_write,
)
from loyalty.ledger.tilldata import NO_TILL_DATA, TillData
from members.models import Member


def earn(
    posting: Posting,
    *,
    member: Member,
    points_of: Callable[[], int],
    receipt_ref: str,
    effective_at: datetime | None,
    amount_minor: int | None,
    till: TillData = NO_TILL_DATA,
) -> Entry:
    """Credit the points of a purchase: ``points_of`` is called once the member (status,
    tier) has been read with the lock, and may raise ``NothingToWrite``. ``till``'s item
    lines and tender hash go on the earn's own row (the same INSERT: no extra query)."""
    effective_at = effective_at or timezone.now()
    account, balance = lock_member(member)
    try:
        points = points_of()
    except NothingToWrite as nothing:
        nothing.balance = balance
        raise
    require_active(member)
    figures = policy.earn_figures(member_id=member.pk, receipt_ref=receipt_ref, now=timezone.now())
    policy.check_earn(figures=figures, tier=member.tier, points=points, receipt_ref=receipt_ref)
    if settings.LOYALTY_PENDING_DAYS > 0:
        until = effective_at + timedelta(days=settings.LOYALTY_PENDING_DAYS)
        op = operation_write(
            posting, OP.EARN, member, points, receipt_ref=receipt_ref, pending_until=until, amount_minor=amount_minor,
            item_lines=till.item_lines, tender_hash=till.tender_hash,
        )  # fmt: skip
        return Entry(op, record(op, balance, receipt_ref=receipt_ref, pending_until=iso_utc(until), tier=member.tier))
    tier = policy.tier_for(figures.qualifying + points)
    entry = credit(
        posting, OP.EARN, member, points, account, balance,
        leg=TK.EARN, expires_on=expiry_date(effective_at), receipt_ref=receipt_ref, amount_minor=amount_minor,
        item_lines=till.item_lines, tender_hash=till.tender_hash,
        respond=lambda op, lot: record(op, balance, receipt_ref=receipt_ref, expires_on=str(lot.expires_on), tier=tier),
    )  # fmt: skip
    policy.tier_apply(member=member, tier=tier)
    return entry


def points_for_purchase_at_lock(*, member: Member, amount_minor: int, receipt_ref: str) -> int:
    """The points of a purchase at the member's tier as read with the lock (``earn``'s
    ``points_of``); an amount worth none moves nothing."""
    points = policy.points_for_purchase(amount_minor=amount_minor, tier=member.tier)
    if points == 0:
        raise NothingToWrite(
            {"loyalty_number": member.loyalty_number, "points": 0, "receipt_ref": receipt_ref}, member=member
        )
    return points


def release(posting: Posting, *, earn: LedgerOperation) -> Entry:
    """Post a pending earn whose return window has closed, less what was returned."""
    account, balance = lock_member(earn.member)
    returned = earn.followups.filter(kind=OP.REVERSE_EARN).aggregate(total=Sum("points"))["total"] or 0
    points = earn.points - returned
    if points <= 0:
        return Entry(None, {"earn_id": str(earn.pk), "points": 0})
    assert earn.pending_until is not None  # only pending earns are released
    earned_at = earn.pending_until - timedelta(days=settings.LOYALTY_PENDING_DAYS)
    entry = credit(
        posting, OP.RELEASE, earn.member, points, account, balance,
        leg=TK.EARN, expires_on=expiry_date(earned_at), related=earn, store_id=earn.store_id,
        respond=lambda op, lot: record(op, balance, earn_id=str(earn.pk), expires_on=str(lot.expires_on)),
    )  # fmt: skip
    policy.tier_recompute(member=earn.member, now=timezone.now())
    return entry


def earn_reverse(
    posting: Posting,
    *,
    member: Member,
    receipt_ref: str,
    points: int | None,
    amount_minor: int | None,
    till: TillData = NO_TILL_DATA,
) -> Entry:
    """Take back points for a returned purchase: exactly ``points``, or for a returned
    ``amount_minor`` the same share of the purchase's points (worked out under the lock).

    A refund tender that differs from the purchase's (both given, FRAUD.md row 15) is
    refused (``RefundTenderMismatch``) or, under ``LOYALTY_RETURN_TENDER_MISMATCH =
    "allow_and_flag"``, booked and flagged for review; compared on the purchase row the
    return reads anyway (no extra query).
    """
    account, balance = lock_member(member)
    earn = LedgerOperation.objects.filter(kind=OP.EARN, receipt_ref=receipt_ref, member=member).first()
    if earn is None:
        raise refusals.PurchaseNotFound(receipt_ref=receipt_ref)
    mismatch = bool(till.tender_hash and earn.tender_hash and till.tender_hash != earn.tender_hash)
    if mismatch and settings.LOYALTY_RETURN_TENDER_MISMATCH != "allow_and_flag":
        raise refusals.RefundTenderMismatch(refund_advice="refuse")
    returned_points = points
    if returned_points is None:
        assert amount_minor is not None  # exactly one of points and amount_minor (checked by the caller)
        returned_points = _points_for_return(earn=earn, member=member, amount_minor=amount_minor)
        if returned_points == 0:
            facts = {"loyalty_number": member.loyalty_number, "points": 0, "receipt_ref": receipt_ref}
            raise NothingToWrite({**facts, "reversed": 0, "shortfall": 0}, balance, member)
    fields = {**till.operation_fields(), "amount_minor": amount_minor}
    extra = {"refund_advice": "flagged"} if mismatch else {}
    return _reverse_earn(
        posting, member, account, balance, earn, returned_points, receipt_ref, fields=fields, flag=mismatch, extra=extra
    )


def _reverse_earn(
    posting: Posting,
    member: Member,
    account: Account,
    balance: MemberBalance,
    earn: LedgerOperation,
    points: int,
    receipt_ref: str,
    *,
    fields: dict[str, Any],
    flag: bool = False,
    extra: dict[str, Any],
) -> Entry:
    """A return's journal, the member locked and ``points`` (> 0) known; ``fields`` (the
    till data) go on the return's row, ``flag`` flags it for review, ``extra`` joins its record."""
    returned = earn.followups.filter(kind=OP.REVERSE_EARN).aggregate(total=Sum("points"))["total"] or 0
    if returned + points > earn.points:
        raise refusals.ReturnExceedsPurchase(earned=earn.points, already_returned=returned)
    earn_transfer = _earn_transfer(earn)
    if earn_transfer is None:
        # Still pending: nothing was posted, the release will post less.
        op = operation_write(posting, OP.REVERSE_EARN, member, points, related=earn, needs_review=flag, **fields)
        return Entry(
            op, record(op, balance, receipt_ref=receipt_ref, reversed=0, shortfall=0, pending_reduced=points, **extra)
        )
    covered = min(points, balance.available)
    shortfall = points - covered
    op = operation_write(
        posting, OP.REVERSE_EARN, member, points, related=earn, needs_review=flag or shortfall > 0, **fields
    )
    leg = 0
    if covered:
        transfer = transfer_write(
            op, leg, TK.REVERSE_EARN, account, system_account(Account.Kind.EARN), covered, reverses=earn_transfer
        )
        consume_fefo(account, transfer, covered, first_lot=earn_transfer.lot)
        add_to_balance(balance, debits_posted=covered)
        leg += 1
    if shortfall:
        transfer_write(
            op, leg, TK.RETURN_SHORTFALL, system_account(Account.Kind.RETURN_SHORTFALL),
            system_account(Account.Kind.EARN), shortfall, reverses=earn_transfer,
        )  # fmt: skip
    tier = policy.tier_recompute(member=member, now=timezone.now())
    return Entry(
        op, record(op, balance, receipt_ref=receipt_ref, reversed=covered, shortfall=shortfall, tier=tier, **extra)
    )


def _points_for_return(*, earn: LedgerOperation, member: Member, amount_minor: int) -> int:
    """Points a return of ``amount_minor`` takes back: the same share of the purchase's
    points as of its amount (rounded down). Purchases recorded without their amount fall
    back to the member's rate: ``member`` as read under the lock (``lock_member``)."""
    if not earn.amount_minor:
        return policy.points_for_purchase(amount_minor=amount_minor, tier=member.tier)
    return earn.points * min(amount_minor, earn.amount_minor) // earn.amount_minor


def _earn_transfer(earn: LedgerOperation) -> Transfer | None:
    """The journal leg of an earn: its own, or its release's if it was pending."""
    return (
        Transfer.objects.filter(kind=TK.EARN)
        .filter(Q(operation=earn) | Q(operation__related=earn, operation__kind=OP.RELEASE))
        .select_related("lot")
        .first()
    )
