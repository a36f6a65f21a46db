"""Read-side views of the ledger: a member's balance, history and points by expiry,
holds, the saved outcome of an idempotency key, snapshots and the roll-forward between them.

Other apps read the ledger's tables only through this module (issue 12, "Read
boundary"; ``tests/loyalty/test_read_boundary.py`` enforces it): they never import
the ledger's models nor name its tables in SQL. Each selector returns plain data or a
queryset.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.db.models.query import RawQuerySet
from django.utils import timezone

from loyalty.kernel.scoping import scope_to_stores
from loyalty.ledger.models import (
    POSTED_KINDS,
    Account,
    IdempotencyKey,
    LedgerOperation,
    LedgerRefusalEvent,
    MemberBalance,
    PointsLot,
    Transfer,
)

if TYPE_CHECKING:
    from members.models import Member
    from staffauth.models import StaffUser


def member_balance(member: Member) -> MemberBalance | None:
    """The member's balance counters; None for a member who never had points (no account yet)."""
    return MemberBalance.objects.filter(account__member=member).first()


def member_points_pending(*, member: Member) -> int:
    """Points earned but kept pending through the return window (not yet released),
    less what returns took from those earns meanwhile; never negative. Two queries at
    most (one when nothing is pending)."""
    pending = LedgerOperation.objects.filter(
        member=member, kind=LedgerOperation.Kind.EARN, pending_until__isnull=False
    ).exclude(followups__kind=LedgerOperation.Kind.RELEASE)
    earned = pending.aggregate(t=Sum("points"))["t"] or 0
    if not earned:
        return 0
    returned = (
        LedgerOperation.objects.filter(
            member=member, kind=LedgerOperation.Kind.REVERSE_EARN, related__in=pending.values("pk")
        ).aggregate(t=Sum("points"))["t"]
        or 0
    )
    return max(earned - returned, 0)


def balance_figures(*, member: Member | None, balance: MemberBalance | None) -> dict[str, int]:
    """The one balance every API answers, in the ledger's words (the till's and the
    member's agree field by field):

    - ``available``: points the member can spend now;
    - ``held``: points held by redemptions in progress (``MemberBalance.debits_pending``:
      a hold not yet captured, voided or lapsed);
    - ``pending``: points earned but not yet available, inside the return window
      (``member_points_pending``).

    ``balance`` as read (under the member's lock on a write); None counts as zero."""
    return {
        "available": balance.available if balance else 0,
        "held": balance.debits_pending if balance else 0,
        "pending": member_points_pending(member=member) if member is not None else 0,
    }


def member_balance_figures(member: Member) -> dict[str, int]:
    """``balance_figures`` of the member's balance now (zeros before their first points)."""
    return balance_figures(member=member, balance=member_balance(member))


def member_points_expiring(*, member: Member, on_or_before: date) -> list[dict[str, Any]]:
    """The member's points left in lots expiring on or before ``on_or_before``, by month
    of expiry, earliest first: ``[{"month": date (the 1st), "points": int}, ...]``. One query."""
    rows = (
        PointsLot.objects.filter(account__member=member, remaining__gt=0, expires_on__lte=on_or_before)
        .annotate(month=TruncMonth("expires_on"))
        .values("month")
        .annotate(points=Sum("remaining"))
        .order_by("month")
    )
    return [{"month": row["month"], "points": row["points"]} for row in rows]


def member_operations(*, member: Member) -> QuerySet[LedgerOperation]:
    """All the member's own operations (the member API's history), newest first, with
    their ``store`` loaded and ``lot_expires_on``: when the points the operation credited
    expire (the earliest of its lots), None for an operation that credited none (a
    pending earn, a hold, ...). One query however it is sliced."""
    lot_expiry = (
        PointsLot.objects.filter(source__operation=OuterRef("pk")).order_by("expires_on").values("expires_on")[:1]
    )
    return (
        LedgerOperation.objects.filter(member=member)
        .select_related("store")
        .annotate(lot_expires_on=Subquery(lot_expiry))
        .order_by("-created_at", "-id")
    )


def member_operations_visible(member: Member, user: StaffUser | None) -> QuerySet[LedgerOperation]:
    """The member's ledger operations that ``user`` may see, newest first.

    Members are programme-wide, their operations are not: a store-scoped user sees only
    the operations made at their stores (the journal admin's rule), never another
    store's or headquarters' (no store). ``user`` None sees nothing."""
    operations = LedgerOperation.objects.filter(member=member).select_related("store")
    return scope_to_stores(operations, user).order_by("-created_at", "-id")


def member_side_points() -> Case:
    """A journal leg's effect on its member's *available* points (a Transfer expression):
    a hold takes them (−), a void gives them back (+), a capture gives back what it did
    not take (+ held − captured); any other leg into the member's account is +, out of
    it −, and a leg between system accounts (a return's shortfall) moves none."""
    member = Account.Kind.MEMBER
    return Case(
        When(kind=Transfer.Kind.POST, then=F("pending__amount") - F("amount")),
        When(kind=Transfer.Kind.VOID, then=F("amount")),
        When(credit_account__kind=member, then=F("amount")),
        When(debit_account__kind=member, then=-F("amount")),
        default=Value(0),
        output_field=BigIntegerField(),
    )


def with_member_points(queryset: QuerySet[LedgerOperation]) -> QuerySet[LedgerOperation]:
    """Operations annotated with ``member_points``: their signed effect on the member's
    available points (None: no leg yet, a pending earn). One subquery, no per-row query."""
    legs = (
        Transfer.objects.filter(operation=OuterRef("pk"))
        .order_by()
        .values("operation")
        .annotate(total=Sum(member_side_points()))
        .values("total")
    )
    return queryset.annotate(member_points=Subquery(legs, output_field=BigIntegerField()))


def member_history_visible(member: Member, user: StaffUser | None) -> QuerySet[LedgerOperation]:
    """``member_operations_visible`` (the viewer's stores only, newest first) with what
    the staff page names: the store, the acting staff user and till, and two signed
    figures from the member's point of view:

    - ``member_points``: the change to the member's available points, summed over the
      operation's journal legs (``+120`` an earn, ``−40`` a hold or a redemption, ``+40``
      a void); None for an operation with no leg (a pending earn, a return of one);
    - ``pending_points``: for those, the change to the points pending in the return
      window (``+120`` a pending earn, ``−30`` a return from it); else None.

    One query however it is sliced (the figures are subqueries, no N+1)."""
    kind = LedgerOperation.Kind
    return (
        with_member_points(member_operations_visible(member, user))
        .select_related("actor_staff", "actor_till__store")
        .annotate(
            pending_points=Case(
                When(Q(member_points__isnull=True, kind=kind.EARN), then=F("points")),
                When(Q(member_points__isnull=True, kind=kind.REVERSE_EARN), then=-F("points")),
                default=Value(None),
                output_field=BigIntegerField(),
            )
        )
    )


def member_lots_visible(member: Member, user: StaffUser | None) -> QuerySet[PointsLot]:
    """The member's lots with points left that ``user`` may see, first to expire first:
    a store-scoped user sees those earned at their stores only (a lot's store is the
    store of the operation that credited it)."""
    lots = PointsLot.objects.filter(account__member=member, remaining__gt=0).select_related("source__operation__store")
    return scope_to_stores(lots, user, store_field="source__operation__store").order_by("expires_on", "id")


SETTLING_KINDS = (LedgerOperation.Kind.CAPTURE, LedgerOperation.Kind.VOID)


def operations() -> QuerySet[LedgerOperation]:
    """Every ledger operation, for a caller outside the ledger that names one by its id
    (a fraud alert's facts); filter it, never write through it."""
    return LedgerOperation.objects.all()


def hold_is_settled(*, hold_id: uuid.UUID) -> bool:
    """Whether the hold ``hold_id`` was captured or voided (a hold settles once). One query."""
    return LedgerOperation.objects.filter(related_id=hold_id, kind__in=SETTLING_KINDS).exists()


def hold_exists_at_store(*, hold_id: uuid.UUID, store_id: int) -> bool:
    """Whether ``hold_id`` is a redemption hold taken at store ``store_id``. One query."""
    return LedgerOperation.objects.filter(pk=hold_id, kind=LedgerOperation.Kind.HOLD, store_id=store_id).exists()


def holds_settled() -> QuerySet[LedgerOperation, Any]:
    """The ids of every settled (captured or voided) hold, as a subquery to filter by
    (``.exclude(hold_operation__in=holds_settled())``): no query of its own."""
    return LedgerOperation.objects.filter(kind__in=SETTLING_KINDS, related__isnull=False).values("related_id")


@dataclass(frozen=True)
class SavedOutcome:
    """What a ledger write answered under an idempotency key, as saved (a replay of the
    key answers the same): the HTTP status and the JSON body."""

    status_code: int
    body: dict[str, Any]

    @property
    def operation_id(self) -> uuid.UUID | None:
        """The ledger operation the write made; None if it made none (a refusal)."""
        operation_id = self.body.get("operation_id")
        return uuid.UUID(operation_id) if operation_id else None


def saved_outcome(*, scope: str, key: str) -> SavedOutcome | None:
    """The outcome saved under the idempotency key (``scope``, ``key``), None if the key
    was never used (``scope`` is the acting caller's, ``loyalty.ledger.services.core.Actor.scope``).
    The saved body's shape is the ledger's: read it through ``SavedOutcome``. One query."""
    row = IdempotencyKey.objects.filter(scope=scope, key=key).values_list("status_code", "response").first()
    return SavedOutcome(status_code=row[0], body=row[1] or {}) if row is not None else None


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


# --- the staff workplace (figures and the person's own activity) ------------------------------

# What "points issued" and "points redeemed" count on a staff member's landing page.
ISSUED_KINDS = (LedgerOperation.Kind.EARN,)
REDEEMED_KINDS = (LedgerOperation.Kind.REDEEM, LedgerOperation.Kind.CAPTURE)


def points_daily_visible(*, user: StaffUser | None, since: datetime) -> list[dict[str, Any]]:
    """Points issued and redeemed per day (in the programme's time zone) since ``since``
    at the stores ``user`` may see (``loyalty.kernel.scoping``: a store-scoped user never
    counts another store's or headquarters' operations):
    ``[{"day": date, "kind": str, "points": int, "count": int}, ...]``. One query, on the
    ``created_at`` index."""
    operations = LedgerOperation.objects.filter(created_at__gte=since, kind__in=(*ISSUED_KINDS, *REDEEMED_KINDS))
    rows = (
        scope_to_stores(operations, user)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "kind")
        .annotate(points=Sum("points"), count=Count("pk"))
        .order_by("day", "kind")
    )
    return list(rows)


def operations_by_staff(*, staff: StaffUser, limit: int = 10) -> QuerySet[LedgerOperation]:
    """The operations ``staff`` made (``actor_staff``), newest first, with member and
    store loaded: the person's own recent activity. One query for the slice."""
    return (
        LedgerOperation.objects.filter(actor_staff=staff)
        .select_related("member", "store")
        .order_by("-created_at", "-id")[:limit]
    )


# --- Till data and refusals, for the fraud detectors (FRAUD.md rows 1, 3 and 11-19) ----------
#
# Windows are half-open, ``start <= created_at < end``. Each selector is one query (set-based;
# nothing is looped over in Python): filter, aggregate or iterate its rows. Ids, codes,
# counts and keyed hashes only: nothing the till typed, no personal data.

OP = LedgerOperation.Kind

PURCHASE_FIELDS = (
    "id", "member_id", "store_id", "actor_till_id", "amount_minor", "points", "item_lines", "tender_hash", "created_at",
)  # fmt: skip
RETURN_FIELDS = (
    *PURCHASE_FIELDS, "receipt_presented", "needs_review",
    "purchase_id", "purchase_store_id", "purchase_amount_minor", "purchase_created_at", "tender_mismatch",
)  # fmt: skip


def refusals_in_window(
    *, start: datetime, end: datetime, codes: list[str] | None = None, kind: str | None = None
) -> QuerySet[LedgerRefusalEvent]:
    """Refused earns and returns (``LedgerRefusalEvent``: kind, code, member, till,
    store, staff, numeric facts, time) in the window, optionally of some ``codes``
    (e.g. ``["purchase_not_found"]`` for returns without a recorded purchase) or of one
    ``kind`` (``"earn"`` or ``"reverse_earn"``)."""
    refusals = LedgerRefusalEvent.objects.filter(created_at__gte=start, created_at__lt=end)
    if codes is not None:
        refusals = refusals.filter(code__in=codes)
    if kind is not None:
        refusals = refusals.filter(kind=kind)
    return refusals


def _day() -> TruncDate:
    # The programme's day (as ``policy._day_start`` counts the velocity limits' days).
    return TruncDate("created_at", tzinfo=timezone.get_default_timezone())


def refusal_counts_by_till_day(
    *, start: datetime, end: datetime, codes: list[str] | None = None
) -> QuerySet[LedgerRefusalEvent, dict[str, Any]]:
    """Rows ``{actor_till_id, store_id, day, code, refusals}``: refusals per till, local
    day and code in the window (till-made refusals only)."""
    return (
        refusals_in_window(start=start, end=end, codes=codes)
        .filter(actor_till__isnull=False)
        .annotate(day=_day())
        .values("actor_till_id", "store_id", "day", "code")
        .annotate(refusals=Count("id"))
        .order_by("day", "actor_till_id", "code")
    )


def refusal_counts_by_member_day(
    *, start: datetime, end: datetime, codes: list[str] | None = None
) -> QuerySet[LedgerRefusalEvent, dict[str, Any]]:
    """Rows ``{member_id, day, code, refusals}``: refusals per member, local day and code
    in the window (e.g. days a member hit the earn cap: ``daily_earn_transactions_exceeded``,
    ``daily_earn_points_exceeded``)."""
    return (
        refusals_in_window(start=start, end=end, codes=codes)
        .filter(member__isnull=False)
        .annotate(day=_day())
        .values("member_id", "day", "code")
        .annotate(refusals=Count("id"))
        .order_by("day", "member_id", "code")
    )


def purchases_with_till_data(*, start: datetime, end: datetime) -> QuerySet[LedgerOperation, dict[str, Any]]:
    """Purchases (earns) in the window as rows of ``PURCHASE_FIELDS``: ids, amount,
    points, ``item_lines`` (``[{sku_hash, qty, amount_minor}]`` or None) and
    ``tender_hash`` ("" when the till sent none)."""
    rows: QuerySet[LedgerOperation, dict[str, Any]] = (
        LedgerOperation.objects.filter(kind=OP.EARN, created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "id")
        .values(*PURCHASE_FIELDS)
    )
    return rows


def returns_with_till_data(*, start: datetime, end: datetime) -> QuerySet[LedgerOperation, dict[str, Any]]:
    """Returns in the window as rows of ``RETURN_FIELDS``: the return's own till data
    (``amount_minor`` when given, ``item_lines``, ``tender_hash``, ``receipt_presented``,
    ``needs_review``) beside its purchase's id, store, amount and time, and
    ``tender_mismatch``: both tenders given and different (FRAUD.md row 15; such a
    return exists only under ``LOYALTY_RETURN_TENDER_MISMATCH = "allow_and_flag"``)."""
    mismatch = Case(
        When(
            ~Q(tender_hash="") & ~Q(related__tender_hash="") & ~Q(tender_hash=F("related__tender_hash")),
            then=Value(True),
        ),
        default=Value(False),
        output_field=BooleanField(),
    )
    return (
        LedgerOperation.objects.filter(kind=OP.REVERSE_EARN, created_at__gte=start, created_at__lt=end)
        .annotate(
            purchase_id=F("related_id"),
            purchase_store_id=F("related__store_id"),
            purchase_amount_minor=F("related__amount_minor"),
            purchase_created_at=F("related__created_at"),
            tender_mismatch=mismatch,
        )
        .order_by("created_at", "id")
        .values(*RETURN_FIELDS)
    )


_ITEM_LINES_SQL = {
    "postgresql": (
        "line ->> 'sku_hash'", "(line ->> 'qty')::integer", "(line ->> 'amount_minor')::bigint",
        "CROSS JOIN LATERAL jsonb_array_elements(o.item_lines) AS line",
    ),
    "sqlite": (
        "json_extract(line.value, '$.sku_hash')", "json_extract(line.value, '$.qty')",
        "json_extract(line.value, '$.amount_minor')", ", json_each(o.item_lines) AS line",
    ),
}  # fmt: skip


def item_lines_in_window(*, start: datetime, end: datetime) -> RawQuerySet[LedgerOperation]:
    """Every item line of the purchases and returns in the window, one row each (for the
    buy-return-rebuy cycles, FRAUD.md row 12): operations with ``id``, ``kind``,
    ``member_id``, ``store_id``, ``related_id`` (a return's purchase), ``created_at``
    and the line's ``sku_hash``, ``qty`` and ``line_amount_minor``. One query."""
    sku, qty, amount, lines = _ITEM_LINES_SQL[connection.vendor]
    sql = (
        f"SELECT o.id, o.kind, o.member_id, o.store_id, o.related_id, o.created_at, "  # noqa: S608 (constants only)
        f"{sku} AS sku_hash, {qty} AS qty, {amount} AS line_amount_minor "
        f"FROM {LedgerOperation._meta.db_table} o {lines} "
        "WHERE o.kind IN (%s, %s) AND o.item_lines IS NOT NULL AND o.created_at >= %s AND o.created_at < %s "
        "ORDER BY o.created_at, o.id"
    )
    return LedgerOperation.objects.raw(sql, [OP.EARN, OP.REVERSE_EARN, start, end])


# --- batch fraud detectors (FRAUD.md rows 2-7): set-based reads, one query each -------------

REDEMPTION_KINDS = (OP.HOLD, OP.REDEEM)


def member_day_figures(*, start: datetime, end: datetime) -> QuerySet[LedgerOperation, dict[str, Any]]:
    """Rows ``{member_id, day, earns, earned_points, base_points, returns, redemptions,
    redeemed_points}``: per member and programme-local day (``policy._day_start``'s days)
    in the window, earns and their points, their standard points (the purchase amounts
    at the programme's base rate, before tier multipliers: ``points_for_purchase`` at tier
    100 %; an earn without an amount counts its points), returns, redemptions (holds and
    one-step redemptions) and their points. One GROUP BY query; its SQL can feed an
    ``INSERT ... SELECT``."""
    rate = settings.LOYALTY_EARN_POINTS_PER_UNIT
    standard = Coalesce(F("amount_minor") / 100 * rate, F("points"), output_field=BigIntegerField())
    earn, ret, redemption = Q(kind=OP.EARN), Q(kind=OP.REVERSE_EARN), Q(kind__in=REDEMPTION_KINDS)
    return (
        LedgerOperation.objects.filter(created_at__gte=start, created_at__lt=end)
        .filter(earn | ret | redemption)
        .annotate(day=_day())
        .values("member_id", "day")
        .annotate(
            earns=Count("id", filter=earn),
            earned_points=Coalesce(Sum("points", filter=earn), 0, output_field=BigIntegerField()),
            base_points=Coalesce(Sum(standard, filter=earn), 0, output_field=BigIntegerField()),
            returns=Count("id", filter=ret),
            redemptions=Count("id", filter=redemption),
            redeemed_points=Coalesce(Sum("points", filter=redemption), 0, output_field=BigIntegerField()),
        )
        .order_by()
    )


def redemptions_with_history(
    *, start: datetime, end: datetime, history: timedelta
) -> QuerySet[LedgerOperation, dict[str, Any]]:
    """Redemptions (holds, one-step redemptions) made in the window, as rows ``{id,
    member_id, store_id, points, created_at, prior_max, prior_count}``: the member's
    largest redemption and their number of redemptions in ``history`` before each (None
    and 0 for a first ever redemption in that span). One query (correlated subqueries
    on the member's (member, created_at) index)."""
    prior = LedgerOperation.objects.filter(
        member_id=OuterRef("member_id"),
        kind__in=REDEMPTION_KINDS,
        created_at__lt=OuterRef("created_at"),
        created_at__gte=OuterRef("created_at") - history,
    ).order_by()
    return (
        LedgerOperation.objects.filter(kind__in=REDEMPTION_KINDS, created_at__gte=start, created_at__lt=end)
        .annotate(
            prior_max=Subquery(prior.values("member_id").annotate(m=Max("points")).values("m")[:1]),
            prior_count=Coalesce(
                Subquery(prior.values("member_id").annotate(c=Count("id")).values("c")[:1]),
                0,
                output_field=BigIntegerField(),
            ),
        )  # fmt: skip
        .order_by("created_at", "id")
        .values("id", "member_id", "store_id", "points", "created_at", "prior_max", "prior_count")
    )


def redemption_counts_by_bucket(
    *, start: datetime, end: datetime, minutes: int, weekday: int | None = None, hour: int | None = None
) -> list[tuple[int | None, datetime, int]]:
    """``(store_id, bucket_start, redemptions)`` per store (None: no store) and
    ``minutes``-long bucket (aligned on the epoch) in the window; only buckets on that
    ISO ``weekday`` (1 Monday) and ``hour`` of the programme's time zone when given
    (the weekday-hour baseline of FRAUD.md row 5). Empty buckets are not returned. One
    GROUP BY query (PostgreSQL)."""
    seconds = minutes * 60
    zone = timezone.get_default_timezone_name()
    sql = (
        "SELECT store_id, to_timestamp(floor(extract(epoch FROM created_at) / %s) * %s) AS bucket, COUNT(*) "  # noqa: S608 (constants only)
        f"FROM {LedgerOperation._meta.db_table} "
        "WHERE kind IN (%s, %s) AND created_at >= %s AND created_at < %s"
    )
    params: list[Any] = [seconds, seconds, *REDEMPTION_KINDS, start, end]
    if weekday is not None:
        sql += " AND extract(isodow FROM created_at AT TIME ZONE %s) = %s"
        params += [zone, weekday]
    if hour is not None:
        sql += " AND extract(hour FROM created_at AT TIME ZONE %s) = %s"
        params += [zone, hour]
    sql += " GROUP BY 1, 2 ORDER BY 2, 1"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[0], row[1], int(row[2])) for row in cursor.fetchall()]


def store_points_by_day(*, start: datetime, end: datetime) -> QuerySet[LedgerOperation, dict[str, Any]]:
    """Rows ``{store_id, day, points, earns}``: points earned (issued) per store and
    programme-local day in the window (earns without a store left out)."""
    return (
        LedgerOperation.objects.filter(kind=OP.EARN, store__isnull=False, created_at__gte=start, created_at__lt=end)
        .annotate(day=_day())
        .values("store_id", "day")
        .annotate(points=Sum("points"), earns=Count("id"))
        .order_by("day", "store_id")
    )


def store_issue_top_actors(
    *, store_id: int, start: datetime, end: datetime, limit: int = 3
) -> dict[str, list[list[int]]]:
    """The tills and staff users that issued the most points at the store in the window:
    ``{"tills": [[till_id, points], ...], "staff": [[staff_id, points], ...]}``, largest
    first, at most ``limit`` each. Two queries."""
    earns = LedgerOperation.objects.filter(
        kind=OP.EARN, store_id=store_id, created_at__gte=start, created_at__lt=end
    ).order_by()
    out: dict[str, list[list[int]]] = {}
    for key, column in (("tills", "actor_till_id"), ("staff", "actor_staff_id")):
        rows = (
            earns.filter(**{f"{column}__isnull": False})
            .values(column)
            .annotate(p=Sum("points"))
            .order_by("-p", column)[:limit]
        )
        out[key] = [[row[column], int(row["p"])] for row in rows]
    return out


def store_earn_counts(*, start: datetime, end: datetime) -> dict[int, int]:
    """Earns (purchases) per store in the window: ``{store_id: count}``. One query."""
    rows = (
        LedgerOperation.objects.filter(kind=OP.EARN, store__isnull=False, created_at__gte=start, created_at__lt=end)
        .values("store_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["store_id"]: row["n"] for row in rows}


# --- Return detectors (FRAUD.md rows 11-19) ----------------------------------------------------


def return_rates_by_member(
    *, start: datetime, end: datetime, min_purchases: int
) -> QuerySet[LedgerOperation, dict[str, Any]]:
    """Rows ``{member_id, purchases, purchased_minor, returns, returned_minor,
    last_return_id}`` for members with at least ``min_purchases`` purchases in the window
    (FRAUD.md row 11): purchased value = the purchases' amounts; returned value = each
    return's amount, or for a return given in points the same share of its purchase's
    amount. One query (GROUP BY member)."""
    returned_value = Coalesce(
        F("amount_minor"),
        F("related__amount_minor") * F("points") / F("related__points"),
        Value(0),
        output_field=BigIntegerField(),
    )
    is_return = Q(kind=OP.REVERSE_EARN)
    last_return = (
        LedgerOperation.objects.filter(
            member_id=OuterRef("member_id"), kind=OP.REVERSE_EARN, created_at__gte=start, created_at__lt=end
        )
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    return (
        LedgerOperation.objects.filter(kind__in=[OP.EARN, OP.REVERSE_EARN], created_at__gte=start, created_at__lt=end)
        .values("member_id")
        .annotate(
            purchases=Count("id", filter=Q(kind=OP.EARN)),
            purchased_minor=Coalesce(Sum("amount_minor", filter=Q(kind=OP.EARN)), Value(0)),
            returns=Count("id", filter=is_return),
            returned_minor=Coalesce(Sum(returned_value, filter=is_return), Value(0)),
        )
        .filter(purchases__gte=min_purchases, returns__gt=0)
        .annotate(last_return_id=Subquery(last_return))
        .order_by("member_id")
    )


_RETURN_CYCLES_SQL = """
WITH lines AS (
    SELECT o.id, o.kind, o.member_id, o.store_id, o.created_at, line ->> 'sku_hash' AS sku_hash
    FROM {table} o CROSS JOIN LATERAL jsonb_array_elements(o.item_lines) AS line
    WHERE o.kind IN ('earn', 'reverse_earn') AND o.item_lines IS NOT NULL
      AND o.created_at >= %(start)s AND o.created_at < %(rebuy_end)s
),
cycles AS (
    SELECT DISTINCT r.member_id, r.id AS return_id, r.created_at AS returned_at, r.sku_hash,
           r.store_id AS return_store_id, p.store_id AS rebuy_store_id
    FROM lines r JOIN lines p
      ON p.member_id = r.member_id AND p.sku_hash = r.sku_hash AND p.kind = 'earn'
     AND p.store_id IS DISTINCT FROM r.store_id
     AND p.created_at > r.created_at AND p.created_at <= r.created_at + %(rebuy)s
    WHERE r.kind = 'reverse_earn' AND r.created_at < %(end)s AND p.created_at < %(rebuy_end)s
)
SELECT member_id,
       COUNT(DISTINCT (return_id, sku_hash)) AS cycles,
       (ARRAY_AGG(return_id::text ORDER BY returned_at DESC, return_id DESC))[1] AS last_return_id,
       (ARRAY_AGG(DISTINCT sku_hash))[1:5] AS sku_hashes,
       ARRAY_AGG(DISTINCT return_store_id) || ARRAY_AGG(DISTINCT rebuy_store_id) AS store_ids
FROM cycles
GROUP BY member_id
HAVING COUNT(DISTINCT (return_id, sku_hash)) >= %(min_cycles)s
ORDER BY member_id
"""


def return_cycles_by_member(
    *, start: datetime, end: datetime, rebuy_days: int, min_cycles: int
) -> list[dict[str, Any]]:
    """Buy-return-rebuy cycles (FRAUD.md row 12), one query (PostgreSQL): a cycle is an
    item (``sku_hash``) of a return in [start, end) bought again by the same member at
    another store within ``rebuy_days`` after the return (and before ``end``). Rows
    ``{member_id, cycles, last_return_id, sku_hashes (up to 5), store_ids}`` for members
    with at least ``min_cycles``."""
    sql = _RETURN_CYCLES_SQL.format(table=LedgerOperation._meta.db_table)
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "rebuy_end": end,
        "rebuy": timedelta(days=rebuy_days),
        "min_cycles": min_cycles,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["store_ids"] = sorted({s for s in row["store_ids"] if s is not None})
    return rows


def returns_with_outcomes(*, start: datetime, end: datetime) -> QuerySet[LedgerOperation, dict[str, Any]]:
    """``returns_with_till_data`` plus ``purchase_points`` and ``shortfall_points``: the
    points the return could not take back (already spent, booked to RETURN_SHORTFALL and
    flagged for review; FRAUD.md row 18). One query."""
    shortfall = (
        Transfer.objects.filter(operation_id=OuterRef("id"), kind=Transfer.Kind.RETURN_SHORTFALL)
        .values("operation_id")
        .annotate(total=Sum("amount"))
        .values("total")[:1]
    )
    return returns_with_till_data(start=start, end=end).annotate(
        purchase_points=F("related__points"),
        shortfall_points=Coalesce(Subquery(shortfall, output_field=BigIntegerField()), Value(0)),
    )


def members_without_points_or_operations(*, since: datetime) -> QuerySet[Member]:
    """Members with no ledger operation since ``since`` and nothing on their balance (no
    points available, held or pending): the ledger's side of "inactive" for retention
    (``compliance.inactive``). A member who never had points counts. One query."""
    from django.db.models import Exists

    from members.models import Member

    recent = LedgerOperation.objects.filter(member=OuterRef("pk"), created_at__gte=since)
    points_left = MemberBalance.objects.filter(account__member=OuterRef("pk")).exclude(
        credits_posted=F("debits_posted"), debits_pending=0
    )
    return Member.objects.exclude(Exists(recent)).exclude(Exists(points_left))
