"""Programme rules the ledger applies: tiers and per-member velocity limits.

Everything here reads ``settings`` (the programme's configuration) and is called by
``loyalty.ledger.services`` under the member's balance lock, so the counts it reads cannot
change before the write commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TypedDict

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from loyalty.kernel import rawsql
from loyalty.ledger import refusals as refusals
from loyalty.ledger.models import LedgerOperation, MemberBalance
from members.models import Member

OP = LedgerOperation.Kind


class Tier(TypedDict):
    """One entry of ``settings.LOYALTY_TIERS``."""

    tier: int
    name: str
    threshold: int
    multiplier_percent: int
    daily_earn_points: int


def tiers() -> list[Tier]:
    return sorted(settings.LOYALTY_TIERS, key=lambda t: t["threshold"])


def tier_rules(tier: int) -> Tier:
    return next((t for t in tiers() if t["tier"] == tier), tiers()[0])


def points_for_purchase(*, amount_minor: int, tier: int = 1) -> int:
    """Points a purchase earns: ``LOYALTY_EARN_POINTS_PER_UNIT`` per whole currency
    unit, times the tier's multiplier (rounded down)."""
    base: int = (amount_minor // 100) * settings.LOYALTY_EARN_POINTS_PER_UNIT
    return base * tier_rules(tier)["multiplier_percent"] // 100


def _day_start(now: datetime) -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))


def _limit(name: str) -> int | None:
    return settings.LOYALTY_VELOCITY.get(name)


@dataclass(frozen=True)
class EarnFigures:
    """What the earn rules need to know, read in one query under the member's lock."""

    earns_today: int
    points_today: int
    receipt_used: bool
    qualifying: int  # points earned in the tier window, net of returns (before this earn)


# Points earned in the tier window net of returns (and their shortfalls), counted from
# the journal through the member's operations (indexed by member and time). Points still
# pending (return window) do not qualify until released. Params: member id, window start.
_QUALIFYING_SQL = """
    SELECT COALESCE(SUM(CASE WHEN t.kind = 'earn' THEN t.amount ELSE -t.amount END), 0)
    FROM loyalty_transfer t JOIN loyalty_ledgeroperation o ON o.id = t.operation_id
    WHERE o.member_id = %s AND o.created_at >= %s AND t.kind IN ('earn', 'reverse_earn', 'return_shortfall')
"""


def earn_figures(*, member_id: int, receipt_ref: str, now: datetime) -> EarnFigures:
    """Read after the member's balance row is locked (a statement that waited for the
    lock would otherwise hold figures from before the wait). Receipts are checked
    across all members: a receipt earns once, whoever presents it."""
    row = rawsql.fetchone(
        f"""
        SELECT today.earns, today.points,
          EXISTS (SELECT 1 FROM loyalty_ledgeroperation WHERE kind = 'earn' AND receipt_ref = %s),
          ({_QUALIFYING_SQL})
        FROM (SELECT COUNT(*) AS earns, COALESCE(SUM(points), 0) AS points FROM loyalty_ledgeroperation
              WHERE member_id = %s AND kind = 'earn' AND created_at >= %s) AS today
        """,  # noqa: S608 (a fixed fragment, values are parameters)
        [receipt_ref, member_id, rawsql.when(_tier_window_start(now)), member_id, rawsql.when(_day_start(now))],
    )
    assert row is not None  # aggregates over a one-row FROM: always one row
    # SUM over bigint is numeric (Decimal) on PostgreSQL: points are whole numbers.
    return EarnFigures(earns_today=row[0], points_today=int(row[1]), receipt_used=bool(row[2]), qualifying=int(row[3]))


def check_earn(*, figures: EarnFigures, tier: int, points: int, receipt_ref: str) -> None:
    """The receipt was not earned on before, and the member's earning today stays within
    the limits (the daily cap is the tier's, ``tier`` as read under the lock)."""
    if figures.receipt_used:
        raise refusals.ReceiptAlreadyUsed(receipt_ref=receipt_ref)
    per_day = _limit("earn_transactions_per_day")
    if per_day is not None and figures.earns_today >= per_day:
        raise refusals.DailyEarnTransactionsExceeded(limit=per_day)
    cap = tier_rules(tier)["daily_earn_points"]
    if cap is not None and figures.points_today + points > cap:
        raise refusals.DailyEarnPointsExceeded(limit=cap, earned_today=figures.points_today)


def check_redemption(*, member: Member, balance: MemberBalance, points: int, now: datetime) -> None:
    """Before a hold or a one-step redemption. Voided holds do not count."""
    redemptions = LedgerOperation.objects.filter(member=member, kind__in=[OP.HOLD, OP.REDEEM]).exclude(
        followups__kind=OP.VOID
    )
    today = redemptions.filter(created_at__gte=_day_start(now))
    per_day = _limit("redemptions_per_day")
    if per_day is not None and today.count() >= per_day:
        raise refusals.DailyRedemptionsExceeded(limit=per_day)
    share = _limit("redemption_share_of_balance_percent")
    if share is not None:
        # Refunds give points back but do not undo a redemption's use of the day's share.
        redeemed = today.aggregate(total=Sum("points"))["total"] or 0
        start_of_day_balance = balance.available + redeemed
        if (redeemed + points) * 100 > start_of_day_balance * share:
            raise refusals.DailyRedemptionShareExceeded(
                share_percent=share, redeemed_today=redeemed, allowed_today=start_of_day_balance * share // 100
            )
    large = _limit("large_redemption_points")
    cooling = _limit("large_redemption_cooling_hours")
    if large is not None and cooling is not None and points > large:
        recent = redemptions.filter(points__gt=large, created_at__gte=now - timedelta(hours=cooling))
        if recent.exists():
            raise refusals.LargeRedemptionCoolingPeriod(cooling_hours=cooling)


def _tier_window_start(now: datetime) -> datetime:
    return now - timedelta(days=settings.LOYALTY_TIER_WINDOW_DAYS)


def tier_for(qualifying: int) -> int:
    """The highest tier whose threshold ``qualifying`` points reach. A return inside the
    window of a purchase earned before it can make ``qualifying`` negative: base tier."""
    eligible = [t for t in tiers() if t["threshold"] <= qualifying] or tiers()[:1]
    return eligible[-1]["tier"]


def tier_apply(*, member: Member, tier: int) -> int:
    """Record ``tier`` on the member if it changed (auditlog records the change)."""
    if tier != member.tier:
        member.tier = tier
        member.save(update_fields=["tier"])
    return tier


def tier_recompute(*, member: Member, now: datetime) -> int:
    """Set the member's tier from the points earned, net of returns, in the window.

    Called after a release (progression) and after a return, which takes the member back
    down when it drops them below the threshold (an earn knows its figures already and
    calls ``tier_apply`` directly). Returns the tier.
    """
    row = rawsql.fetchone(_QUALIFYING_SQL, [member.pk, rawsql.when(_tier_window_start(now))])
    assert row is not None  # an aggregate without GROUP BY: always one row
    (qualifying,) = row
    return tier_apply(member=member, tier=tier_for(int(qualifying)))
