"""Spending points in one step (a voucher bought with points), and refunds.

A refund restores the exact lots the redemption (a capture or a one-step redeem)
spent, never more in total than it took.
"""

from __future__ import annotations

from django.db.models import Sum

from loyalty.ledger import refusals as refusals
from loyalty.ledger.models import Account, LedgerOperation
from loyalty.ledger.services import core
from loyalty.ledger.services.core import OP, TK, Entry, Posting
from members.models import Member


def redeem(posting: Posting, *, member: Member, points: int, reason: str) -> Entry:
    """Spend ``points`` of the member's, earliest expiring first."""
    account, balance = core.lock_for_spending(member, points)
    op = core.operation_write(posting, OP.REDEEM, member, points, reason=reason)
    transfer = core.transfer_write(op, 0, TK.REDEEM, account, core.system_account(Account.Kind.REDEEM), points)
    core.consume_fefo(account, transfer, points)
    core.add_to_balance(balance, debits_posted=points)
    return Entry(op, core.record(op, balance))


def redeem_reverse(posting: Posting, *, redemption_id: object, points: int, member: Member | None) -> Entry:
    """Refund ``points`` of a redemption to the lots it spent."""
    pk = core.uuid_or_none(redemption_id)
    redemption = LedgerOperation.objects.filter(pk=pk, kind__in=[OP.CAPTURE, OP.REDEEM]).first() if pk else None
    if redemption is None or (member is not None and redemption.member_id != member.pk):
        raise refusals.RedemptionNotFound(redemption_id=str(redemption_id))
    account, balance = core.lock_member(redemption.member)
    spent = redemption.transfers.get(kind__in=[TK.POST, TK.REDEEM])
    refunded = spent.reversals.aggregate(total=Sum("amount"))["total"] or 0
    if refunded + points > spent.amount:
        raise refusals.RefundExceedsRedemption(redeemed=spent.amount, already_refunded=refunded)
    op = core.operation_write(posting, OP.REVERSE_REDEEM, redemption.member, points, related=redemption)
    transfer = core.transfer_write(op, 0, TK.REVERSE_REDEEM, spent.credit_account, account, points, reverses=spent)
    # The points the redemption spent: the hold's movements net of its capture's.
    taken_by = (
        [spent] + ([spent.pending] if spent.pending is not None else []) + list(spent.reversals.exclude(pk=transfer.pk))
    )
    core.restore(transfer, taken_by, points)
    core.add_to_balance(balance, credits_posted=points)
    return Entry(op, core.record(op, balance, redemption_id=str(redemption.id)))
