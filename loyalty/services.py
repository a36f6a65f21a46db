"""The points ledger's write path: the only code that moves points.

Every operation runs the same way (LEDGER.md §2, "Write path"):

1. In one READ COMMITTED transaction, claim the idempotency key with
   ``INSERT … ON CONFLICT DO NOTHING``. A concurrent duplicate blocks on the unique
   index until the first commits, then finds the saved outcome and returns it (the
   same key with another payload is refused and writes nothing).
2. Lock the member's balance row (the only row ever locked; system accounts have no
   balance row), check the rules, append the journal legs and lot movements, update
   the counters. The database's CHECK constraints refuse any overdraw.
3. Save the outcome (success or refusal) under the key, in the same transaction.

Serialization failures and deadlocks (SQLSTATE 40001/40P01) are retried with a
jittered backoff and never reported as business refusals.

The hot path is plain SQL (``loyalty.rawsql``, prepared on PostgreSQL): the claim,
the lock, the earn rules' figures and a credit's rows, which on PostgreSQL are one
statement with the saved response (``_credit``). The ORM cost more than the database
did there. The rules themselves stay in Python (``loyalty.policy``).

Callers get an ``Outcome`` (HTTP status + JSON body) whether the operation was
applied, refused, or replayed from the key. ``fingerprint`` (optional) is the caller's
whole validated request: it joins the payload hash, so the same key with any other
request body is refused even where the operation's own arguments match.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from loyalty import exceptions as refusals
from loyalty import policy, rawsql
from loyalty.models import (
    Account,
    IdempotencyKey,
    LedgerOperation,
    LotMovement,
    MemberBalance,
    PointsLot,
    Store,
    Till,
    Transfer,
)
from loyalty.policy import points_for_purchase  # noqa: F401  (re-exported for callers)
from members.models import Member

if TYPE_CHECKING:
    from staffauth.models import StaffUser

OP = LedgerOperation.Kind
TK = Transfer.Kind
NAMESPACE = uuid.UUID("6f1c2a4e-3b5d-4f7a-9c8e-2d1b0a9f8e7d")
RETRY_SQLSTATES = {"40001", "40P01"}
MAX_ATTEMPTS = 6

# Test-only fault hooks (crash-point tests): name -> callable run at that point.
FAULT_HOOKS: dict[str, Callable[[], None]] = {}


def _fault(point: str) -> None:
    hook = FAULT_HOOKS.get(point)
    if hook is not None:
        hook()


# --- Who, where, and what came back ---------------------------------------------------------


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

    def operation_fields(self) -> dict:
        return {
            "actor_staff": self.staff,
            "actor_till": self.till,
            "actor_member": self.member,
            "actor_job": self.job,
            # store_id, not store: no query to load the till's store.
            "store_id": self.store.pk if self.store is not None else getattr(self.till, "store_id", None),
        }


@dataclass
class Outcome:
    status_code: int
    body: dict
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def error_code(self) -> str | None:
        return None if self.ok else self.body.get("error", {}).get("code")


@dataclass
class _Request:
    """What an operation needs: its idempotency identity and its payload."""

    actor: Actor
    key: str
    payload: dict = field(default_factory=dict)
    scope_override: str | None = None
    wrote: bool = False  # set by the first journal write (``_operation``, ``_credit``)
    key_id: int | None = None  # the claimed key's row
    saved: tuple[int, dict] | None = None  # a response a write already saved under the key (``_credit``)

    @property
    def scope(self) -> str:
        return self.scope_override or self.actor.scope

    @property
    def request_hash(self) -> str:
        canonical = json.dumps(self.payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def operation_id(self) -> uuid.UUID:
        # Deterministic: a retried request names the same operation.
        return uuid.uuid5(NAMESPACE, f"{self.scope}:{self.key}")


# --- The idempotent, retried transaction -------------------------------------------------------


def _canonical(body: dict) -> dict:
    """Keys sorted at every level, so a replay (read back from jsonb, which reorders
    keys) renders byte for byte like the first response."""
    return json.loads(json.dumps(body, sort_keys=True))


def _claim_key(request: _Request) -> int | None:
    """Insert the key row; None if it already existed (possibly after waiting for it)."""
    row = rawsql.fetchone(
        f"INSERT INTO {IdempotencyKey._meta.db_table} (scope, key, request_hash, status_code, response, created_at) "  # noqa: S608
        "VALUES (%s, %s, %s, 0, %s, %s) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
        [request.scope, request.key, request.request_hash, "{}", rawsql.when(timezone.now())],
    )
    return row[0] if row else None


def _run(request: _Request, work: Callable[[], tuple[int, dict]]) -> Outcome:
    if not request.key or len(request.key) > 128:
        raise ValueError("an idempotency key of 1 to 128 characters is required")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            outcome = _run_once(request, work)
            _fault("after_commit")
            return outcome
        except OperationalError as exc:
            sqlstate = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
            if sqlstate not in RETRY_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 (jitter, not security)
    raise AssertionError("unreachable")


_SAVE_RESPONSE_SQL = f"UPDATE {IdempotencyKey._meta.db_table} SET status_code = %s, response = %s WHERE id = %s"  # noqa: S608


def _run_once(request: _Request, work: Callable[[], tuple[int, dict]]) -> Outcome:
    request.wrote, request.saved = False, None  # a retried attempt starts from nothing written
    with transaction.atomic():
        request.key_id = _claim_key(request)
        if request.key_id is None:
            saved = IdempotencyKey.objects.get(scope=request.scope, key=request.key)
            if saved.request_hash != request.request_hash:
                refusal = refusals.IdempotencyKeyReused()
                return Outcome(refusal.status, refusal.as_body())
            return Outcome(saved.status_code, _canonical(saved.response), replayed=True)
        _fault("after_key_claimed")
        try:
            # No savepoint: every rule is checked before the first journal write, so a
            # refusal has nothing to undo. Enforced: a refusal after a write is a bug,
            # and the whole transaction (key included) rolls back instead.
            status, body = work()
        except refusals.LedgerRefusal as refusal:
            if request.wrote:
                raise RuntimeError(f"{refusal.code} raised after a journal write") from refusal
            status, body = refusal.status, refusal.as_body()
        body = _canonical(body)
        if request.saved != (status, body):
            rawsql.execute(_SAVE_RESPONSE_SQL, [status, json.dumps(body), request.key_id])
        _fault("before_commit")
        return Outcome(status, body)


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


def _lock_balance(account: Account) -> MemberBalance:
    """Lock the member's balance row: every change to a member's points, lots
    included, happens under this one lock."""
    return MemberBalance.objects.select_for_update().get(pk=account.pk)


def _lock_member(member: Member) -> tuple[Account, MemberBalance]:
    """Open the member's account if need be and lock its balance row.

    ``member`` is refreshed with its status and tier as read with the lock, so the rules
    judge the member as they are now, not as the caller loaded them.
    """
    lock = (
        "SELECT b.account_id, b.credits_posted, b.debits_posted, b.debits_pending, m.status, m.tier "
        "FROM loyalty_memberbalance b JOIN loyalty_account a ON a.id = b.account_id "
        "JOIN members_member m ON m.id = a.member_id WHERE a.member_id = %s" + rawsql.for_update("b")
    )
    row = rawsql.fetchone(lock, [member.pk])
    if row is None:
        member_account_open(member=member)
        row = rawsql.fetchone(lock, [member.pk])
    assert row is not None  # the account was opened just above
    account_id, *counters, member.status, member.tier = row
    account = Account.from_db(
        connection.alias, ["id", "kind", "member_id"], (account_id, Account.Kind.MEMBER, member.pk)
    )
    account.member = member
    fields = ["account_id", "credits_posted", "debits_posted", "debits_pending"]
    return account, MemberBalance.from_db(connection.alias, fields, (account_id, *counters))


def _lock_for_spending(member: Member, points: int) -> tuple[Account, MemberBalance]:
    """Lock the member for a redemption and apply every rule a spend must pass."""
    account, balance = _lock_member(member)
    assert account.member is not None  # a member's account (``_lock_member``)
    _require_active(account.member)
    if balance.available < points:
        raise refusals.InsufficientPoints(available=balance.available, requested=points)
    policy.check_redemption(member=member, balance=balance, points=points, now=timezone.now())
    return account, balance


def _require_active(member: Member) -> None:
    """``member`` as read under the lock (see ``_lock_member``)."""
    if member.status != Member.Status.ACTIVE:
        raise refusals.MemberNotActive(status=member.status)


def _add_to_balance(balance: MemberBalance, **deltas: int) -> None:
    # The row is locked, so the new values can be computed here; the database's CHECK
    # constraints still judge them (an overdraw raises, never commits).
    for name, delta in deltas.items():
        setattr(balance, name, getattr(balance, name) + delta)
    rawsql.execute(
        f"UPDATE loyalty_memberbalance SET {', '.join(f'{name} = %s' for name in deltas)}, updated_at = %s "  # noqa: S608
        "WHERE account_id = %s",
        [*(getattr(balance, name) for name in deltas), rawsql.when(timezone.now()), balance.pk],
    )


def _transfer(
    op: LedgerOperation, leg: int, kind: str, debit: Account, credit: Account, amount: int, **links
) -> Transfer:
    transfer = Transfer.objects.create(
        id=uuid.uuid5(op.id, str(leg)),
        operation=op,
        kind=kind,
        debit_account=debit,
        credit_account=credit,
        amount=amount,
        **links,
    )
    _fault("after_transfer_insert")
    return transfer


def _operation_new(request: _Request, kind: str, member: Member, points: int, **fields) -> LedgerOperation:
    return LedgerOperation(
        id=request.operation_id,
        kind=kind,
        member=member,
        points=points,
        **{**request.actor.operation_fields(), **fields},
    )


def _operation(request: _Request, kind: str, member: Member, points: int, **fields) -> LedgerOperation:
    request.wrote = True
    op = _operation_new(request, kind, member, points, **fields)
    op.save(force_insert=True)
    return op


def _credit(
    request: _Request,
    kind: str,
    member: Member,
    points: int,
    account: Account,
    balance: MemberBalance,
    *,
    leg: str,
    expires_on: date,
    respond: Callable[[LedgerOperation, PointsLot], dict],
    **fields,
) -> dict:
    """Credit ``points`` to the member (earn, release, adjustment): the operation, one
    journal leg of kind ``leg`` from the system account of the same name, a new lot
    with its movement, and the counters. The caller holds the member's lock and has
    applied every rule. A credit answers 201 with ``respond(op, lot)``, made once the
    rows and the new balance are known; returns that body.

    On PostgreSQL the five rows and the saved response are one statement (a
    data-modifying CTE: the earn is the till's hottest write, and round trips are what
    it costs); elsewhere one ORM write each. Rows, constraints and triggers are the same.
    """
    op = _operation_new(request, kind, member, points, **fields)
    transfer = Transfer(id=uuid.uuid5(op.id, "0"), operation=op, kind=leg, credit_account=account, amount=points)
    lot = PointsLot(account=account, source=transfer, expires_on=expires_on, earned=points, remaining=points)
    request.wrote = True
    if connection.vendor != "postgresql":
        op.save(force_insert=True)
        transfer.debit_account = system_account(leg)
        transfer.save(force_insert=True)
        lot.save(force_insert=True)
        LotMovement.objects.create(transfer=transfer, lot=lot, delta=points)
        _add_to_balance(balance, credits_posted=points)
        _fault("after_transfer_insert")
        return respond(op, lot)

    balance.credits_posted += points
    body = _canonical(respond(op, lot))
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
        f"response AS ({_SAVE_RESPONSE_SQL}) "
        "SELECT id FROM lot",
        [
            *op_params, *transfer_params, *lot_params,
            transfer.id, points,
            points, timezone.now(), account.pk,
            201, json.dumps(body), request.key_id,
        ],
    )  # fmt: skip
    assert row is not None  # the lot's RETURNING id: one row
    (lot.id,) = row
    request.saved = (201, body)
    _fault("after_transfer_insert")
    return body


# --- Lots: FEFO consumption and exact restoration ------------------------------------------


def _consume_fefo(account: Account, transfer: Transfer, points: int, *, first_lot: PointsLot | None = None) -> None:
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


def _restore(transfer: Transfer, taken_by: list[Transfer], points: int) -> None:
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


def _expiry_date(effective_at: datetime) -> date:
    return timezone.localdate(effective_at) + timedelta(days=settings.LOYALTY_POINTS_VALID_DAYS)


def _body(op: LedgerOperation, balance: MemberBalance, **extra) -> dict:
    return {
        "operation_id": str(op.id),
        "kind": op.kind,
        "points": op.points,
        "loyalty_number": op.member.loyalty_number,
        "balance": {"available": balance.available, "pending": balance.debits_pending},
        **extra,
    }


class _NothingToWrite(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Raised under the member's lock when the request moves no points: the transaction
    (the key's claim and any account opened) rolls back, and the caller answers 200 with
    ``body`` and the balance as read under the lock."""

    def __init__(self, body: dict, balance: MemberBalance | None = None):
        super().__init__("nothing to write")
        self.body, self.balance = body, balance

    @property
    def outcome(self) -> Outcome:
        balance = self.balance
        figures = {"available": balance.available, "pending": balance.debits_pending} if balance else None
        return Outcome(200, _canonical({**self.body, "balance": figures or {"available": 0, "pending": 0}}))


# --- Operations ----------------------------------------------------------------------------


def points_earn(
    *,
    member: Member,
    points: int,
    receipt_ref: str,
    actor: Actor,
    idempotency_key: str,
    effective_at: datetime | None = None,
    amount_minor: int | None = None,
    fingerprint: dict | None = None,
) -> Outcome:
    """Credit ``points`` for a purchase. One earn per receipt reference, ever.
    ``amount_minor`` (the purchase amount) is kept so returns by amount are exact.

    For callers that know the points (staff, jobs, the demo); a till, which knows the
    amount paid, calls ``points_earn_purchase``.

    With ``LOYALTY_PENDING_DAYS`` > 0 the points stay pending (recorded, not yet in
    the journal, not spendable) until the return window closes; ``points_pending_release``
    then posts them, less anything returned meanwhile.
    """
    if points <= 0:
        raise ValueError("points must be positive")
    request = _Request(
        actor,
        idempotency_key,
        {"op": "earn", "member": member.pk, "points": points, "receipt": receipt_ref, "request": fingerprint},
    )
    return _run(request, _earn_work(request, member, lambda: points, receipt_ref, effective_at, amount_minor))


def points_earn_purchase(
    *,
    member: Member,
    amount_minor: int,
    receipt_ref: str,
    actor: Actor,
    idempotency_key: str,
    effective_at: datetime | None = None,
    fingerprint: dict | None = None,
) -> Outcome:
    """Earn for a purchase of ``amount_minor`` (minor units) at the till: the points
    (``policy.points_for_purchase``) are worked out under the member's lock, at the tier
    read with it, so two earns of one member never price each other's tier wrong.

    The idempotency payload is the request as the till sent it (the amount, the receipt,
    the member, the date given, and ``fingerprint``), never the points: the first attempt
    may move the member to another tier, and its exact retry must still be the same
    request (issue 11, D4) and answer the saved outcome.

    An amount worth no points at the member's tier answers 200 with ``points`` 0 and the
    balance, and writes nothing (not even the key: there is no operation to replay).
    """
    if amount_minor < 0:
        raise ValueError("amount_minor must not be negative")
    request = _Request(
        actor,
        idempotency_key,
        {
            "op": "earn",
            "member": member.pk,
            "amount_minor": amount_minor,
            "receipt": receipt_ref,
            "effective_at": effective_at.isoformat() if effective_at else None,
            "request": fingerprint,
        },
    )

    def points_of() -> int:
        points = policy.points_for_purchase(amount_minor=amount_minor, tier=member.tier)  # tier as locked
        if points == 0:
            raise _NothingToWrite({"loyalty_number": member.loyalty_number, "points": 0, "receipt_ref": receipt_ref})
        return points

    try:
        return _run(request, _earn_work(request, member, points_of, receipt_ref, effective_at, amount_minor))
    except _NothingToWrite as nothing:
        return nothing.outcome


def _earn_work(
    request: _Request,
    member: Member,
    points_of: Callable[[], int],
    receipt_ref: str,
    effective_at: datetime | None,
    amount_minor: int | None,
) -> Callable[[], tuple[int, dict]]:
    """The earn's work, run by ``_run`` under the member's lock: ``points_of`` is called
    once the member (status, tier) has been read with the lock."""
    effective_at = effective_at or timezone.now()

    def work():
        account, balance = _lock_member(member)
        try:
            points = points_of()
        except _NothingToWrite as nothing:
            nothing.balance = balance
            raise
        _require_active(member)
        figures = policy.earn_figures(member_id=member.pk, receipt_ref=receipt_ref, now=timezone.now())
        policy.check_earn(figures=figures, tier=member.tier, points=points, receipt_ref=receipt_ref)
        if settings.LOYALTY_PENDING_DAYS > 0:
            until = effective_at + timedelta(days=settings.LOYALTY_PENDING_DAYS)
            op = _operation(
                request,
                OP.EARN,
                member,
                points,
                receipt_ref=receipt_ref,
                pending_until=until,
                amount_minor=amount_minor,
            )
            return 201, _body(op, balance, receipt_ref=receipt_ref, pending_until=until.isoformat(), tier=member.tier)
        tier = policy.tier_for(figures.qualifying + points)
        body = _credit(
            request, OP.EARN, member, points, account, balance,
            leg=TK.EARN, expires_on=_expiry_date(effective_at), receipt_ref=receipt_ref, amount_minor=amount_minor,
            respond=lambda op, lot: _body(op, balance, receipt_ref=receipt_ref, expires_on=str(lot.expires_on), tier=tier),
        )  # fmt: skip
        policy.tier_apply(member=member, tier=tier)
        return 201, body

    return work


def _points_for_return(*, earn: LedgerOperation, member: Member, amount_minor: int) -> int:
    """Points a return of ``amount_minor`` takes back: the same share of the purchase's
    points as of its amount (rounded down). Purchases recorded without their amount fall
    back to the member's rate: ``member`` as read under the lock (``_lock_member``)."""
    if not earn.amount_minor:
        return policy.points_for_purchase(amount_minor=amount_minor, tier=member.tier)
    return earn.points * min(amount_minor, earn.amount_minor) // earn.amount_minor


def _earn_transfer(earn: LedgerOperation) -> Transfer | None:
    """The journal leg of an earn: its own, or its release's if it was pending."""
    return (
        Transfer.objects.filter(kind=TK.EARN)
        .filter(Q(operation=earn) | Q(operation__related=earn, operation__kind=OP.RELEASE))
        .select_related("lot")
        .first()
    )


def points_pending_release(*, now: datetime | None = None, batch: int = 500) -> int:
    """Post pending earns whose return window has closed, less what was returned
    meanwhile. One short transaction per earn, keyed by the earn: idempotent."""
    now = now or timezone.now()
    released, last = 0, None
    while True:
        due = LedgerOperation.objects.filter(kind=OP.EARN, pending_until__lte=now).exclude(followups__kind=OP.RELEASE)
        if last is not None:
            due = due.filter(pk__gt=last)
        ids = list(due.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return released
        for earn_id in ids:
            outcome = _release_one(earn_id)
            released += outcome.ok and not outcome.replayed and outcome.body.get("points", 0) > 0
        last = ids[-1]


def _release_one(earn_id) -> Outcome:
    earn = LedgerOperation.objects.select_related("member").get(pk=earn_id)
    request = _Request(Actor(job="pending_release"), f"release:{earn_id}", {"op": "release", "earn": str(earn_id)})

    def work():
        account, balance = _lock_member(earn.member)
        returned = earn.followups.filter(kind=OP.REVERSE_EARN).aggregate(total=Sum("points"))["total"] or 0
        points = earn.points - returned
        if points <= 0:
            return 200, {"earn_id": str(earn_id), "points": 0}
        assert earn.pending_until is not None  # only pending earns are released
        earned_at = earn.pending_until - timedelta(days=settings.LOYALTY_PENDING_DAYS)
        body = _credit(
            request, OP.RELEASE, earn.member, points, account, balance,
            leg=TK.EARN, expires_on=_expiry_date(earned_at), related=earn, store_id=earn.store_id,
            respond=lambda op, lot: _body(op, balance, earn_id=str(earn_id), expires_on=str(lot.expires_on)),
        )  # fmt: skip
        policy.tier_recompute(member=earn.member, now=timezone.now())
        return 201, body

    return _run(request, work)


def points_earn_reverse(
    *,
    member: Member,
    receipt_ref: str,
    actor: Actor,
    idempotency_key: str,
    points: int | None = None,
    amount_minor: int | None = None,
    fingerprint: dict | None = None,
) -> Outcome:
    """Take back points for a returned purchase (partial or whole): exactly ``points``,
    or for a returned ``amount_minor`` the same share of the purchase's points (worked
    out under the member's lock; the idempotency payload is the amount as sent, never
    points derived from state the first attempt may change: issue 11, D4).

    Never more than the purchase earned, across all its returns. Points already spent
    are not clawed into a negative balance: the shortfall goes to the RETURN_SHORTFALL
    account and the return is flagged for review. An amount worth no points answers 200
    with ``reversed`` 0 and writes nothing (not even the key).
    """
    if (points is None) == (amount_minor is None):
        raise ValueError("give exactly one of points and amount_minor")
    if points is not None and points <= 0:
        raise ValueError("points must be positive")
    if amount_minor is not None and amount_minor < 0:
        raise ValueError("amount_minor must not be negative")
    given: dict[str, int | None] = {"points": points} if points is not None else {"amount_minor": amount_minor}
    request = _Request(
        actor,
        idempotency_key,
        {"op": "reverse_earn", "member": member.pk, **given, "receipt": receipt_ref, "request": fingerprint},
    )

    def work():
        account, balance = _lock_member(member)
        earn = LedgerOperation.objects.filter(kind=OP.EARN, receipt_ref=receipt_ref, member=member).first()
        if earn is None:
            raise refusals.PurchaseNotFound(receipt_ref=receipt_ref)
        returned_points = points
        if returned_points is None:
            assert amount_minor is not None  # exactly one of points and amount_minor (checked above)
            returned_points = _points_for_return(earn=earn, member=member, amount_minor=amount_minor)
            if returned_points == 0:
                body = {"loyalty_number": member.loyalty_number, "points": 0, "receipt_ref": receipt_ref}
                raise _NothingToWrite({**body, "reversed": 0, "shortfall": 0}, balance)
        return _reverse_earn(request, member, account, balance, earn, returned_points, receipt_ref)

    try:
        return _run(request, work)
    except _NothingToWrite as nothing:
        return nothing.outcome


def _reverse_earn(
    request: _Request,
    member: Member,
    account: Account,
    balance: MemberBalance,
    earn: LedgerOperation,
    points: int,
    receipt_ref: str,
) -> tuple[int, dict]:
    """A return's journal, the member locked and ``points`` (> 0) known."""
    returned = earn.followups.filter(kind=OP.REVERSE_EARN).aggregate(total=Sum("points"))["total"] or 0
    if returned + points > earn.points:
        raise refusals.ReturnExceedsPurchase(earned=earn.points, already_returned=returned)
    earn_transfer = _earn_transfer(earn)
    if earn_transfer is None:
        # Still pending: nothing was posted, the release will post less.
        op = _operation(request, OP.REVERSE_EARN, member, points, related=earn)
        return 201, _body(op, balance, receipt_ref=receipt_ref, reversed=0, shortfall=0, pending_reduced=points)
    covered = min(points, balance.available)
    shortfall = points - covered
    op = _operation(request, OP.REVERSE_EARN, member, points, related=earn, needs_review=shortfall > 0)
    leg = 0
    if covered:
        transfer = _transfer(
            op, leg, TK.REVERSE_EARN, account, system_account(Account.Kind.EARN), covered, reverses=earn_transfer
        )
        _consume_fefo(account, transfer, covered, first_lot=earn_transfer.lot)
        _add_to_balance(balance, debits_posted=covered)
        leg += 1
    if shortfall:
        _transfer(
            op, leg, TK.RETURN_SHORTFALL, system_account(Account.Kind.RETURN_SHORTFALL),
            system_account(Account.Kind.EARN), shortfall, reverses=earn_transfer,
        )  # fmt: skip
    tier = policy.tier_recompute(member=member, now=timezone.now())
    return 201, _body(op, balance, receipt_ref=receipt_ref, reversed=covered, shortfall=shortfall, tier=tier)


def points_hold(
    *, member: Member, points: int, actor: Actor, idempotency_key: str, fingerprint: dict | None = None
) -> Outcome:
    """Reserve ``points`` for a redemption at the till (phase one). The hold lapses
    after ``LOYALTY_HOLD_MINUTES`` unless captured."""
    if points <= 0:
        raise ValueError("points must be positive")
    request = _Request(
        actor, idempotency_key, {"op": "hold", "member": member.pk, "points": points, "request": fingerprint}
    )

    def work():
        account, balance = _lock_for_spending(member, points)
        lapses = timezone.now() + timedelta(minutes=settings.LOYALTY_HOLD_MINUTES)
        op = _operation(request, OP.HOLD, member, points, hold_expires_at=lapses)
        transfer = _transfer(op, 0, TK.HOLD, account, system_account(Account.Kind.REDEEM), points)
        _consume_fefo(account, transfer, points)
        _add_to_balance(balance, debits_pending=points)
        return 201, _body(op, balance, hold_id=str(op.id), expires_at=lapses.isoformat())

    return _run(request, work)


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _open_hold(hold_id, member: Member | None) -> tuple[LedgerOperation, Transfer, MemberBalance]:
    hold_id = _uuid_or_none(hold_id)
    hold = (
        LedgerOperation.objects.filter(pk=hold_id, kind=OP.HOLD).select_related("member").first() if hold_id else None
    )
    if hold is None or (member is not None and hold.member_id != member.pk):
        raise refusals.HoldNotFound(hold_id=str(hold_id))
    _, balance = _lock_member(hold.member)
    if LedgerOperation.objects.filter(related=hold, kind__in=[OP.CAPTURE, OP.VOID]).exists():
        raise refusals.HoldNotOpen(hold_id=str(hold_id))
    return hold, hold.transfers.get(kind=TK.HOLD), balance


def points_capture(
    *,
    hold_id,
    actor: Actor,
    idempotency_key: str,
    points: int | None = None,
    member: Member | None = None,
    fingerprint: dict | None = None,
) -> Outcome:
    """Settle a hold (phase two) for ``points`` ≤ the held amount; the rest goes back
    to the exact lots it came from."""
    request = _Request(
        actor, idempotency_key, {"op": "capture", "hold": str(hold_id), "points": points, "request": fingerprint}
    )

    def work():
        hold, pending, balance = _open_hold(hold_id, member)
        if hold.hold_expires_at and hold.hold_expires_at <= timezone.now():
            raise refusals.HoldNotOpen("The redemption hold has lapsed.", hold_id=str(hold_id))
        captured = pending.amount if points is None else points
        if captured <= 0 or captured > pending.amount:
            raise refusals.CaptureExceedsHold(held=pending.amount, requested=captured)
        op = _operation(request, OP.CAPTURE, hold.member, captured, related=hold)
        post = _transfer(op, 0, TK.POST, pending.debit_account, pending.credit_account, captured, pending=pending)
        if captured < pending.amount:
            _restore(post, [pending], pending.amount - captured)
        _add_to_balance(balance, debits_pending=-pending.amount, debits_posted=captured)
        return 201, _body(op, balance, hold_id=str(hold.id), released=pending.amount - captured)

    return _run(request, work)


def points_void(
    *, hold_id, actor: Actor, idempotency_key: str, member: Member | None = None, fingerprint: dict | None = None
) -> Outcome:
    """Cancel a hold: every held point goes back to the lot it came from."""
    request = _Request(actor, idempotency_key, {"op": "void", "hold": str(hold_id), "request": fingerprint})

    def work():
        hold, pending, balance = _open_hold(hold_id, member)
        op = _operation(request, OP.VOID, hold.member, pending.amount, related=hold)
        void = _transfer(op, 0, TK.VOID, pending.debit_account, pending.credit_account, pending.amount, pending=pending)
        _restore(void, [pending], pending.amount)
        _add_to_balance(balance, debits_pending=-pending.amount)
        return 201, _body(op, balance, hold_id=str(hold.id), released=pending.amount)

    return _run(request, work)


def points_holds_lapse(*, now: datetime | None = None, batch: int = 200) -> int:
    """Void holds past their lapse time (the sweeper). Idempotent: the key is the hold."""
    now = now or timezone.now()
    lapsed = (
        LedgerOperation.objects.filter(kind=OP.HOLD, hold_expires_at__lte=now)
        .exclude(followups__kind__in=[OP.CAPTURE, OP.VOID])
        .values_list("pk", flat=True)[:batch]
    )
    voided = 0
    for hold_id in list(lapsed):
        outcome = points_void(hold_id=hold_id, actor=Actor(job="holds_lapse"), idempotency_key=f"void:{hold_id}")
        voided += outcome.ok and not outcome.replayed
    return voided


def points_redeem(
    *,
    member: Member,
    points: int,
    actor: Actor,
    idempotency_key: str,
    reason: str = "",
    fingerprint: dict | None = None,
) -> Outcome:
    """Spend points in one step (a voucher bought with points)."""
    if points <= 0:
        raise ValueError("points must be positive")
    request = _Request(
        actor,
        idempotency_key,
        {"op": "redeem", "member": member.pk, "points": points, "reason": reason, "request": fingerprint},
    )

    def work():
        account, balance = _lock_for_spending(member, points)
        op = _operation(request, OP.REDEEM, member, points, reason=reason)
        transfer = _transfer(op, 0, TK.REDEEM, account, system_account(Account.Kind.REDEEM), points)
        _consume_fefo(account, transfer, points)
        _add_to_balance(balance, debits_posted=points)
        return 201, _body(op, balance)

    return _run(request, work)


def points_redeem_reverse(
    *,
    redemption_id,
    points: int,
    actor: Actor,
    idempotency_key: str,
    member: Member | None = None,
    fingerprint: dict | None = None,
) -> Outcome:
    """Refund a redemption (capture or one-step redeem): restore the exact lots it
    spent, never more in total than it took."""
    if points <= 0:
        raise ValueError("points must be positive")
    request = _Request(
        actor,
        idempotency_key,
        {"op": "reverse_redeem", "redemption": str(redemption_id), "points": points, "request": fingerprint},
    )

    def work():
        pk = _uuid_or_none(redemption_id)
        redemption = LedgerOperation.objects.filter(pk=pk, kind__in=[OP.CAPTURE, OP.REDEEM]).first() if pk else None
        if redemption is None or (member is not None and redemption.member_id != member.pk):
            raise refusals.RedemptionNotFound(redemption_id=str(redemption_id))
        account, balance = _lock_member(redemption.member)
        spent = redemption.transfers.get(kind__in=[TK.POST, TK.REDEEM])
        refunded = spent.reversals.aggregate(total=Sum("amount"))["total"] or 0
        if refunded + points > spent.amount:
            raise refusals.RefundExceedsRedemption(redeemed=spent.amount, already_refunded=refunded)
        op = _operation(request, OP.REVERSE_REDEEM, redemption.member, points, related=redemption)
        transfer = _transfer(op, 0, TK.REVERSE_REDEEM, spent.credit_account, account, points, reverses=spent)
        # The points the redemption spent: the hold's movements net of its capture's.
        taken_by = (
            [spent]
            + ([spent.pending] if spent.pending is not None else [])
            + list(spent.reversals.exclude(pk=transfer.pk))
        )
        _restore(transfer, taken_by, points)
        _add_to_balance(balance, credits_posted=points)
        return 201, _body(op, balance, redemption_id=str(redemption.id))

    return _run(request, work)


def points_expire_account(*, account_id: int, as_of: date) -> Outcome:
    """Expire what is left of one member's lots due on or before ``as_of``, in one
    short transaction: one journal leg, one movement per lot.

    The key names the account and the exact state of its due lots, so a re-run after
    a crash replays instead of expiring twice, while points that came back into a
    due lot later (a void) expire on the next run.
    """
    due = list(
        PointsLot.objects.filter(account_id=account_id, expires_on__lte=as_of, remaining__gt=0)
        .order_by("expires_on", "id")
        .values_list("pk", "remaining")
    )
    state = hashlib.sha256(json.dumps(due).encode()).hexdigest()[:32]
    request = _Request(
        Actor(job="points_expiry"), f"expire:{account_id}:{state}", {"op": "expire", "account": account_id, "lots": due}
    )

    def work():
        account = Account.objects.select_related("member").get(pk=account_id)
        balance = _lock_balance(account)
        lots = list(  # re-read under the lock: a redemption may have spent some meanwhile
            PointsLot.objects.filter(account=account, expires_on__lte=as_of, remaining__gt=0).order_by(
                "expires_on", "id"
            )
        )
        total = sum(lot.remaining for lot in lots)
        if total == 0:
            return 200, {"account": account_id, "expired": 0}
        assert account.member is not None  # only members' accounts hold lots
        op = _operation(request, OP.EXPIRE, account.member, total)
        transfer = _transfer(op, 0, TK.EXPIRE, account, system_account(Account.Kind.EXPIRE), total)
        PointsLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(remaining=0)
        LotMovement.objects.bulk_create(LotMovement(transfer=transfer, lot=lot, delta=-lot.remaining) for lot in lots)
        _add_to_balance(balance, debits_posted=total)
        return 201, {"account": account_id, "expired": total, "lots": len(lots), "operation_id": str(op.id)}

    return _run(request, work)


def points_expire_due(
    *, as_of: date | None = None, batch: int = 500, progress: Callable[[int], None] | None = None
) -> int:
    """Expire every lot due on or before ``as_of``: one short transaction per member,
    members read in batches (memory stays flat however many lots there are).
    Idempotent and restartable. Returns the points expired by this run."""
    as_of = as_of or timezone.localdate()
    expired, last = 0, 0
    while True:
        accounts = list(
            PointsLot.objects.filter(expires_on__lte=as_of, remaining__gt=0, account_id__gt=last)
            .order_by("account_id")
            .values_list("account_id", flat=True)
            .distinct()[:batch]
        )
        if not accounts:
            return expired
        for account_id in accounts:
            outcome = points_expire_account(account_id=account_id, as_of=as_of)
            if outcome.ok and not outcome.replayed:
                expired += outcome.body.get("expired", 0)
        last = accounts[-1]
        if progress:
            progress(len(accounts))


def points_adjust_post(*, member: Member, points: int, reason: str, adjustment_ref: str, actor: Actor) -> Outcome:
    """Post an approved manual adjustment (credit if ``points`` > 0, else debit),
    exactly once per adjustment reference. A debit never overdraws."""
    if points == 0:
        raise ValueError("an adjustment moves points")
    # One scope for every adjustment: whoever posts it, a request posts once.
    request = _Request(
        actor, str(adjustment_ref), {"op": "adjust", "member": member.pk, "points": points}, scope_override="adjustment"
    )
    amount = abs(points)

    def work():
        account, balance = _lock_member(member)
        if points < 0 and balance.available < amount:
            raise refusals.InsufficientPoints(available=balance.available, requested=amount)
        if points > 0:
            return 201, _credit(
                request, OP.ADJUST, member, amount, account, balance,
                leg=TK.ADJUST, expires_on=_expiry_date(timezone.now()), reason=reason,
                respond=lambda op, lot: _body(op, balance, adjustment_ref=adjustment_ref),
            )  # fmt: skip
        op = _operation(request, OP.ADJUST, member, amount, reason=reason)
        transfer = _transfer(op, 0, TK.ADJUST, account, system_account(Account.Kind.ADJUST), amount)
        _consume_fefo(account, transfer, amount)
        _add_to_balance(balance, debits_posted=amount)
        return 201, _body(op, balance, adjustment_ref=adjustment_ref)

    return _run(request, work)
