"""Expiry: what is left of a member's lots past their date leaves the account."""

from __future__ import annotations

from datetime import date

from loyalty.ledger.models import Account, LotMovement, PointsLot
from loyalty.ledger.services import core
from loyalty.ledger.services.core import OP, TK, Entry, Posting


def expire_account(posting: Posting, *, account_id: int, as_of: date) -> Entry:
    """Expire what is left of one member's lots due on or before ``as_of``: one journal
    leg, one movement per lot."""
    account = Account.objects.select_related("member").get(pk=account_id)
    balance = core.lock_balance(account)
    lots = list(  # re-read under the lock: a redemption may have spent some meanwhile
        PointsLot.objects.filter(account=account, expires_on__lte=as_of, remaining__gt=0).order_by("expires_on", "id")
    )
    total = sum(lot.remaining for lot in lots)
    if total == 0:
        return Entry(None, {"account": account_id, "expired": 0})
    assert account.member is not None  # only members' accounts hold lots
    op = core.operation_write(posting, OP.EXPIRE, account.member, total)
    transfer = core.transfer_write(op, 0, TK.EXPIRE, account, core.system_account(Account.Kind.EXPIRE), total)
    PointsLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(remaining=0)
    LotMovement.objects.bulk_create(LotMovement(transfer=transfer, lot=lot, delta=-lot.remaining) for lot in lots)
    core.add_to_balance(balance, debits_posted=total)
    return Entry(op, {"account": account_id, "expired": total, "lots": len(lots), "operation_id": str(op.id)})
