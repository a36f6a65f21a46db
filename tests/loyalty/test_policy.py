"""Velocity limits and tiers, with the spec's default numbers (from settings)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.operations import points_earn, points_earn_reverse, points_hold, points_redeem, points_void
from loyalty.ledger.policy import points_for_purchase
from members.models import Member

pytestmark = pytest.mark.django_db


def earn(member, actor, points, n):
    return points_earn(member=member, points=points, receipt_ref=f"P{n}", actor=actor, idempotency_key=f"e{n}")


def test_three_earning_transactions_a_day_then_refused(member, till_actor):
    assert all(earn(member, till_actor, 10, n).ok for n in range(3))
    fourth = earn(member, till_actor, 10, 3)
    assert (fourth.status_code, fourth.error_code) == (422, "daily_earn_transactions_exceeded")
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        assert earn(member, till_actor, 10, 4).ok  # a new day


def test_daily_points_cap_by_tier(member, till_actor):
    assert earn(member, till_actor, 9_000, 1).ok
    refused = earn(member, till_actor, 1_001, 2)
    assert refused.error_code == "daily_earn_points_exceeded" and refused.body["error"]["detail"]["limit"] == 10_000
    assert earn(member, till_actor, 1_000, 3).ok


def test_the_cap_is_configurable_per_tier(member, till_actor, settings):
    settings.LOYALTY_TIERS = [
        {"tier": 1, "name": "Base", "threshold": 0, "multiplier_percent": 100, "daily_earn_points": 100},
    ]
    assert earn(member, till_actor, 101, 1).error_code == "daily_earn_points_exceeded"


def test_two_redemptions_a_day(member, till_actor, velocity_off, settings):
    earn(member, till_actor, 1_000, 1)
    settings.LOYALTY_VELOCITY = {**settings.LOYALTY_VELOCITY, "redemptions_per_day": 2}
    assert points_redeem(member=member, points=10, actor=till_actor, idempotency_key="r1").ok
    assert points_hold(member=member, points=10, actor=till_actor, idempotency_key="r2").ok
    third = points_redeem(member=member, points=10, actor=till_actor, idempotency_key="r3")
    assert third.error_code == "daily_redemptions_exceeded"


def test_a_voided_hold_does_not_use_up_a_redemption(member, till_actor, velocity_off, settings):
    earn(member, till_actor, 1_000, 1)
    settings.LOYALTY_VELOCITY = {**settings.LOYALTY_VELOCITY, "redemptions_per_day": 1}
    hold = points_hold(member=member, points=10, actor=till_actor, idempotency_key="h")
    points_void(hold_id=hold.body["hold_id"], actor=till_actor, idempotency_key="v")
    assert points_redeem(member=member, points=10, actor=till_actor, idempotency_key="r").ok


def test_at_most_half_the_balance_a_day(member, till_actor):
    earn(member, till_actor, 1_000, 1)
    assert points_redeem(member=member, points=300, actor=till_actor, idempotency_key="r1").ok
    refused = points_redeem(member=member, points=201, actor=till_actor, idempotency_key="r2")
    assert refused.error_code == "daily_redemption_share_exceeded"
    assert refused.body["error"]["detail"]["allowed_today"] == 500
    assert points_redeem(member=member, points=200, actor=till_actor, idempotency_key="r3").ok


def test_cooling_period_between_large_redemptions(member, till_actor, velocity_off, settings):
    for day in range(3):
        with time_machine.travel(timezone.now() - timedelta(days=10 - day), tick=False):
            earn(member, till_actor, 10_000, day)
    settings.LOYALTY_VELOCITY = {
        **settings.LOYALTY_VELOCITY,
        "large_redemption_points": 5000,
        "large_redemption_cooling_hours": 24,
    }
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert points_redeem(member=member, points=5_001, actor=till_actor, idempotency_key="big1").ok
        assert points_redeem(member=member, points=5_000, actor=till_actor, idempotency_key="small").ok  # not large
    with time_machine.travel(start + timedelta(hours=23, minutes=59), tick=False):
        refused = points_redeem(member=member, points=6_000, actor=till_actor, idempotency_key="big2")
        assert refused.error_code == "large_redemption_cooling_period"
    with time_machine.travel(start + timedelta(hours=24, minutes=1), tick=False):
        assert points_redeem(member=member, points=6_000, actor=till_actor, idempotency_key="big3").ok


def test_refusals_write_nothing(member, till_actor):
    earn(member, till_actor, 100, 1)
    before = LedgerOperation.objects.count()
    points_redeem(member=member, points=51, actor=till_actor, idempotency_key="too-much-today")
    assert LedgerOperation.objects.count() == before


def test_tier_progression_on_earn_and_reversal_on_return(member, till_actor, velocity_off):
    assert earn(member, till_actor, 4_999, 1).body["tier"] == 1
    purchase = earn(member, till_actor, 1, 2)
    assert purchase.body["tier"] == 2 and Member.objects.get(pk=member.pk).tier == 2
    back = points_earn_reverse(member=member, receipt_ref="P2", points=1, actor=till_actor, idempotency_key="x")
    assert back.body["tier"] == 1 and Member.objects.get(pk=member.pk).tier == 1


def test_earned_points_outside_the_window_do_not_qualify(member, till_actor, velocity_off):
    with time_machine.travel(timezone.now() - timedelta(days=400), tick=False):
        earn(member, till_actor, 6_000, 1)
    assert earn(member, till_actor, 1, 2).body["tier"] == 1


def test_tier_multiplier_applies_to_purchases():
    assert points_for_purchase(amount_minor=12_345) == 123
    assert points_for_purchase(amount_minor=12_345, tier=3) == 184  # 150 %


def test_returning_an_old_purchase_inside_the_window_keeps_the_base_tier(member, till_actor, velocity_off):
    """Found by the model test: returns in the window of earns from before it."""
    with time_machine.travel(timezone.now() - timedelta(days=400), tick=False):
        earn(member, till_actor, 100, 1)
    outcome = points_earn_reverse(member=member, receipt_ref="P1", points=100, actor=till_actor, idempotency_key="x")
    assert outcome.status_code == 201 and outcome.body["tier"] == 1
