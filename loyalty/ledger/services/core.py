"""The ledger's core: who acts, accounts and the member's lock, journal writes, lots.

Every operation runs the same way (LEDGER.md §2, "Write path"), inside the transaction
``loyalty.ledger.idempotency`` opens after claiming the operation's key: lock the
member's balance row (the only row ever locked; system accounts have no balance row),
check the rules, append the journal legs and lot movements, update the counters. The
database's CHECK constraints refuse any overdraw. Every rule is checked before the first
journal write (``Posting.wrote``), so a refusal has nothing to undo.

The hot path is plain SQL (``loyalty.kernel.rawsql``, prepared on PostgreSQL): the lock, the
earn rules' figures and a credit's rows, which on PostgreSQL are one statement with the
saved answer (``credit``). The ORM cost more than the database did there. The rules
themselves stay in Python (``loyalty.ledger.policy``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from loyalty.kernel import rawsql
from loyalty.kernel.models import Store, Till
from loyalty.ledger import policy
from loyalty.ledger import refusals as refusals
from loyalty.ledger.models import Account, LedgerOperation, LotMovement, MemberBalance, PointsLot, Transfer
from loyalty.ledger.selectors import balance_figures
from members.models import Member
from members.services.standing import restriction_notice

if TYPE_CHECKING:
    from staffauth.models import StaffUser

OP = LedgerOperation.Kind
TK = Transfer.Kind

# Test-only fault hooks (crash-point tests): name -> callable run at that point.
FAULT_HOOKS: dict[str, Callable[[], None]] = {}


def fault(point: str) -> None:
    hook = FAULT_HOOKS.get(point)
    if hook is not None:
        hook()


# --- Who acts, the operation being written, and what it did -----------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts (exactly one of staff, till, member, job) and where (store)."""

    staff: StaffUser | None = None
    till: Till | None = None
    member: bool = False
    job: str = ""
    store: Store | None = None

    @property
    def scope(self) -> str:
        """The idempotency scope: keys are unique per caller."""
        if self.till is not None:
            return f"till:{self.till.pk}"
        if self.staff is not None:
            return f"staff:{self.staff.pk}"
        if self.job:
            return f"job:{self.job}"
        return "member"

    def operation_fields(self) -> dict[str, Any]:
        return {
            "actor_staff": self.staff,
            "actor_till": self.till,
            "actor_member": self.member,
            "actor_job": self.job,
            # store_id, not store: no query to load the till's store.
            "store_id": self.store.pk if self.store is not None else getattr(self.till, "store_id", None),
        }


@dataclass
class Posting:
    """One operation being written: who acts, the operation's id (deterministic, so a
    retried request names the same operation) and whether a journal row is written yet.

    ``save_alongside`` (given by the idempotency component) turns the record of a credit
    into the SQL that saves it as the key's answer, for ``credit`` to run in its own
    statement.
    """

    actor: Actor
    operation_id: uuid.UUID
    wrote: bool = False
    save_alongside: Callable[[dict[str, Any]], tuple[str, list[Any]]] | None = None


@dataclass(frozen=True)
class Entry:
    """What an operation did: the journal operation it wrote (None when it moved no
    points) and its record, the facts its caller is told (JSON-ready)."""

    operation: LedgerOperation | None
    record: dict[str, Any]


class NothingToWrite(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Raised under the member's lock when the request moves no points: the transaction
    (the key's claim and any account opened) rolls back, and the caller is told
    ``record`` with the balance as read under the lock (``entry``), saved nowhere."""

    def __init__(self, record: dict[str, Any], balance: MemberBalance | None = None, member: Member | None = None):
        super().__init__("nothing to write")
        self.record, self.balance, self.member = record, balance, member

    @property
    def entry(self) -> Entry:
        return Entry(None, {**self.record, "balance": balance_figures(member=self.member, balance=self.balance)})


# --- Accounts and locks ------------------------------------------------------------------------


def system_account(kind: str) -> Account:
    """A system account (never locked, no balance row), created on first use."""
    row = rawsql.fetchone("SELECT id FROM loyalty_account WHERE kind = %s AND member_id IS NULL", [kind])
    if row is not None:
        return Account.from_db(connection.alias, ["id", "kind", "member_id"], (row[0], kind, None))
    try:
        with transaction.atomic():
            return Account.objects.create(kind=kind)
    except IntegrityError:
        return Account.objects.get(kind=kind, member__isnull=True)


def system_accounts_open(*, using: str = "default") -> None:
    """Open every system account that is missing (a migration opens them; a flush
    empties them)."""
    kinds = [kind for kind in Account.Kind.values if kind != Account.Kind.MEMBER]
    Account.objects.using(using).bulk_create([Account(kind=kind) for kind in kinds], ignore_conflicts=True)


def member_account_open(*, member: Member) -> Account:
    """The member's points account with its balance row, created on first use."""
    account = Account.objects.filter(member=member).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            account = Account.objects.create(kind=Account.Kind.MEMBER, member=member)
            MemberBalance.objects.create(account=account)
            return account
    except IntegrityError:
        return Account.objects.get(member=member)


def lock_balance(account: Account) -> MemberBalance:
    """Lock the member's balance row: every change to a member's points, lots
    included, happens under this one lock."""
    return MemberBalance.objects.select_for_update().get(pk=account.pk)


def _lock_sql(*, spending: bool) -> str:
    sql = (
        "SELECT b.account_id, b.credits_posted, b.debits_posted, b.debits_pending, m.status, m.tier, "
        "m.spend_frozen_until "
        "FROM loyalty_memberbalance b JOIN loyalty_account a ON a.id = b.account_id "
        "JOIN members_member m ON m.id = a.member_id WHERE a.member_id = %s" + rawsql.for_update("b")
    )
    if spending and connection.features.has_select_for_update_of:
        # A spend also takes a share lock on the member's row, which the restriction
        # services lock to write: a freeze (or suspension) and a spend serialise, and a
        # spend that waited for a freeze reads the member row as the freeze left it
        # (PostgreSQL re-reads only the rows a statement locks after waiting). So no
        # spend commits after a freeze has committed. Earning takes no such lock.
        sql += " FOR SHARE OF m"
    return sql


def _aware(value: Any) -> datetime | None:
    """A timestamp column as read by raw SQL: aware on PostgreSQL, text on SQLite."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    assert parsed is not None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def lock_member(member: Member, *, spending: bool = False) -> tuple[Account, MemberBalance]:
    """Open the member's account if need be and lock its balance row.

    ``member`` is refreshed with its status, tier and ``spend_frozen_until`` as read with
    the lock (one query: the freeze rides in it), so the rules judge the member as they
    are now, not as the caller loaded them. ``spending``: also share-lock the member's
    row (see ``_lock_sql``).
    """
    lock = _lock_sql(spending=spending)
    row = rawsql.fetchone(lock, [member.pk])
    if row is None:
        member_account_open(member=member)
        row = rawsql.fetchone(lock, [member.pk])
    assert row is not None  # the account was opened just above
    account_id, *counters, member.status, member.tier, frozen_until = row
    member.spend_frozen_until = _aware(frozen_until)
    account = Account.from_db(
        connection.alias, ["id", "kind", "member_id"], (account_id, Account.Kind.MEMBER, member.pk)
    )
    account.member = member
    fields = ["account_id", "credits_posted", "debits_posted", "debits_pending"]
    return account, MemberBalance.from_db(connection.alias, fields, (account_id, *counters))


def lock_for_spending(member: Member, points: int) -> tuple[Account, MemberBalance]:
    """Lock the member for a redemption and apply every rule a spend must pass."""
    account, balance = lock_member(member, spending=True)
    assert account.member is not None  # a member's account (``lock_member``)
    require_may_spend(account.member)
    if balance.available < points:
        raise refusals.InsufficientPoints(available=balance.available, requested=points)
    policy.check_redemption(member=member, balance=balance, points=points, now=timezone.now())
    return account, balance


def require_active(member: Member) -> None:
    """``member`` as read under the lock (see ``lock_member``)."""
    if member.status != Member.Status.ACTIVE:
        raise refusals.MemberNotActive(status=member.status)


def require_may_spend(member: Member) -> None:
    """Active, and spending not frozen (``members.services.restrictions``): hold, redeem
    and capture. ``member`` as read under the lock (see ``lock_member``). A frozen member
    is told the case reference and what to do (one more query, on the refusal only)."""
    require_active(member)
    if member.spend_frozen_until is not None and member.spend_frozen_until > timezone.now():
        raise refusals.AccountRestricted(**restriction_notice(member))


def add_to_balance(balance: MemberBalance, **deltas: int) -> None:
    # The row is locked, so the new values can be computed here; the database's CHECK
    # constraints still judge them (an overdraw raises, never commits).
    for name, delta in deltas.items():
        setattr(balance, name, getattr(balance, name) + delta)
    rawsql.execute(
        f"UPDATE loyalty_memberbalance SET {', '.join(f'{name} = %s' for name in deltas)}, updated_at = %s "  # noqa: S608
        "WHERE account_id = %s",
        [*(getattr(balance, name) for name in deltas), rawsql.when(timezone.now()), balance.pk],
    )


# --- Journal writes ------------------------------------------------------------------------------


def transfer_write(
    op: LedgerOperation, leg: int, kind: str, debit: Account, credit: Account, amount: int, **links: Any
) -> Transfer:
    """One journal leg of ``op`` (its id derived from the operation's and the leg's)."""
    transfer = Transfer.objects.create(
        id=uuid.uuid5(op.id, str(leg)),
        operation=op,
        kind=kind,
        debit_account=debit,
        credit_account=credit,
        amount=amount,
        **links,
    )
    fault("after_transfer_insert")
    return transfer


def operation_new(posting: Posting, kind: str, member: Member, points: int, **fields: Any) -> LedgerOperation:
    return LedgerOperation(
        id=posting.operation_id,
        kind=kind,
        member=member,
        points=points,
        **{**posting.actor.operation_fields(), **fields},
    )


def operation_write(posting: Posting, kind: str, member: Member, points: int, **fields: Any) -> LedgerOperation:
    posting.wrote = True
    op = operation_new(posting, kind, member, points, **fields)
    op.save(force_insert=True)
    return op


def credit(
    posting: Posting,
    kind: str,
    member: Member,
    points: int,
    account: Account,
    balance: MemberBalance,
    *,
    leg: str,
    expires_on: date,
    respond: Callable[[LedgerOperation, PointsLot], dict[str, Any]],
    **fields: Any,
) -> Entry:
    """Credit ``points`` to the member (earn, release, adjustment): the operation, one
    journal leg of kind ``leg`` from the system account of the same name, a new lot
    with its movement, and the counters. The caller holds the member's lock and has
    applied every rule. The entry's record is ``respond(op, lot)``, made once the rows
    and the new balance are known.

    On PostgreSQL the five rows and the saved answer (``Posting.save_alongside``) are
    one statement (a data-modifying CTE: the earn is the till's hottest write, and round
    trips are what it costs); elsewhere one ORM write each. Rows, constraints and
    triggers are the same.
    """
    op = operation_new(posting, kind, member, points, **fields)
    transfer = Transfer(id=uuid.uuid5(op.id, "0"), operation=op, kind=leg, credit_account=account, amount=points)
    lot = PointsLot(account=account, source=transfer, expires_on=expires_on, earned=points, remaining=points)
    posting.wrote = True
    if connection.vendor != "postgresql":
        op.save(force_insert=True)
        transfer.debit_account = system_account(leg)
        transfer.save(force_insert=True)
        lot.save(force_insert=True)
        LotMovement.objects.create(transfer=transfer, lot=lot, delta=points)
        add_to_balance(balance, credits_posted=points)
        fault("after_transfer_insert")
        return Entry(op, respond(op, lot))

    balance.credits_posted += points
    record = respond(op, lot)
    answer_sql, answer_params = posting.save_alongside(record) if posting.save_alongside else ("SELECT 1", [])
    # The source account by kind, in the statement: it exists from the first migration
    # on, and a missing one would fail the NOT NULL, never skip the leg.
    source = ("(SELECT id FROM loyalty_account WHERE kind = %s AND member_id IS NULL)", [leg])
    (op_sql, op_params), (transfer_sql, transfer_params), (lot_sql, lot_params) = (
        rawsql.insert(op),
        rawsql.insert(transfer, expressions={"debit_account_id": source}),
        rawsql.insert(lot, returning="id"),
    )
    row = rawsql.fetchone(
        f"WITH op AS ({op_sql}), transfer AS ({transfer_sql}), lot AS ({lot_sql}), "  # noqa: S608
        "movement AS (INSERT INTO loyalty_lotmovement (transfer_id, lot_id, delta) SELECT %s, id, %s FROM lot), "
        "balance AS (UPDATE loyalty_memberbalance SET credits_posted = credits_posted + %s, updated_at = %s "
        "WHERE account_id = %s), "
        f"response AS ({answer_sql}) "
        "SELECT id FROM lot",
        [
            *op_params, *transfer_params, *lot_params,
            transfer.id, points,
            points, timezone.now(), account.pk,
            *answer_params,
        ],
    )  # fmt: skip
    assert row is not None  # the lot's RETURNING id: one row
    (lot.id,) = row
    fault("after_transfer_insert")
    return Entry(op, record)


def record(op: LedgerOperation, balance: MemberBalance, **extra: Any) -> dict[str, Any]:
    """The record of an operation on a member's points: what it was, the balance after it."""
    return {
        "operation_id": str(op.id),
        "kind": op.kind,
        "points": op.points,
        "loyalty_number": op.member.loyalty_number,
        "balance": balance_figures(member=op.member, balance=balance),
        **extra,
    }


def expiry_date(effective_at: datetime) -> date:
    return timezone.localdate(effective_at) + timedelta(days=settings.LOYALTY_POINTS_VALID_DAYS)


def uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- Lots: FEFO consumption and exact restoration ------------------------------------------


def consume_fefo(account: Account, transfer: Transfer, points: int, *, first_lot: PointsLot | None = None) -> None:
    """Take ``points`` from the account's lots, earliest expiry first (``first_lot``
    first when given, e.g. the purchase being returned). The caller holds the lock."""
    needed = points
    lots = list(PointsLot.objects.filter(account=account, remaining__gt=0).order_by("expires_on", "id"))
    if first_lot is not None:
        lots.sort(key=lambda lot: lot.pk != first_lot.pk)
    for lot in lots:
        if needed == 0:
            break
        take = min(lot.remaining, needed)
        PointsLot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
        LotMovement.objects.create(transfer=transfer, lot=lot, delta=-take)
        needed -= take
    if needed:
        # The balance said there were enough points; the lots disagree. Never silently.
        raise AssertionError(f"lots of account {account.pk} short by {needed} points")


def restore(transfer: Transfer, taken_by: list[Transfer], points: int) -> None:
    """Give ``points`` back to the exact lots the ``taken_by`` transfers took from,
    last taken first, never more than was taken from each."""
    net: dict[int, int] = {}
    for movement in LotMovement.objects.filter(transfer__in=taken_by).order_by("id"):
        net[movement.lot_id] = net.get(movement.lot_id, 0) - movement.delta
    remaining = points
    for lot_id in reversed(list(net)):  # movements were read in the order points were taken
        if remaining == 0:
            break
        give = min(net[lot_id], remaining)
        if give <= 0:
            continue
        PointsLot.objects.filter(pk=lot_id).update(remaining=F("remaining") + give)
        LotMovement.objects.create(transfer=transfer, lot_id=lot_id, delta=give)
        remaining -= give
    if remaining:
        raise AssertionError(f"cannot restore {remaining} points to the lots of transfer {transfer.pk}")
