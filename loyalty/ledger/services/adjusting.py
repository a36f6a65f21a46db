"""Posting an approved manual adjustment (``loyalty.adjustments`` approves it)."""

from __future__ import annotations

from django.utils import timezone

from loyalty import exceptions as refusals
from loyalty.ledger.services.core import (
    OP,
    TK,
    Entry,
    Posting,
    add_to_balance,
    consume_fefo,
    credit,
    expiry_date,
    lock_member,
    operation_write,
    record,
    system_account,
    transfer_write,
)
from loyalty.models import Account
from members.models import Member


def adjust(posting: Posting, *, member: Member, points: int, reason: str, adjustment_ref: str) -> Entry:
    """Credit (``points`` > 0) or debit the member; a debit never overdraws."""
    amount = abs(points)
    account, balance = lock_member(member)
    if points < 0 and balance.available < amount:
        raise refusals.InsufficientPoints(available=balance.available, requested=amount)
    if points > 0:
        return credit(
            posting, OP.ADJUST, member, amount, account, balance,
            leg=TK.ADJUST, expires_on=expiry_date(timezone.now()), reason=reason,
            respond=lambda op, lot: record(op, balance, adjustment_ref=adjustment_ref),
        )  # fmt: skip
    op = operation_write(posting, OP.ADJUST, member, amount, reason=reason)
    transfer = transfer_write(op, 0, TK.ADJUST, account, system_account(Account.Kind.ADJUST), amount)
    consume_fefo(account, transfer, amount)
    add_to_balance(balance, debits_posted=amount)
    return Entry(op, record(op, balance, adjustment_ref=adjustment_ref))
