"""Checks of the ledger's invariants (LEDGER.md §3) in one consistent snapshot, and of
every figure that is stored more than once against its source.

Used by ``manage.py verify_ledger``, the nightly task, and the tests after every
scenario. Each check is one set-based statement: one pass over the table it judges
(joined to the aggregates it is judged against), so the cost grows with the journal,
never with a Python loop over it. A check's statement yields one row per item
examined, with ``problem`` NULL when the item holds; the report counts them in the
database and fetches the failing rows only when there are some.

What is checked beyond the invariants (issue 11, D2): a superuser, or anyone who can
switch the triggers off, can rewrite a row; every copy of a figure that was written in
the same transaction must then be rewritten consistently too, or the copies disagree:

- an operation's points, member and shape against its transfers (per kind);
- a transfer's accounts against its kind, its operation's member and its links (the
  hold a post or void resolves, the transfer a reversal reverses);
- a lot against the transfer that earned it and its movements; the movements of each
  transfer against its amount;
- a member's counters and lots against the journal;
- an operation's header (actor, store, receipt, related operation) against the
  idempotency key that recorded it (scope = actor, saved response = kind, points,
  member, receipt, related operation), the adjustment request that posted it, the
  till redemption that took a hold, the purchased voucher or offline redemption a
  redeem paid for, and the redemption audit that sampled it.

A consistent rewrite of every copy is not detectable by derivation: the database's
triggers and roles (issue 11, D1/D2) keep the application from making one, and a hash
chain (the compliance issue) will make a superuser's detectable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum

from loyalty.adjustments.models import AdjustmentRequest
from loyalty.ledger.models import POSTED_KINDS, Account, LedgerOperation, MemberBalance, Transfer
from loyalty.ledger.verify_sql import sql_checks


@dataclass
class Report:
    checks: dict[str, int] = field(default_factory=dict)  # check -> rows examined
    seconds: dict[str, float] = field(default_factory=dict)  # check -> time it took (the bench prints them)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def ledger_verify(*, limit_problems: int = 50) -> Report:
    """Run every check in one REPEATABLE READ transaction (a consistent snapshot)."""
    report = Report()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        # Inside a caller's transaction (tests) the caller's snapshot is used instead.
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for name, sql in sql_checks():
            started = time.monotonic()
            _run(report, name, sql, limit_problems)
            report.seconds[name] = time.monotonic() - started
        for check in (_check_conservation, _check_holds, _check_reversals, _check_adjustments):
            started = time.monotonic()
            check(report)
            report.seconds[check.__name__.removeprefix("_check_")] = time.monotonic() - started
    report.problems = report.problems[:limit_problems]
    return report


def _run(report: Report, name: str, sql: str, limit: int) -> None:
    """Count the items a check examined and those that failed in one pass; fetch the
    failing ones' descriptions only when there are some."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(problem) FROM ({sql}) AS checked")  # noqa: S608 (static text)
        examined, failed = cursor.fetchone()
        report.checks[name] = examined
        if failed:
            cursor.execute(f"SELECT problem FROM ({sql}) AS checked WHERE problem IS NOT NULL LIMIT %s", [limit])  # noqa: S608
            report.problems.extend(row[0] for row in cursor.fetchall())
            if failed > limit:
                report.problems.append(f"{name}: {failed - limit:,} more problem(s)")


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
