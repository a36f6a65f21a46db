"""Read-side views of the ledger: a member's balance, snapshots and the roll-forward between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from loyalty.models import Account, LedgerOperation, MemberBalance, PointsLot, Transfer
from loyalty.scoping import scope_to_stores
from loyalty.verify import POSTED_KINDS

if TYPE_CHECKING:
    from members.models import Member
    from staffauth.models import StaffUser


def member_balance(member: Member) -> MemberBalance | None:
    """The member's balance counters; None for a member who never had points (no account yet)."""
    return MemberBalance.objects.filter(account__member=member).first()


def member_operations_visible(member: Member, user: StaffUser | None) -> QuerySet[LedgerOperation]:
    """The member's ledger operations that ``user`` may see, newest first.

    Members are programme-wide, their operations are not: a store-scoped user sees only
    the operations made at their stores (the journal admin's rule), never another
    store's or headquarters' (no store). ``user`` None sees nothing."""
    operations = LedgerOperation.objects.filter(member=member).select_related("store")
    return scope_to_stores(operations, user).order_by("-created_at", "-id")


def member_lots_visible(member: Member, user: StaffUser | None) -> QuerySet[PointsLot]:
    """The member's lots with points left that ``user`` may see, first to expire first:
    a store-scoped user sees those earned at their stores only (a lot's store is the
    store of the operation that credited it)."""
    lots = PointsLot.objects.filter(account__member=member, remaining__gt=0)
    return scope_to_stores(lots, user, store_field="source__operation__store").order_by("expires_on", "id")


@dataclass(frozen=True)
class Snapshot:
    taken_at: object
    outstanding: int  # points members hold (available + held): the liability, from the balances
    flows: dict[str, int]  # cumulative net points into member accounts, per transfer kind, from the journal


def ledger_snapshot() -> Snapshot:
    """Outstanding points (member balances) and cumulative flows per kind (journal),
    read in one REPEATABLE READ snapshot so the two describe the same instant."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        totals = MemberBalance.objects.aggregate(c=Sum("credits_posted"), d=Sum("debits_posted"))
        members = Account.objects.filter(member__isnull=False).values("pk")
        posted = Transfer.objects.filter(kind__in=POSTED_KINDS)
        into = dict(posted.filter(credit_account__in=members).values_list("kind").annotate(t=Sum("amount")))
        out_of = dict(posted.filter(debit_account__in=members).values_list("kind").annotate(t=Sum("amount")))
        return Snapshot(
            taken_at=timezone.now(),
            outstanding=(totals["c"] or 0) - (totals["d"] or 0),
            flows={kind: into.get(kind, 0) - out_of.get(kind, 0) for kind in POSTED_KINDS},
        )


def roll_forward(opening: Snapshot, closing: Snapshot) -> dict[str, Any]:
    """Opening + movements per kind = closing; ``ties_out`` says whether it does."""
    movements = {kind: closing.flows[kind] - opening.flows.get(kind, 0) for kind in closing.flows}
    expected = opening.outstanding + sum(movements.values())
    return {
        "opening": opening.outstanding,
        "movements": {kind: amount for kind, amount in movements.items() if amount},
        "closing": closing.outstanding,
        "ties_out": expected == closing.outstanding,
        "difference": closing.outstanding - expected,
    }
