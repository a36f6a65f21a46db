"""The ledger's operations, one behaviour per test; the invariants are verified after each."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from loyalty.ledger.models import Account, IdempotencyKey, LedgerOperation, LotMovement, PointsLot, Transfer
from loyalty.ledger.operations import (
    Actor,
    points_adjust_post,
    points_capture,
    points_earn,
    points_earn_reverse,
    points_expire_due,
    points_hold,
    points_holds_lapse,
    points_pending_release,
    points_redeem,
    points_redeem_reverse,
    points_void,
)
from loyalty.ledger.verify import ledger_verify
from members.models import Member
from tests.loyalty.conftest import assert_ledger_verified, available

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]


def counts():
    return (LedgerOperation.objects.count(), Transfer.objects.count(), LotMovement.objects.count())


# --- earn ------------------------------------------------------------------------------------


def test_earn_writes_operation_transfer_lot_and_balance(member, till_actor, till):
    outcome = points_earn(member=member, points=120, receipt_ref="KLA/T1/0001", actor=till_actor, idempotency_key="k1")

    assert outcome.status_code == 201 and outcome.body["balance"] == {"available": 120, "held": 0, "pending": 0}
    op = LedgerOperation.objects.get()
    assert (op.kind, op.points, op.actor_till, op.store, op.receipt_ref) == (
        "earn",
        120,
        till,
        till.store,
        "KLA/T1/0001",
    )
    transfer = op.transfers.get()
    assert transfer.debit_account.kind == Account.Kind.EARN and transfer.credit_account.member == member
    lot = PointsLot.objects.get()
    assert (lot.earned, lot.remaining, lot.source) == (120, 120, transfer)
    assert lot.expires_on == timezone.localdate() + timedelta(days=365)
    assert_ledger_verified()


def test_same_key_and_payload_replays_without_a_second_write(member, till_actor):
    first = points_earn(member=member, points=50, receipt_ref="R1", actor=till_actor, idempotency_key="same")
    again = points_earn(member=member, points=50, receipt_ref="R1", actor=till_actor, idempotency_key="same")
    assert again.replayed and (again.status_code, again.body) == (first.status_code, first.body)
    assert counts() == (1, 1, 1)


def test_same_key_with_another_payload_is_refused_and_writes_nothing(member, till_actor):
    points_earn(member=member, points=50, receipt_ref="R1", actor=till_actor, idempotency_key="same")
    before = counts()
    outcome = points_earn(member=member, points=51, receipt_ref="R1", actor=till_actor, idempotency_key="same")
    assert (outcome.status_code, outcome.error_code) == (422, "idempotency_key_reused")
    assert counts() == before


def test_a_receipt_earns_once_even_with_a_new_key(member, till_actor):
    points_earn(member=member, points=50, receipt_ref="R1", actor=till_actor, idempotency_key="a")
    outcome = points_earn(member=member, points=50, receipt_ref="R1", actor=till_actor, idempotency_key="b")
    assert (outcome.status_code, outcome.error_code) == (409, "receipt_already_used")
    assert available(member) == 50


def test_refusals_are_saved_and_replayed(member, till_actor, earn):
    earn(member, 10)
    first = points_redeem(member=member, points=50, actor=till_actor, idempotency_key="r")
    earn(member, 100)  # enough now, but the key already answered
    again = points_redeem(member=member, points=50, actor=till_actor, idempotency_key="r")
    assert first.error_code == "insufficient_points" and again.replayed and again.body == first.body
    assert available(member) == 110


def test_keys_are_scoped_per_caller(member, till_actor, make_staff):
    staff = make_staff("someone", "store_manager")
    points_earn(member=member, points=5, receipt_ref="R1", actor=till_actor, idempotency_key="k")
    outcome = points_earn(member=member, points=5, receipt_ref="R2", actor=Actor(staff=staff), idempotency_key="k")
    assert outcome.status_code == 201 and not outcome.replayed


def test_inactive_member_cannot_earn_or_redeem(member, till_actor, earn):
    earn(member, 100)
    Member.objects.filter(pk=member.pk).update(status=Member.Status.SUSPENDED)
    assert points_earn(member=member, points=5, receipt_ref="X", actor=till_actor, idempotency_key="e").error_code == (
        "member_not_active"
    )
    assert points_hold(member=member, points=5, actor=till_actor, idempotency_key="h").status_code == 403


# --- holds -----------------------------------------------------------------------------------


def test_hold_then_partial_capture_releases_the_rest_to_the_same_lots(member, till_actor, earn):
    earn(member, 100)
    hold = points_hold(member=member, points=60, actor=till_actor, idempotency_key="h")
    assert hold.body["balance"] == {"available": 40, "held": 60, "pending": 0}

    capture = points_capture(hold_id=hold.body["hold_id"], points=45, actor=till_actor, idempotency_key="c")

    assert capture.status_code == 201 and capture.body["released"] == 15
    assert capture.body["balance"] == {"available": 55, "held": 0, "pending": 0}
    assert PointsLot.objects.get().remaining == 55
    assert_ledger_verified()


def test_a_hold_settles_once(member, till_actor, earn):
    earn(member, 100)
    hold_id = points_hold(member=member, points=30, actor=till_actor, idempotency_key="h").body["hold_id"]
    assert points_capture(hold_id=hold_id, actor=till_actor, idempotency_key="c1").ok
    assert points_capture(hold_id=hold_id, actor=till_actor, idempotency_key="c2").error_code == "hold_not_open"
    assert points_void(hold_id=hold_id, actor=till_actor, idempotency_key="v").error_code == "hold_not_open"
    assert available(member) == 70
    assert_ledger_verified()


def test_capture_cannot_exceed_the_hold(member, till_actor, earn):
    earn(member, 100)
    hold_id = points_hold(member=member, points=30, actor=till_actor, idempotency_key="h").body["hold_id"]
    assert points_capture(hold_id=hold_id, points=31, actor=till_actor, idempotency_key="c").error_code == (
        "capture_exceeds_hold"
    )


def test_void_gives_every_point_back(member, till_actor, earn):
    earn(member, 100)
    hold_id = points_hold(member=member, points=100, actor=till_actor, idempotency_key="h").body["hold_id"]
    outcome = points_void(hold_id=hold_id, actor=till_actor, idempotency_key="v")
    assert outcome.body["balance"] == {"available": 100, "held": 0, "pending": 0}
    assert_ledger_verified()


def test_lapsed_holds_cannot_be_captured_and_the_sweeper_voids_them(member, till_actor, earn):
    earn(member, 100)
    hold_id = points_hold(member=member, points=40, actor=till_actor, idempotency_key="h").body["hold_id"]
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
        assert points_capture(hold_id=hold_id, actor=till_actor, idempotency_key="c").error_code == "hold_not_open"
        assert points_holds_lapse() == 1
        assert points_holds_lapse() == 0
    assert available(member) == 100
    assert_ledger_verified()


def test_a_hold_beyond_the_balance_is_refused_and_writes_nothing(member, till_actor, earn):
    earn(member, 100)
    before = counts()
    outcome = points_hold(member=member, points=101, actor=till_actor, idempotency_key="h")
    assert (outcome.status_code, outcome.error_code) == (422, "insufficient_points")
    assert counts() == before


# --- FEFO, redemption, refunds -----------------------------------------------------------------


def test_redemption_spends_the_earliest_expiring_points_first(member, till_actor, earn):
    late = earn(member, 100, effective_at=timezone.now())
    early = earn(member, 100, effective_at=timezone.now() - timedelta(days=200))
    points_redeem(member=member, points=120, actor=till_actor, idempotency_key="r")
    lots = {str(lot.source.operation_id): lot.remaining for lot in PointsLot.objects.select_related("source")}
    assert lots[early.body["operation_id"]] == 0 and lots[late.body["operation_id"]] == 80


def test_refund_of_a_redemption_restores_the_exact_lots(member, till_actor, earn):
    early = earn(member, 50, effective_at=timezone.now() - timedelta(days=100))
    late = earn(member, 100)
    redemption = points_redeem(member=member, points=80, actor=till_actor, idempotency_key="r")
    points_redeem_reverse(
        redemption_id=redemption.body["operation_id"], points=40, actor=till_actor, idempotency_key="f1"
    )
    # Last taken, first restored: the 30 from the later lot, then 10 to the earlier one.
    lots = {str(lot.source.operation_id): lot.remaining for lot in PointsLot.objects.select_related("source")}
    assert lots[early.body["operation_id"]] == 10 and lots[late.body["operation_id"]] == 100
    over = points_redeem_reverse(
        redemption_id=redemption.body["operation_id"], points=41, actor=till_actor, idempotency_key="f2"
    )
    assert over.error_code == "refund_exceeds_redemption"
    assert available(member) == 110
    assert_ledger_verified()


def test_refund_of_a_captured_hold(member, till_actor, earn):
    earn(member, 100)
    hold_id = points_hold(member=member, points=60, actor=till_actor, idempotency_key="h").body["hold_id"]
    capture = points_capture(hold_id=hold_id, points=50, actor=till_actor, idempotency_key="c")
    refund = points_redeem_reverse(
        redemption_id=capture.body["operation_id"], points=50, actor=till_actor, idempotency_key="f"
    )
    assert refund.body["balance"]["available"] == 100
    assert_ledger_verified()


# --- returns ---------------------------------------------------------------------------------


def test_partial_then_whole_return_never_more_than_earned(member, till_actor, earn):
    purchase = earn(member, 100)
    receipt = purchase.body["receipt_ref"]
    first = points_earn_reverse(member=member, receipt_ref=receipt, points=30, actor=till_actor, idempotency_key="x1")
    second = points_earn_reverse(member=member, receipt_ref=receipt, points=70, actor=till_actor, idempotency_key="x2")
    third = points_earn_reverse(member=member, receipt_ref=receipt, points=1, actor=till_actor, idempotency_key="x3")
    assert first.ok and second.ok and third.error_code == "return_exceeds_purchase"
    assert available(member) == 0
    assert_ledger_verified()


def test_return_after_points_were_spent_books_a_shortfall_and_flags_it(member, till_actor, earn):
    purchase = earn(member, 100)
    points_redeem(member=member, points=80, actor=till_actor, idempotency_key="r")
    outcome = points_earn_reverse(
        member=member, receipt_ref=purchase.body["receipt_ref"], points=100, actor=till_actor, idempotency_key="x"
    )
    assert (outcome.body["reversed"], outcome.body["shortfall"]) == (20, 80)
    assert available(member) == 0  # never negative
    assert LedgerOperation.objects.get(kind="reverse_earn").needs_review
    assert Transfer.objects.get(kind="return_shortfall").amount == 80
    assert_ledger_verified()


def test_return_of_an_unknown_receipt_is_404(member, till_actor):
    outcome = points_earn_reverse(member=member, receipt_ref="nope", points=5, actor=till_actor, idempotency_key="x")
    assert (outcome.status_code, outcome.error_code) == (404, "purchase_not_found")


def test_return_takes_from_the_returned_purchase_first(member, till_actor, earn):
    earn(member, 100, effective_at=timezone.now() - timedelta(days=300))
    purchase = earn(member, 50)
    points_earn_reverse(
        member=member, receipt_ref=purchase.body["receipt_ref"], points=50, actor=till_actor, idempotency_key="x"
    )
    assert sorted(PointsLot.objects.values_list("remaining", flat=True)) == [0, 100]


# --- expiry ----------------------------------------------------------------------------------


def test_expiry_takes_what_is_left_of_due_lots_only(member, till_actor, earn):
    earn(member, 100, effective_at=timezone.now() - timedelta(days=400))
    earn(member, 30)
    points_redeem(member=member, points=20, actor=till_actor, idempotency_key="r")
    assert points_expire_due() == 80
    assert available(member) == 30
    assert points_expire_due() == 0  # idempotent
    assert LedgerOperation.objects.filter(kind="expire").count() == 1
    assert_ledger_verified()


def test_held_points_are_not_expired(member, till_actor, earn):
    earn(member, 100, effective_at=timezone.now() - timedelta(days=400))
    hold_id = points_hold(member=member, points=60, actor=till_actor, idempotency_key="h").body["hold_id"]
    assert points_expire_due() == 40
    points_capture(hold_id=hold_id, actor=till_actor, idempotency_key="c")
    assert available(member) == 0
    assert_ledger_verified()


def test_points_voided_back_into_an_expired_lot_expire_on_the_next_run(member, till_actor, earn):
    earn(member, 100, effective_at=timezone.now() - timedelta(days=400))
    hold_id = points_hold(member=member, points=60, actor=till_actor, idempotency_key="h").body["hold_id"]
    points_expire_due()
    points_void(hold_id=hold_id, actor=till_actor, idempotency_key="v")
    assert points_expire_due() == 60
    assert available(member) == 0
    assert_ledger_verified()


# --- adjustments -----------------------------------------------------------------------------


def test_adjustment_posts_once_per_request(member, make_staff, earn):
    approver = make_staff("approver", "program_admin")
    actor = Actor(staff=approver)
    first = points_adjust_post(member=member, points=300, reason="goodwill", adjustment_ref="A-1", actor=actor)
    again = points_adjust_post(member=member, points=300, reason="goodwill", adjustment_ref="A-1", actor=actor)
    assert first.status_code == 201 and again.replayed
    assert available(member) == 300
    debit = points_adjust_post(member=member, points=-301, reason="correction", adjustment_ref="A-2", actor=actor)
    assert debit.error_code == "insufficient_points" and available(member) == 300
    assert points_adjust_post(member=member, points=-300, reason="correction", adjustment_ref="A-3", actor=actor).ok
    assert available(member) == 0
    # The ledger adds up, but adjustments posted without an approved request (the
    # workflow in loyalty.adjustments.services is the only caller in the product) are flagged.
    problems = ledger_verify().problems
    assert len(problems) == 2 and all("no approved adjustment request posted it" in p for p in problems)


def test_idempotency_keys_record_status_and_body(member, till_actor):
    outcome = points_earn(member=member, points=5, receipt_ref="R", actor=till_actor, idempotency_key="k")
    saved = IdempotencyKey.objects.get(key="k")
    assert (saved.status_code, saved.response) == (201, outcome.body)


# --- pending points (return window) --------------------------------------------------------


@pytest.fixture
def pending_window(settings):
    settings.LOYALTY_PENDING_DAYS = 14


def test_pending_points_are_not_spendable_until_released(member, till_actor, pending_window):
    outcome = points_earn(member=member, points=100, receipt_ref="P", actor=till_actor, idempotency_key="e")
    assert outcome.status_code == 201 and "pending_until" in outcome.body
    assert available(member) == 0
    assert points_redeem(member=member, points=1, actor=till_actor, idempotency_key="r").error_code == (
        "insufficient_points"
    )
    assert points_pending_release() == 0  # window still open
    with time_machine.travel(timezone.now() + timedelta(days=14, minutes=1), tick=False):
        assert points_pending_release() == 1
        assert points_pending_release() == 0  # idempotent
    assert available(member) == 100
    assert_ledger_verified()


def test_a_return_inside_the_window_reduces_what_is_released(member, till_actor, pending_window):
    points_earn(member=member, points=100, receipt_ref="P", actor=till_actor, idempotency_key="e")
    assert points_earn_reverse(member=member, receipt_ref="P", points=30, actor=till_actor, idempotency_key="x1").ok
    too_much = points_earn_reverse(member=member, receipt_ref="P", points=71, actor=till_actor, idempotency_key="x2")
    assert too_much.error_code == "return_exceeds_purchase"
    with time_machine.travel(timezone.now() + timedelta(days=15), tick=False):
        points_pending_release()
    assert available(member) == 70
    # After release, the rest can still be returned, never more than earned in all.
    assert points_earn_reverse(member=member, receipt_ref="P", points=70, actor=till_actor, idempotency_key="x3").ok
    assert points_earn_reverse(
        member=member, receipt_ref="P", points=1, actor=till_actor, idempotency_key="x4"
    ).error_code == ("return_exceeds_purchase")
    assert available(member) == 0
    assert_ledger_verified()


def test_a_fully_returned_pending_purchase_releases_nothing(member, till_actor, pending_window):
    points_earn(member=member, points=100, receipt_ref="P", actor=till_actor, idempotency_key="e")
    points_earn_reverse(member=member, receipt_ref="P", points=100, actor=till_actor, idempotency_key="x")
    with time_machine.travel(timezone.now() + timedelta(days=15), tick=False):
        assert points_pending_release() == 0
    assert not Transfer.objects.exists()
    assert_ledger_verified()


def test_the_callers_whole_request_joins_the_payload_hash(member, till_actor):
    first = {"amount_minor": 1000, "occurred_at": "2026-11-01T10:00:00+08:00"}
    points_earn(member=member, points=10, receipt_ref="R", actor=till_actor, idempotency_key="k", fingerprint=first)
    other = {**first, "occurred_at": "2026-11-02T10:00:00+08:00"}  # same points, another request
    outcome = points_earn(
        member=member, points=10, receipt_ref="R", actor=till_actor, idempotency_key="k", fingerprint=other
    )
    assert outcome.error_code == "idempotency_key_reused"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "123", None])
def test_malformed_hold_and_redemption_ids_are_not_found(till_actor, bad_id):
    assert points_capture(hold_id=bad_id, actor=till_actor, idempotency_key=f"c{bad_id}").error_code == "hold_not_found"
    assert points_void(hold_id=bad_id, actor=till_actor, idempotency_key=f"v{bad_id}").error_code == "hold_not_found"
    refund = points_redeem_reverse(redemption_id=bad_id, points=1, actor=till_actor, idempotency_key=f"f{bad_id}")
    assert refund.error_code == "redemption_not_found"


def test_a_refusal_after_a_journal_write_is_a_bug_and_rolls_everything_back(member, till_actor, monkeypatch):
    """Rules are checked before the first write; the engine enforces that order."""
    from loyalty.ledger import policy

    def late_refusal(*, member, tier):  # the earn's last step, after its journal write
        from loyalty.ledger.refusals import DailyEarnPointsExceeded

        raise DailyEarnPointsExceeded()

    monkeypatch.setattr(policy, "tier_apply", late_refusal)
    with pytest.raises(RuntimeError, match="after a journal write"):
        points_earn(member=member, points=5, receipt_ref="R", actor=till_actor, idempotency_key="late")
    assert counts() == (0, 0, 0) and not IdempotencyKey.objects.exists()


def test_a_retried_attempt_starts_clean_and_may_refuse(member, till_actor, earn, monkeypatch):
    """Attempt 1 writes, then hits a serialization failure; the retry is refused by a
    rule before writing. That is a clean, saved refusal (not 'refusal after write')."""
    import psycopg
    from django.db import OperationalError

    from loyalty.ledger import policy
    from loyalty.ledger import refusals as exceptions
    from loyalty.ledger.services import core

    earn(member, 100)
    checks = {"n": 0}
    real_check = policy.check_redemption

    def check_then_refuse_on_retry(**kwargs):
        checks["n"] += 1
        if checks["n"] > 1:
            raise exceptions.DailyRedemptionsExceeded(limit=0)
        return real_check(**kwargs)

    def fail_once():
        core.FAULT_HOOKS.pop("after_transfer_insert")
        raise OperationalError("injected") from psycopg.errors.SerializationFailure("injected")

    monkeypatch.setattr(policy, "check_redemption", check_then_refuse_on_retry)
    core.FAULT_HOOKS["after_transfer_insert"] = fail_once
    try:
        outcome = points_redeem(member=member, points=30, actor=till_actor, idempotency_key="retried")
    finally:
        core.FAULT_HOOKS.pop("after_transfer_insert", None)
    assert checks["n"] == 2 and outcome.error_code == "daily_redemptions_exceeded"
    assert available(member) == 100 and IdempotencyKey.objects.get(key="retried").status_code == 422
