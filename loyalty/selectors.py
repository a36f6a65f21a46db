"""Read-side views of the ledger: a member's balance, snapshots and the roll-forward between them."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from loyalty.models import Account, MemberBalance, Transfer
from loyalty.verify import POSTED_KINDS


def member_balance(member) -> MemberBalance | None:
    """The member's balance counters; None for a member who never had points (no account yet)."""
    return MemberBalance.objects.filter(account__member=member).first()


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


def roll_forward(opening: Snapshot, closing: Snapshot) -> dict:
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
