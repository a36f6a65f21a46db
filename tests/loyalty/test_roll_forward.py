"""Invariant 13: movements between two snapshots tie out exactly to their difference."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.ledger.models import MemberBalance
from loyalty.ledger.operations import (
    Actor,
    points_adjust_post,
    points_capture,
    points_earn_reverse,
    points_expire_due,
    points_hold,
    points_redeem,
    points_redeem_reverse,
)
from loyalty.ledger.selectors import ledger_snapshot, roll_forward

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]


def test_roll_forward_ties_out_with_every_kind_of_movement(member, till_actor, earn, make_staff):
    earn(member, 500, effective_at=timezone.now() - timedelta(days=400))  # will expire
    opening = ledger_snapshot()

    purchase = earn(member, 300)
    redeemed = points_redeem(member=member, points=120, actor=till_actor, idempotency_key="r")
    hold = points_hold(member=member, points=50, actor=till_actor, idempotency_key="h")
    points_capture(hold_id=hold.body["hold_id"], points=40, actor=till_actor, idempotency_key="c")
    points_redeem_reverse(redemption_id=redeemed.body["operation_id"], points=20, actor=till_actor, idempotency_key="f")
    points_adjust_post(
        member=member,
        points=75,
        reason="goodwill",
        adjustment_ref="A1",
        actor=Actor(staff=make_staff("hq", "program_admin")),
    )
    points_earn_reverse(
        member=member, receipt_ref=purchase.body["receipt_ref"], points=100, actor=till_actor, idempotency_key="x"
    )
    expired = points_expire_due()

    report = roll_forward(opening, ledger_snapshot())

    assert report["ties_out"] and report["difference"] == 0
    assert report["movements"] == {
        "earn": 300,
        "redeem": -120,
        "post": -40,
        "reverse_redeem": 20,
        "adjust": 75,
        "reverse_earn": -100,
        "expire": -expired,
    }
    assert (
        report["closing"]
        == MemberBalance.objects.get(account__member=member).credits_posted
        - MemberBalance.objects.get(account__member=member).debits_posted
    )


def test_a_balance_changed_behind_the_journal_does_not_tie_out(member, earn):
    earn(member, 100)
    opening = ledger_snapshot()
    MemberBalance.objects.filter(account__member=member).update(credits_posted=150)
    report = roll_forward(opening, ledger_snapshot())
    assert not report["ties_out"] and report["difference"] == 50
