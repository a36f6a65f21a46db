"""Posting an approved manual adjustment (``loyalty.adjustments.services`` approves it)."""

from __future__ import annotations

from django.utils import timezone

from loyalty.ledger import refusals as refusals
from loyalty.ledger.models import Account
from loyalty.ledger.services import core
from loyalty.ledger.services.core import OP, TK, Entry, Posting
from members.models import Member


def adjust(posting: Posting, *, member: Member, points: int, reason: str, adjustment_ref: str) -> Entry:
    """Credit (``points`` > 0) or debit the member; a debit never overdraws."""
    amount = abs(points)
    account, balance = core.lock_member(member)
    if points < 0 and balance.available < amount:
        raise refusals.InsufficientPoints(available=balance.available, requested=amount)
    if points > 0:
        return core.credit(
            posting, OP.ADJUST, member, amount, account, balance,
            leg=TK.ADJUST, expires_on=core.expiry_date(timezone.now()), reason=reason,
            respond=lambda op, lot: core.record(op, balance, adjustment_ref=adjustment_ref),
        )  # fmt: skip
    op = core.operation_write(posting, OP.ADJUST, member, amount, reason=reason)
    transfer = core.transfer_write(op, 0, TK.ADJUST, account, core.system_account(Account.Kind.ADJUST), amount)
    core.consume_fefo(account, transfer, amount)
    core.add_to_balance(balance, debits_posted=amount)
    return Entry(op, core.record(op, balance, adjustment_ref=adjustment_ref))
