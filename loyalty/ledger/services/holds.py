"""Redemption holds at the till: hold (phase one), capture (phase two) or void.

A hold takes points from the member's lots into pending; it lapses after
``LOYALTY_HOLD_MINUTES`` unless captured. A capture settles it for at most the held
points and gives the rest back to the exact lots it came from; a void gives all back.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger import refusals as refusals
from loyalty.ledger.models import Account, LedgerOperation, MemberBalance, Transfer
from loyalty.ledger.services import core
from loyalty.ledger.services.core import OP, TK, Entry, Posting
from members.models import Member


def hold(posting: Posting, *, member: Member, points: int) -> Entry:
    """Reserve ``points`` for a redemption at the till."""
    account, balance = core.lock_for_spending(member, points)
    lapses = timezone.now() + timedelta(minutes=settings.LOYALTY_HOLD_MINUTES)
    op = core.operation_write(posting, OP.HOLD, member, points, hold_expires_at=lapses)
    transfer = core.transfer_write(op, 0, TK.HOLD, account, core.system_account(Account.Kind.REDEEM), points)
    core.consume_fefo(account, transfer, points)
    core.add_to_balance(balance, debits_pending=points)
    return Entry(op, core.record(op, balance, hold_id=str(op.id), expires_at=iso_utc(lapses)))


def _open_hold(
    hold_id: object, member: Member | None, *, spending: bool = False
) -> tuple[LedgerOperation, Transfer, MemberBalance]:
    parsed = core.uuid_or_none(hold_id)
    found = LedgerOperation.objects.filter(pk=parsed, kind=OP.HOLD).select_related("member").first() if parsed else None
    if found is None or (member is not None and found.member_id != member.pk):
        raise refusals.HoldNotFound(hold_id=str(parsed))
    _, balance = core.lock_member(found.member, spending=spending)
    if LedgerOperation.objects.filter(related=found, kind__in=[OP.CAPTURE, OP.VOID]).exists():
        raise refusals.HoldNotOpen(hold_id=str(parsed))
    return found, found.transfers.get(kind=TK.HOLD), balance


def capture(posting: Posting, *, hold_id: object, points: int | None, member: Member | None) -> Entry:
    """Settle a hold for ``points`` ≤ the held amount (all of it when None); the rest
    goes back to the exact lots it came from. A member whose spending was frozen (or
    who is no longer active) since the hold cannot capture it (``account_restricted``,
    ``member_not_active``): a void gives the points back."""
    held, pending, balance = _open_hold(hold_id, member, spending=True)
    core.require_may_spend(held.member)
    if held.hold_expires_at and held.hold_expires_at <= timezone.now():
        raise refusals.HoldNotOpen("The redemption hold has lapsed.", hold_id=str(hold_id))
    captured = pending.amount if points is None else points
    if captured <= 0 or captured > pending.amount:
        raise refusals.CaptureExceedsHold(held=pending.amount, requested=captured)
    op = core.operation_write(posting, OP.CAPTURE, held.member, captured, related=held)
    post = core.transfer_write(op, 0, TK.POST, pending.debit_account, pending.credit_account, captured, pending=pending)
    if captured < pending.amount:
        core.restore(post, [pending], pending.amount - captured)
    core.add_to_balance(balance, debits_pending=-pending.amount, debits_posted=captured)
    return Entry(op, core.record(op, balance, hold_id=str(held.id), released=pending.amount - captured))


def void(posting: Posting, *, hold_id: object, member: Member | None) -> Entry:
    """Cancel a hold: every held point goes back to the lot it came from."""
    held, pending, balance = _open_hold(hold_id, member)
    op = core.operation_write(posting, OP.VOID, held.member, pending.amount, related=held)
    voided = core.transfer_write(
        op, 0, TK.VOID, pending.debit_account, pending.credit_account, pending.amount, pending=pending
    )
    core.restore(voided, [pending], pending.amount)
    core.add_to_balance(balance, debits_pending=-pending.amount)
    return Entry(op, core.record(op, balance, hold_id=str(held.id), released=pending.amount))
