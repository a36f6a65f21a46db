"""Small data for the batch detectors' tests: ledger operations, refusals, security events
and adjustments written straight to their tables at a chosen time (a frozen clock: their
``created_at`` are set on insert and the tables are append-only)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import time_machine
from django.utils import timezone

from fraud.models import FraudAlert, MemberDayStats, RiskSignal
from loyalty.adjustments.models import AdjustmentEvent, AdjustmentReason, AdjustmentRequest
from loyalty.ledger.models import LedgerOperation, LedgerRefusalEvent
from members.models import Member, MemberSecurityEvent

# Local noon on a Wednesday (the programme's time zone): runs read the window before it.
AS_OF = timezone.make_aware(datetime(2026, 11, 18, 12, 0))


def at(when: datetime):
    return time_machine.travel(when, tick=False)


def member(*, joined: datetime | None = None, tier: int = 1, store=None) -> Member:
    with at(joined or AS_OF - timedelta(days=365)):
        return Member.objects.create(tier=tier, home_store=store)


def ops(kind: str, who: Member, points: int, when: datetime, *, n: int = 1, store=None, till=None, staff=None,
        amount_minor: int | None = None):  # fmt: skip
    """``n`` operations of ``kind`` for ``who`` at ``when`` (one INSERT)."""
    with at(when):
        return LedgerOperation.objects.bulk_create(
            [
                LedgerOperation(
                    id=uuid.uuid4(),
                    kind=kind,
                    member=who,
                    points=points,
                    store=store,
                    actor_till=till,
                    actor_staff=staff,
                    actor_job="" if (till or staff) else "test",
                    amount_minor=amount_minor,
                )  # fmt: skip
                for _ in range(n)
            ]
        )


def refusal(who: Member, code: str, when: datetime) -> LedgerRefusalEvent:
    with at(when):
        return LedgerRefusalEvent.objects.create(kind="earn", code=code, member=who)


def security_event(who: Member, kind: str, when: datetime) -> MemberSecurityEvent:
    with at(when):
        return MemberSecurityEvent.objects.create(member=who, kind=kind)


def day_stats(who: Member, day, *, earns: int = 1, points: int = 0, base_points: int | None = None) -> MemberDayStats:
    """A member's day figures; standard points the points unless given (tier 1's rate)."""
    return MemberDayStats.objects.create(
        member=who, day=day, earns=earns, points=points, base_points=points if base_points is None else base_points,
        refreshed_at=AS_OF,
    )  # fmt: skip


def adjustment(
    by, who: Member, points: int, when: datetime, *, band: str = "direct", store=None, posted: bool = True
) -> AdjustmentRequest:
    """An adjustment request raised (and posted, with its ledger operation and event) at ``when``."""
    reason = AdjustmentReason.objects.get_or_create(code="MISSED_EARN", defaults={"label": "Missed earn"})[0]
    with at(when):
        request = AdjustmentRequest.objects.create(
            member=who, store=store, points=points, band=band, reason=reason, requested_by=by,
            expires_at=when + timedelta(days=7),
        )  # fmt: skip
        if posted:
            (operation,) = ops("adjust", who, abs(points), when, staff=by, store=store)
            AdjustmentRequest.objects.filter(pk=request.pk).update(state="posted", operation=operation)
            AdjustmentEvent.objects.create(request=request, kind="posted", actor=by)
    return request


def alerts(code: str):
    return FraudAlert.objects.filter(kind=code)


def signals(code: str):
    return RiskSignal.objects.filter(detector=code)
