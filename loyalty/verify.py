"""Checks of the ledger's invariants (LEDGER.md §3) in one consistent snapshot.

Used by ``manage.py verify_ledger``, the nightly task, and the tests after every
scenario. Each check is a set-based query, so the cost grows with the journal, not
with a Python loop over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum

from loyalty.models import Account, AdjustmentRequest, LedgerOperation, LotMovement, MemberBalance, PointsLot, Transfer

# Transfers that move posted points (holds are pending; voids only release a hold).
POSTED_KINDS = [
    Transfer.Kind.EARN,
    Transfer.Kind.REVERSE_EARN,
    Transfer.Kind.RETURN_SHORTFALL,
    Transfer.Kind.POST,
    Transfer.Kind.REDEEM,
    Transfer.Kind.REVERSE_REDEEM,
    Transfer.Kind.EXPIRE,
    Transfer.Kind.ADJUST,
]


@dataclass
class Report:
    checks: dict[str, int] = field(default_factory=dict)  # check -> rows examined
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sums(queryset, group: str) -> dict[int, int]:
    return {row[group]: row["total"] for row in queryset.values(group).annotate(total=Sum("amount"))}


def ledger_verify(*, limit_problems: int = 50) -> Report:
    """Run every check in one REPEATABLE READ transaction (a consistent snapshot)."""
    report = Report()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        # Inside a caller's transaction (tests) the caller's snapshot is used instead.
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        _check_counters(report)
        _check_conservation(report)
        _check_holds(report)
        _check_reversals(report)
        _check_lots(report)
        _check_adjustments(report)
    report.problems = report.problems[:limit_problems]
    return report


def _check_counters(report: Report) -> None:
    """Invariants 2 and 3: each member's counters equal the journal; no overdraw."""
    posted = Transfer.objects.filter(kind__in=POSTED_KINDS)
    credits = _sums(posted, "credit_account")
    debits = _sums(posted, "debit_account")
    holds = Transfer.objects.filter(kind=Transfer.Kind.HOLD)
    open_holds = _sums(holds.filter(resolutions__isnull=True), "debit_account")
    balances = MemberBalance.objects.values_list("pk", "credits_posted", "debits_posted", "debits_pending")
    count = 0
    for account_id, credits_posted, debits_posted, debits_pending in balances.iterator(chunk_size=2000):
        count += 1
        expected = (credits.get(account_id, 0), debits.get(account_id, 0), open_holds.get(account_id, 0))
        if (credits_posted, debits_posted, debits_pending) != expected:
            report.problems.append(
                f"account {account_id}: counters {(credits_posted, debits_posted, debits_pending)} "
                f"!= journal {expected}"
            )
        if debits_posted + debits_pending > credits_posted:
            report.problems.append(f"account {account_id}: overdrawn")
    report.checks["member counters = journal, no overdraw"] = count


def _check_conservation(report: Report) -> None:
    """Invariant 1: member balances (cache) + system balances (journal) = 0."""
    totals = MemberBalance.objects.aggregate(c=Sum("credits_posted"), d=Sum("debits_posted"))
    members = (totals["c"] or 0) - (totals["d"] or 0)
    posted = Transfer.objects.filter(kind__in=POSTED_KINDS)
    system_ids = Account.objects.filter(member__isnull=True).values("pk")
    system_credits = posted.filter(credit_account__in=system_ids).aggregate(t=Sum("amount"))["t"] or 0
    system_debits = posted.filter(debit_account__in=system_ids).aggregate(t=Sum("amount"))["t"] or 0
    if members + (system_credits - system_debits) != 0:
        report.problems.append(f"conservation: members {members} + system {system_credits - system_debits} != 0")
    report.checks["conservation"] = 1


def _check_holds(report: Report) -> None:
    """Invariant 6: a hold resolves at most once, and never for more than it held."""
    twice = Transfer.objects.filter(kind=Transfer.Kind.HOLD).annotate(n=Count("resolutions")).filter(n__gt=1)
    for hold in twice.values_list("pk", flat=True)[:20]:
        report.problems.append(f"hold {hold}: resolved more than once")
    over = Transfer.objects.filter(kind=Transfer.Kind.POST, amount__gt=F("pending__amount"))
    for post in over.values_list("pk", flat=True)[:20]:
        report.problems.append(f"post {post}: more than its hold")
    report.checks["holds"] = Transfer.objects.filter(kind=Transfer.Kind.HOLD).count()


def _check_reversals(report: Report) -> None:
    """Invariant 7: reversals of a transfer never exceed it, and mirror its legs."""
    reversed_ = Transfer.objects.filter(reversals__isnull=False).annotate(total=Sum("reversals__amount")).distinct()
    for transfer in reversed_.filter(total__gt=F("amount")).values_list("pk", flat=True)[:20]:
        report.problems.append(f"transfer {transfer}: reversed beyond its amount")
    mirrored = Q(debit_account=F("reverses__credit_account"), credit_account=F("reverses__debit_account"))
    askew = Transfer.objects.filter(kind__in=[Transfer.Kind.REVERSE_EARN, Transfer.Kind.REVERSE_REDEEM]).exclude(
        mirrored
    )
    for transfer in askew.values_list("pk", flat=True)[:20]:
        report.problems.append(f"reversal {transfer}: legs do not mirror the original")
    report.checks["reversals"] = reversed_.count()


def _check_lots(report: Report) -> None:
    """Invariant 9: lots add up to the available balance and to their movements."""
    remaining = dict(
        PointsLot.objects.values("account").annotate(total=Sum("remaining")).values_list("account", "total")
    )
    for account_id, available in (
        MemberBalance.objects.annotate(avail=F("credits_posted") - F("debits_posted") - F("debits_pending"))
        .values_list("pk", "avail")
        .iterator(chunk_size=2000)
    ):
        if remaining.get(account_id, 0) != available:
            report.problems.append(
                f"account {account_id}: lots hold {remaining.get(account_id, 0)}, available {available}"
            )
    moved = dict(LotMovement.objects.values("lot").annotate(total=Sum("delta")).values_list("lot", "total"))
    lots = PointsLot.objects.values_list("pk", "remaining", "earned")
    count = 0
    for lot_id, lot_remaining, earned in lots.iterator(chunk_size=5000):
        count += 1
        if moved.get(lot_id, 0) != lot_remaining or not 0 <= lot_remaining <= earned:
            report.problems.append(f"lot {lot_id}: remaining {lot_remaining}, movements {moved.get(lot_id, 0)}")
    report.checks["lots"] = count


def _check_adjustments(report: Report) -> None:
    """Invariant 12: every adjustment in the journal was posted by a request that had
    the approvals its band needs, none by the requester; one posting per request (the
    request's one-to-one link to its operation)."""
    unlinked = LedgerOperation.objects.filter(kind=LedgerOperation.Kind.ADJUST, adjustment_request__isnull=True)
    for op_id in unlinked.values_list("pk", flat=True)[:20]:
        report.problems.append(f"adjustment {op_id}: no approved adjustment request posted it")
    bands = {band["band"]: set(band["approvals"]) for band in settings.ADJUSTMENT_POLICY["bands"]}
    needs_approval = [band for band, steps in bands.items() if steps & {"supervisor", "program_admin"}]
    needs_review = [band for band, steps in bands.items() if "fraud_review" in steps]
    posted = AdjustmentRequest.objects.filter(state=AdjustmentRequest.State.POSTED)
    bad = posted.filter(
        Q(band__in=needs_approval, approved_by__isnull=True)
        | Q(band__in=needs_review, reviewed_by__isnull=True)
        | Q(approved_by=F("requested_by"))
        | Q(reviewed_by=F("requested_by"))
    )
    for request_id in bad.values_list("pk", flat=True)[:20]:
        report.problems.append(f"adjustment request {request_id}: posted without the approvals its band needs")
    report.checks["adjustments"] = posted.count()
