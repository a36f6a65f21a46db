"""The ledger's operations as callers ask for them: keyed, retried, answered.

Each runs one service of ``loyalty.ledger.services`` through
``loyalty.ledger.idempotency`` under the caller's idempotency key, and answers the
key's ``Outcome``: the operation applied, refused, or replayed from the key.
``fingerprint`` (optional) is the caller's whole validated request: it joins the
payload hash, so the same key with any other request body is refused even where the
operation's own arguments match. The scheduled jobs (lapsed holds, pending earns,
expiry) run one keyed operation per hold, earn or account.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any

from django.utils import timezone

from loyalty.ledger import idempotency
from loyalty.ledger.idempotency import Outcome, Request
from loyalty.ledger.models import LedgerOperation, LedgerRefusalEvent, PointsLot
from loyalty.ledger.services import adjusting, earning, expiry, holds, redeeming
from loyalty.ledger.services.core import OP, Actor, NothingToWrite
from loyalty.ledger.tilldata import NO_TILL_DATA, TillData
from members.models import Member

# What callers need beside the operations: who acts, and what comes back.
__all__ = [
    "Actor",
    "Outcome",
    "points_adjust_post",
    "points_capture",
    "points_earn",
    "points_earn_purchase",
    "points_earn_reverse",
    "points_expire_account",
    "points_expire_due",
    "points_hold",
    "points_holds_lapse",
    "points_pending_release",
    "points_redeem",
    "points_redeem_reverse",
    "points_void",
]


def _with_till_data(payload: dict[str, Any], till: TillData) -> dict[str, Any]:
    """The idempotency payload with the till data (hashed) when there is any: the same
    key with other item lines or another tender is another request. Without till data
    the payload is as it always was, so keys saved before keep matching their retries."""
    return {**payload, "till": till.operation_fields()} if till != NO_TILL_DATA else payload


def _refusal_record(outcome: Outcome, *, kind: str, member: Member, actor: Actor) -> Outcome:
    """Record a refused earn or return (``LedgerRefusalEvent``) for the fraud detectors,
    once: for the refusal first answered, never for its replays.

    Runs once the ledger's transaction has ended (a refusal commits: it is saved under the
    key like a success, LEDGER.md §2), outside it, as a statement of its own (autocommit,
    as the API runs; a caller that wraps the call in a transaction of its own takes the
    record with it). So the record never goes down with the ledger's work, never holds
    the member's lock, and costs the accepted earn nothing. The facts kept are the
    refusal's numbers only (counts and limits): a receipt reference or anything else the
    till typed stays out. A crash between the two loses the record, never the ledger's
    answer (the record is a signal, not the ledger)."""
    code = outcome.error_code
    if outcome.ok or outcome.replayed or code is None or code == "idempotency_key_reused":
        return outcome
    detail = outcome.body.get("error", {}).get("detail") or {}
    facts = {k: v for k, v in detail.items() if isinstance(v, int) and not isinstance(v, bool)}
    LedgerRefusalEvent.objects.create(
        kind=kind,
        code=code,
        member=member,
        actor_till=actor.till,
        actor_staff=actor.staff,
        store_id=actor.operation_fields()["store_id"],
        facts=facts,
    )
    return outcome


def points_earn(
    *,
    member: Member,
    points: int,
    receipt_ref: str,
    actor: Actor,
    idempotency_key: str,
    effective_at: datetime | None = None,
    amount_minor: int | None = None,
    fingerprint: dict[str, Any] | None = None,
    till: TillData = NO_TILL_DATA,
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
    request = Request(
        actor,
        idempotency_key,
        _with_till_data(
            {"op": "earn", "member": member.pk, "points": points, "receipt": receipt_ref, "request": fingerprint}, till
        ),
    )
    work = partial(
        earning.earn,
        member=member,
        points_of=lambda: points,
        receipt_ref=receipt_ref,
        effective_at=effective_at,
        amount_minor=amount_minor,
        till=till,
    )
    return _refusal_record(idempotency.run(request, work), kind=OP.EARN, member=member, actor=actor)


def points_earn_purchase(
    *,
    member: Member,
    amount_minor: int,
    receipt_ref: str,
    actor: Actor,
    idempotency_key: str,
    effective_at: datetime | None = None,
    fingerprint: dict[str, Any] | None = None,
    till: TillData = NO_TILL_DATA,
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
    request = Request(
        actor,
        idempotency_key,
        _with_till_data(
            {
                "op": "earn",
                "member": member.pk,
                "amount_minor": amount_minor,
                "receipt": receipt_ref,
                "effective_at": effective_at.isoformat() if effective_at else None,
                "request": fingerprint,
            },
            till,
        ),
    )
    points_of = partial(
        earning.points_for_purchase_at_lock, member=member, amount_minor=amount_minor, receipt_ref=receipt_ref
    )
    work = partial(
        earning.earn,
        member=member,
        points_of=points_of,
        receipt_ref=receipt_ref,
        effective_at=effective_at,
        amount_minor=amount_minor,
        till=till,
    )
    try:
        outcome = idempotency.run(request, work)
    except NothingToWrite as nothing:
        return idempotency.unsaved(nothing.entry)
    return _refusal_record(outcome, kind=OP.EARN, member=member, actor=actor)


def points_earn_reverse(
    *,
    member: Member,
    receipt_ref: str,
    actor: Actor,
    idempotency_key: str,
    points: int | None = None,
    amount_minor: int | None = None,
    fingerprint: dict[str, Any] | None = None,
    till: TillData = NO_TILL_DATA,
) -> Outcome:
    """Take back points for a returned purchase (partial or whole): exactly ``points``,
    or for a returned ``amount_minor`` the same share of the purchase's points (worked
    out under the member's lock; the idempotency payload is the amount as sent, never
    points derived from state the first attempt may change: issue 11, D4).

    Never more than the purchase earned, across all its returns. Points already spent
    are not clawed into a negative balance: the shortfall goes to the RETURN_SHORTFALL
    account and the return is flagged for review. An amount worth no points answers 200
    with ``reversed`` 0 and writes nothing (not even the key).

    ``till`` (item lines, tender, receipt shown) goes on the return's row; a tender
    other than the purchase's is refused or flagged (``earning.earn_reverse``). Refusals
    (a return without a recorded purchase among them) are recorded for the fraud
    detectors (``LedgerRefusalEvent``).
    """
    if (points is None) == (amount_minor is None):
        raise ValueError("give exactly one of points and amount_minor")
    if points is not None and points <= 0:
        raise ValueError("points must be positive")
    if amount_minor is not None and amount_minor < 0:
        raise ValueError("amount_minor must not be negative")
    given: dict[str, int | None] = {"points": points} if points is not None else {"amount_minor": amount_minor}
    request = Request(
        actor,
        idempotency_key,
        _with_till_data(
            {"op": "reverse_earn", "member": member.pk, **given, "receipt": receipt_ref, "request": fingerprint}, till
        ),
    )
    work = partial(
        earning.earn_reverse,
        member=member,
        receipt_ref=receipt_ref,
        points=points,
        amount_minor=amount_minor,
        till=till,
    )
    try:
        outcome = idempotency.run(request, work)
    except NothingToWrite as nothing:
        return idempotency.unsaved(nothing.entry)
    return _refusal_record(outcome, kind=OP.REVERSE_EARN, member=member, actor=actor)


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


def _release_one(earn_id: uuid.UUID) -> Outcome:
    earn = LedgerOperation.objects.select_related("member").get(pk=earn_id)
    request = Request(Actor(job="pending_release"), f"release:{earn_id}", {"op": "release", "earn": str(earn_id)})
    return idempotency.run(request, partial(earning.release, earn=earn))


def points_hold(
    *, member: Member, points: int, actor: Actor, idempotency_key: str, fingerprint: dict[str, Any] | None = None
) -> Outcome:
    """Reserve ``points`` for a redemption at the till (phase one). The hold lapses
    after ``LOYALTY_HOLD_MINUTES`` unless captured."""
    if points <= 0:
        raise ValueError("points must be positive")
    request = Request(
        actor, idempotency_key, {"op": "hold", "member": member.pk, "points": points, "request": fingerprint}
    )
    return idempotency.run(request, partial(holds.hold, member=member, points=points))


def points_capture(
    *,
    hold_id: object,
    actor: Actor,
    idempotency_key: str,
    points: int | None = None,
    member: Member | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> Outcome:
    """Settle a hold (phase two) for ``points`` ≤ the held amount; the rest goes back
    to the exact lots it came from."""
    request = Request(
        actor, idempotency_key, {"op": "capture", "hold": str(hold_id), "points": points, "request": fingerprint}
    )
    return idempotency.run(request, partial(holds.capture, hold_id=hold_id, points=points, member=member))


def points_void(
    *,
    hold_id: object,
    actor: Actor,
    idempotency_key: str,
    member: Member | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> Outcome:
    """Cancel a hold: every held point goes back to the lot it came from."""
    request = Request(actor, idempotency_key, {"op": "void", "hold": str(hold_id), "request": fingerprint})
    return idempotency.run(request, partial(holds.void, hold_id=hold_id, member=member))


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
    fingerprint: dict[str, Any] | None = None,
) -> Outcome:
    """Spend points in one step (a voucher bought with points)."""
    if points <= 0:
        raise ValueError("points must be positive")
    request = Request(
        actor,
        idempotency_key,
        {"op": "redeem", "member": member.pk, "points": points, "reason": reason, "request": fingerprint},
    )
    return idempotency.run(request, partial(redeeming.redeem, member=member, points=points, reason=reason))


def points_redeem_reverse(
    *,
    redemption_id: object,
    points: int,
    actor: Actor,
    idempotency_key: str,
    member: Member | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> Outcome:
    """Refund a redemption (capture or one-step redeem): restore the exact lots it
    spent, never more in total than it took."""
    if points <= 0:
        raise ValueError("points must be positive")
    request = Request(
        actor,
        idempotency_key,
        {"op": "reverse_redeem", "redemption": str(redemption_id), "points": points, "request": fingerprint},
    )
    work = partial(redeeming.redeem_reverse, redemption_id=redemption_id, points=points, member=member)
    return idempotency.run(request, work)


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
    request = Request(
        Actor(job="points_expiry"), f"expire:{account_id}:{state}", {"op": "expire", "account": account_id, "lots": due}
    )
    return idempotency.run(request, partial(expiry.expire_account, account_id=account_id, as_of=as_of))


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
    request = Request(
        actor, str(adjustment_ref), {"op": "adjust", "member": member.pk, "points": points}, scope_override="adjustment"
    )
    work = partial(adjusting.adjust, member=member, points=points, reason=reason, adjustment_ref=adjustment_ref)
    return idempotency.run(request, work)
