"""Programme rules the ledger applies: tiers and per-member velocity limits.

Everything here reads ``settings`` (the programme's configuration) and is called by
``loyalty.services`` under the member's balance lock, so the counts it reads cannot
change before the write commits.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from loyalty import exceptions as refusals
from loyalty.models import LedgerOperation, MemberBalance, Transfer
from members.models import Member

OP = LedgerOperation.Kind


def tiers() -> list[dict]:
    return sorted(settings.LOYALTY_TIERS, key=lambda t: t["threshold"])


def tier_rules(tier: int) -> dict:
    return next((t for t in tiers() if t["tier"] == tier), tiers()[0])


def points_for_purchase(*, amount_minor: int, tier: int = 1) -> int:
    """Points a purchase earns: ``LOYALTY_EARN_POINTS_PER_UNIT`` per whole currency
    unit, times the tier's multiplier (rounded down)."""
    base = (amount_minor // 100) * settings.LOYALTY_EARN_POINTS_PER_UNIT
    return base * tier_rules(tier)["multiplier_percent"] // 100


def _day_start(now: datetime) -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))


def _limit(name: str) -> int | None:
    return settings.LOYALTY_VELOCITY.get(name)


def check_earn(*, member: Member, points: int, receipt_ref: str, now: datetime) -> None:
    """The receipt was not earned on before (by anyone), and the member's earning today
    stays within the limits. One query for both."""
    today_q = Q(member=member, created_at__gte=_day_start(now))
    today = LedgerOperation.objects.filter(today_q | Q(receipt_ref=receipt_ref), kind=OP.EARN).aggregate(
        count=Count("pk", filter=today_q),
        points=Sum("points", filter=today_q),
        receipt=Count("pk", filter=Q(receipt_ref=receipt_ref)),
    )
    if today["receipt"]:
        raise refusals.ReceiptAlreadyUsed(receipt_ref=receipt_ref)
    per_day = _limit("earn_transactions_per_day")
    if per_day is not None and today["count"] >= per_day:
        raise refusals.DailyEarnTransactionsExceeded(limit=per_day)
    cap = tier_rules(member.tier)["daily_earn_points"]
    earned = today["points"] or 0
    if cap is not None and earned + points > cap:
        raise refusals.DailyEarnPointsExceeded(limit=cap, earned_today=earned)


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


def tier_recompute(*, member: Member, now: datetime) -> int:
    """Set the member's tier from the points earned, net of returns, in the window.

    Counted from the journal: points still pending (return window) do not qualify
    until released, and a return (including any shortfall) takes its points back off.
    Called after an earn or release (progression) and after a return, which takes the
    member back down when it drops them below the threshold. Returns the tier.
    """
    since = now - timedelta(days=settings.LOYALTY_TIER_WINDOW_DAYS)
    # Through the member's operations (indexed by member and time), one query.
    totals = Transfer.objects.filter(operation__member=member, operation__created_at__gte=since).aggregate(
        earned=Sum("amount", filter=Q(kind=Transfer.Kind.EARN)),
        returned=Sum("amount", filter=Q(kind__in=[Transfer.Kind.REVERSE_EARN, Transfer.Kind.RETURN_SHORTFALL])),
    )
    earned, returned = totals["earned"] or 0, totals["returned"] or 0
    # A return inside the window of a purchase earned before it can make this negative.
    qualifying = max(earned - returned, 0)
    eligible = [t for t in tiers() if t["threshold"] <= qualifying] or tiers()[:1]
    tier = eligible[-1]["tier"]
    if tier != member.tier:
        member.tier = tier
        member.save(update_fields=["tier"])  # auditlog records the tier change
    return tier
