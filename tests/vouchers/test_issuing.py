"""Vouchers bought with points, given as goodwill, reported lost and revoked
(``vouchers.services.issuing``), and the member's reads (``vouchers.selectors``)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
import time_machine
from auditlog.models import LogEntry
from django.utils import timezone

from loyalty.kernel.statuses import refusal_status
from loyalty.ledger.models import IdempotencyKey, LedgerOperation, Transfer
from members.models import Member, MemberSecurityEvent
from tests.concurrency import race
from tests.loyalty.conftest import assert_ledger_verified as ledger_verified
from tests.loyalty.conftest import available
from tests.vouchers.issuing_helpers import buy, session_for
from vouchers.models import Reward, Voucher
from vouchers.selectors import member_voucher_get, member_vouchers, reward_catalogue
from vouchers.services import issuing
from vouchers.services.codes import code_normalise
from vouchers.services.issuing import (
    VoucherRefused,
    ledger_key,
    voucher_goodwill_issue,
    voucher_purchase,
    voucher_report_lost,
    voucher_revoke,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limits_off", "sms_outbox")]


@pytest.fixture
def member(member_with_phone):
    return member_with_phone


@pytest.fixture
def session(member):
    return session_for(member)


def assert_ledger_verified():
    """The ledger's own invariants, and vouchers and ledger agree: every member redeem
    paid for exactly one purchased voucher of the same points, and every purchased
    voucher was paid by one."""
    ledger_verified()
    redeems = dict(
        LedgerOperation.objects.filter(kind=LedgerOperation.Kind.REDEEM, actor_member=True).values_list("pk", "points")
    )
    paid = dict(Voucher.objects.filter(source="purchase").values_list("ledger_operation_id", "points_paid"))
    assert redeems == paid


def refusal(call) -> VoucherRefused:
    with pytest.raises(VoucherRefused) as caught:
        call()
    return caught.value


def purchase_or_refusal(**purchase):
    """What ``voucher_purchase`` returns, or the code of its refusal (for races)."""
    try:
        return voucher_purchase(**purchase)
    except VoucherRefused as refused:
        return refused.code


def purchases_raced(reward, attempts):
    """Buy ``reward`` once per (member, idempotency key, session) at the same moment; each
    attempt's result or refusal code."""
    return race(*(
        partial(purchase_or_refusal, member=member, reward_id=reward.pk, idempotency_key=key, session=session)
        for member, key, session in attempts
    ))  # fmt: skip


def redeem_operations(member):
    return LedgerOperation.objects.filter(member=member, kind=LedgerOperation.Kind.REDEEM)


def assert_nothing_bought(member, reward, *, stock=None, key="k-1"):
    assert not Voucher.objects.filter(member=member).exists()
    assert not redeem_operations(member).exists()
    assert not IdempotencyKey.objects.filter(key=ledger_key(member=member, idempotency_key=key)).exists()
    reward.refresh_from_db()
    assert reward.stock_remaining == stock


# --- purchase ------------------------------------------------------------------------------------


def test_a_purchase_spends_the_points_takes_stock_and_issues_one_voucher(member, give, make_reward):
    reward = make_reward(points_price=800, stock_remaining=3, valid_days=30)
    give(member, 1000)
    now = timezone.now()

    purchase = buy(member, reward, now=now)

    voucher = purchase.voucher
    assert not purchase.replayed
    assert available(member) == 200
    op = redeem_operations(member).get()
    assert op.points == 800 and op.actor_member and voucher.ledger_operation_id == op.pk
    assert Transfer.objects.get(operation=op).amount == 800
    assert (voucher.member, voucher.reward, voucher.status, voucher.source) == (member, reward, "active", "purchase")
    assert voucher.points_paid == 800 and voucher.issued_at == now
    assert voucher.expires_at == now + timedelta(days=30)
    assert code_normalise(voucher.code) == voucher.code
    reward.refresh_from_db()
    assert reward.stock_remaining == 2
    assert_ledger_verified()


def test_unlimited_stock_stays_unlimited(member, give, reward):
    give(member, 1000)
    buy(member, reward)
    reward.refresh_from_db()
    assert reward.stock_remaining is None


def test_the_same_key_answers_the_same_voucher_and_debits_once(member, give, make_reward):
    reward = make_reward(points_price=500, stock_remaining=1, per_member_limit=1)
    give(member, 2000)
    first = buy(member, reward, key="same")
    # Sold out and at the member's limit now: a replay still answers the voucher bought.
    Reward.objects.filter(pk=reward.pk).update(active=False)

    again = buy(member, reward, key="same")

    assert again.replayed and again.voucher.pk == first.voucher.pk
    assert redeem_operations(member).count() == 1 and available(member) == 1500
    assert_ledger_verified()


def test_the_same_key_for_another_reward_is_refused(member, give, make_reward):
    first_reward, other = make_reward(), make_reward()
    give(member, 2000)
    buy(member, first_reward, key="same")

    caught = refusal(lambda: buy(member, other, key="same"))

    assert (caught.code, refusal_status(caught)) == ("idempotency_key_reused", 422)
    assert Voucher.objects.filter(member=member).count() == 1 and available(member) == 1500


def test_two_members_may_use_the_same_key(member, give, reward, store_a):
    other = Member.objects.create(home_store=store_a)
    give(member, 1000)
    give(other, 1000)

    mine, theirs = buy(member, reward, key="k"), buy(other, reward, key="k")

    assert not theirs.replayed and mine.voucher.pk != theirs.voucher.pk
    assert available(member) == available(other) == 500


def test_a_new_key_buys_another_voucher(member, give, reward):
    give(member, 2000)
    assert buy(member, reward, key="a").voucher.pk != buy(member, reward, key="b").voucher.pk
    assert available(member) == 1000


@pytest.mark.parametrize("reward_id", [999_999, "abc", "", True, None, -1, "١٢"])
def test_an_unknown_reward_is_refused(member, give, reward_id):
    give(member, 1000)
    caught = refusal(
        lambda: voucher_purchase(member=member, reward_id=reward_id, idempotency_key="k", session=session_for(member))
    )
    assert (caught.code, refusal_status(caught)) == ("reward_not_found", 404)


def test_an_inactive_reward_is_refused_and_nothing_is_written(member, give, make_reward):
    reward = make_reward(active=False, stock_remaining=5)
    give(member, 1000)
    caught = refusal(lambda: buy(member, reward))
    assert (caught.code, refusal_status(caught)) == ("reward_inactive", 409)
    assert_nothing_bought(member, reward, stock=5)
    assert available(member) == 1000


def test_the_availability_window_is_exact(member, give, make_reward):
    start = timezone.now().replace(microsecond=0) + timedelta(days=1)
    end = start + timedelta(days=7)
    reward = make_reward(available_from=start, available_until=end)
    give(member, 5000)

    early = refusal(lambda: buy(member, reward, key="early", now=start - timedelta(microseconds=1)))
    assert (early.code, refusal_status(early)) == ("reward_not_yet_available", 409)
    assert buy(member, reward, key="at-start", now=start).voucher.issued_at == start
    assert buy(member, reward, key="last", now=end - timedelta(microseconds=1)).voucher
    late = refusal(lambda: buy(member, reward, key="at-end", now=end))
    assert (late.code, refusal_status(late)) == ("reward_no_longer_available", 409)
    assert Voucher.objects.filter(member=member).count() == 2


def test_the_tier_must_reach_the_rewards_minimum(member, give, make_reward):
    reward = make_reward(min_tier=2)
    give(member, 1000, tier=1)
    caught = refusal(lambda: buy(member, reward))
    assert (caught.code, refusal_status(caught), caught.detail) == ("tier_too_low", 403, {"min_tier": 2})
    assert_nothing_bought(member, reward)

    Member.objects.filter(pk=member.pk).update(tier=2)
    member.tier = 2
    assert buy(member, reward).voucher


def test_the_per_member_limit_counts_every_voucher_of_the_reward(member, give, make_reward):
    reward = make_reward(per_member_limit=2)
    give(member, 5000)
    buy(member, reward, key="1")
    voucher_report_lost(member=member, voucher_id=buy(member, reward, key="2").voucher.pk)  # still counts

    caught = refusal(lambda: buy(member, reward, key="3"))

    assert (caught.code, refusal_status(caught), caught.detail) == ("per_member_limit_reached", 409, {"limit": 2})
    assert redeem_operations(member).count() == 2 and available(member) == 4000


def test_out_of_stock_is_refused(member, give, make_reward, store_a):
    reward = make_reward(stock_remaining=1)
    other = Member.objects.create(home_store=store_a)
    give(member, 1000)
    give(other, 1000)
    buy(other, reward)

    caught = refusal(lambda: buy(member, reward))

    assert (caught.code, refusal_status(caught)) == ("out_of_stock", 409)
    assert_nothing_bought(member, reward, stock=0)
    assert available(member) == 1000


def test_not_enough_points_is_refused_and_nothing_is_written(member, give, make_reward):
    reward = make_reward(points_price=1001, stock_remaining=4)
    give(member, 1000)
    caught = refusal(lambda: buy(member, reward))
    assert (caught.code, refusal_status(caught)) == ("insufficient_points", 422)
    assert caught.detail == {"available": 1000, "requested": 1001}
    assert_nothing_bought(member, reward, stock=4)


def test_a_member_without_points_is_refused(member, reward):
    assert refusal(lambda: buy(member, reward)).code == "insufficient_points"


def test_the_ledgers_own_refusals_come_back_with_their_codes(member, give, reward, settings):
    give(member, 5000)
    settings.LOYALTY_VELOCITY = {**settings.LOYALTY_VELOCITY, "redemptions_per_day": 1}
    buy(member, reward, key="1")

    caught = refusal(lambda: buy(member, reward, key="2"))

    assert (caught.code, refusal_status(caught), caught.detail) == ("daily_redemptions_exceeded", 422, {"limit": 1})
    assert Voucher.objects.filter(member=member).count() == 1
    assert not IdempotencyKey.objects.filter(key=ledger_key(member=member, idempotency_key="2")).exists()


def test_a_locked_member_cannot_buy(member, give, reward):
    give(member, 1000)
    session = session_for(member)
    Member.objects.filter(pk=member.pk).update(status=Member.Status.LOCKED)
    caught = refusal(lambda: buy(member, reward, session=session))
    assert (caught.code, refusal_status(caught), caught.detail) == ("member_not_active", 403, {"status": "locked"})
    assert_nothing_bought(member, reward)


def test_a_web_remember_me_session_may_not_buy(member, give, reward):
    give(member, 1000)
    web = session_for(member, channel="web", remember_me=True)
    caught = refusal(lambda: buy(member, reward, session=web))
    assert (caught.code, refusal_status(caught)) == ("redeem_not_allowed", 403)
    assert_nothing_bought(member, reward)
    # A web session without remember me, or an app session, may.
    assert buy(member, reward, key="web", session=session_for(member, channel="web")).voucher
    assert buy(member, reward, key="app", session=session_for(member, channel="app")).voucher


# --- step-up above 5,000 points -------------------------------------------------------------------


def test_5000_points_need_no_step_up(member, give, make_reward):
    reward = make_reward(points_price=5000)
    give(member, 20_000)
    assert buy(member, reward).voucher.points_paid == 5000


def test_5001_points_need_a_step_up_which_the_purchase_spends(member, give, make_reward, verified_step_up):
    reward = make_reward(points_price=5001)
    give(member, 20_000)

    caught = refusal(lambda: buy(member, reward, key="1"))
    assert (caught.code, refusal_status(caught), caught.detail) == ("step_up_required", 403, {"actions": ["redeem"]})
    assert_nothing_bought(member, reward, key="1")

    verified_step_up(member)
    assert buy(member, reward, key="1").voucher.points_paid == 5001
    # Spent: the next one needs a new step-up.
    assert refusal(lambda: buy(member, reward, key="2")).code == "step_up_required"
    assert redeem_operations(member).count() == 1


def test_a_step_up_for_another_action_does_not_do(member, give, make_reward, verified_step_up):
    reward = make_reward(points_price=5001)
    give(member, 20_000)
    verified_step_up(member, action="change_email")
    assert refusal(lambda: buy(member, reward)).code == "step_up_required"


def test_a_refused_purchase_gives_the_step_up_back(member, give, make_reward, verified_step_up, settings):
    reward = make_reward(points_price=5001)
    give(member, 20_000)
    verified_step_up(member)
    # Refused by the ledger, inside the transaction (after the early checks passed).
    settings.LOYALTY_VELOCITY = {**settings.LOYALTY_VELOCITY, "redemptions_per_day": 0}
    assert refusal(lambda: buy(member, reward, key="1")).code == "daily_redemptions_exceeded"

    settings.LOYALTY_VELOCITY = {**settings.LOYALTY_VELOCITY, "redemptions_per_day": None}
    assert buy(member, reward, key="1").voucher


def test_the_threshold_is_a_setting(member, give, make_reward, settings):
    settings.VOUCHERS = {**settings.VOUCHERS, "step_up_above_points": 100}
    give(member, 1000)
    assert refusal(lambda: buy(member, make_reward(points_price=101))).code == "step_up_required"
    assert buy(member, make_reward(points_price=100), key="2").voucher


# --- codes ----------------------------------------------------------------------------------------


def test_a_code_clash_draws_a_new_code(member, give, reward, monkeypatch):
    give(member, 2000)
    taken = buy(member, reward, key="1").voucher.code
    draws = iter([taken])
    real = issuing.code_generate
    # Steers the random draw only (the one outside thing here: randomness).
    monkeypatch.setattr(issuing, "code_generate", lambda: next(draws, None) or real())

    voucher = buy(member, reward, key="2").voucher

    assert voucher.code != taken and Voucher.objects.filter(member=member).count() == 2


# --- goodwill ------------------------------------------------------------------------------------


def test_goodwill_within_the_managers_limit(member, make_reward, staff_by_role):
    manager = staff_by_role["store_manager"]
    reward = make_reward(points_price=1000, stock_remaining=2)

    voucher = voucher_goodwill_issue(staff=manager, member=member, reward=reward, reason="  Late delivery  ")

    assert (voucher.source, voucher.points_paid, voucher.issued_by, voucher.issue_reason) == (
        "goodwill", 0, manager, "Late delivery",
    )  # fmt: skip
    reward.refresh_from_db()
    assert reward.stock_remaining == 1
    event = MemberSecurityEvent.objects.get(member=member, kind="voucher_goodwill_issued")
    assert event.detail == {"voucher_id": str(voucher.id), "reward_id": reward.pk, "staff_id": manager.pk}
    entry = LogEntry.objects.get_for_object(voucher).get()
    assert entry.actor == manager and entry.action == LogEntry.Action.CREATE
    assert entry.changes_dict["issue_reason"] == [None, "Late delivery"]
    assert voucher.code not in str(entry.changes) and voucher.code not in str(event.detail)
    assert not LedgerOperation.objects.filter(member=member).exists()


def test_goodwill_above_the_roles_limit_is_refused(member, make_reward, staff_by_role):
    reward = make_reward(points_price=1001)
    caught = refusal(
        lambda: voucher_goodwill_issue(staff=staff_by_role["store_manager"], member=member, reward=reward, reason="x")
    )
    assert (caught.code, refusal_status(caught)) == ("goodwill_above_limit", 403)
    assert caught.detail == {"limit": 1000, "points_price": 1001}
    # A programme administrator's limit is higher.
    assert voucher_goodwill_issue(staff=staff_by_role["program_admin"], member=member, reward=reward, reason="x")


@pytest.mark.parametrize("role", ["cashier", "fraud_analyst", "system_admin"])
def test_roles_without_goodwill_may_not(member, reward, staff_by_role, role):
    caught = refusal(
        lambda: voucher_goodwill_issue(staff=staff_by_role[role], member=member, reward=reward, reason="x")
    )
    assert (caught.code, refusal_status(caught)) == ("goodwill_not_permitted", 403)
    assert not Voucher.objects.exists()


def test_a_role_without_a_limit_may_not_even_with_the_permission(member, reward, staff_by_role, settings):
    settings.VOUCHERS = {**settings.VOUCHERS, "goodwill_max_points": {"program_admin": 20000}}
    manager = staff_by_role["store_manager"]
    assert manager.has_perm("vouchers.issue_goodwill_voucher")
    assert refusal(lambda: voucher_goodwill_issue(staff=manager, member=member, reward=reward, reason="x")).code == (
        "goodwill_not_permitted"
    )


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201])
def test_goodwill_needs_a_reason(member, reward, staff_by_role, reason):
    caught = refusal(
        lambda: voucher_goodwill_issue(
            staff=staff_by_role["program_admin"], member=member, reward=reward, reason=reason
        )
    )
    assert (caught.code, refusal_status(caught)) == ("reason_required", 400)


def test_staff_may_not_give_goodwill_to_their_own_member_account(member, reward, staff_by_role):
    admin_user = staff_by_role["program_admin"]
    admin_user.member_account = member
    admin_user.save(update_fields=["member_account"])
    caught = refusal(lambda: voucher_goodwill_issue(staff=admin_user, member=member, reward=reward, reason="x"))
    assert (caught.code, refusal_status(caught)) == ("own_member_account", 403)
    assert not Voucher.objects.exists()


def test_goodwill_needs_an_active_member_active_reward_and_stock(member, make_reward, staff_by_role):
    staff = staff_by_role["program_admin"]
    inactive, empty, fine = make_reward(active=False), make_reward(stock_remaining=0), make_reward()
    assert refusal(lambda: voucher_goodwill_issue(staff=staff, member=member, reward=inactive, reason="x")).code == (
        "reward_inactive"
    )
    assert refusal(lambda: voucher_goodwill_issue(staff=staff, member=member, reward=empty, reason="x")).code == (
        "out_of_stock"
    )
    Member.objects.filter(pk=member.pk).update(status=Member.Status.LOCKED)
    assert refusal(lambda: voucher_goodwill_issue(staff=staff, member=member, reward=fine, reason="x")).code == (
        "member_not_active"
    )
    assert not Voucher.objects.exists()


# --- reported lost, revoked -----------------------------------------------------------------------


@pytest.fixture
def voucher(member, give, reward):
    give(member, 1000)
    return buy(member, reward, key="v").voucher


def test_a_member_reports_a_voucher_lost(member, voucher):
    reported = voucher_report_lost(member=member, voucher_id=str(voucher.pk))
    voucher.refresh_from_db()
    assert voucher.status == "reported" and voucher.reported_at is not None and reported.pk == voucher.pk
    assert MemberSecurityEvent.objects.filter(member=member, kind="voucher_reported_lost").get().detail == {
        "voucher_id": str(voucher.pk)
    }
    again = refusal(lambda: voucher_report_lost(member=member, voucher_id=voucher.pk))
    assert (again.code, refusal_status(again), again.detail) == ("voucher_not_active", 409, {"state": "reported"})


def test_another_members_voucher_cannot_be_reported(voucher, store_a):
    other = Member.objects.create(home_store=store_a)
    for voucher_id in (voucher.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert refusal(lambda v=voucher_id: voucher_report_lost(member=other, voucher_id=v)).code == "voucher_not_found"
    voucher.refresh_from_db()
    assert voucher.status == "active"


def test_an_expired_or_redeemed_voucher_cannot_be_reported(member, voucher):
    expired = refusal(lambda: voucher_report_lost(member=member, voucher_id=voucher.pk, now=voucher.expires_at))
    assert expired.detail == {"state": "expired"}
    Voucher.objects.filter(pk=voucher.pk).update(status="redeemed", redeemed_at=timezone.now())
    assert refusal(lambda: voucher_report_lost(member=member, voucher_id=voucher.pk)).detail == {"state": "redeemed"}


def test_staff_revoke_with_the_permission_and_a_reason(member, voucher, staff_by_role):
    admin_user = staff_by_role["program_admin"]
    with pytest.raises(VoucherRefused, match="reason"):
        voucher_revoke(staff=admin_user, voucher_id=voucher.pk, reason=" ")

    voucher_revoke(staff=admin_user, voucher_id=voucher.pk, reason="Fraud case 12")

    voucher.refresh_from_db()
    assert (voucher.status, voucher.revoked_by, voucher.revoke_reason) == ("revoked", admin_user, "Fraud case 12")
    assert MemberSecurityEvent.objects.filter(member=member, kind="voucher_revoked").exists()
    entry = LogEntry.objects.get_for_object(voucher).get()
    assert entry.actor == admin_user and entry.changes_dict["status"] == ["active", "revoked"]
    again = refusal(lambda: voucher_revoke(staff=admin_user, voucher_id=voucher.pk, reason="again"))
    assert (again.code, again.detail) == ("voucher_not_active", {"state": "revoked"})


@pytest.mark.parametrize("role", ["cashier", "store_manager", "fraud_analyst", "system_admin"])
def test_only_roles_with_the_permission_revoke(voucher, staff_by_role, role):
    caught = refusal(lambda: voucher_revoke(staff=staff_by_role[role], voucher_id=voucher.pk, reason="x"))
    assert (caught.code, refusal_status(caught)) == ("permission_denied", 403)
    voucher.refresh_from_db()
    assert voucher.status == "active"


def test_revoking_an_unknown_voucher(staff_by_role):
    assert refusal(lambda: voucher_revoke(staff=staff_by_role["program_admin"], voucher_id="x", reason="x")).code == (
        "voucher_not_found"
    )


# --- selectors ---------------------------------------------------------------------------------------


def test_the_effective_state_is_expired_from_expires_at(member, voucher):
    just_before = voucher.expires_at - timedelta(microseconds=1)
    assert member_voucher_get(member=member, voucher_id=voucher.pk, now=just_before).state == "active"
    assert member_voucher_get(member=member, voucher_id=voucher.pk, now=voucher.expires_at).state == "expired"
    with time_machine.travel(voucher.expires_at, tick=False):
        assert [v.state for v in member_vouchers(member=member)] == ["expired"]
        assert list(member_vouchers(member=member, state="active")) == []


def test_a_voucher_is_found_only_by_its_member(member, voucher, store_a):
    other = Member.objects.create(home_store=store_a)
    assert member_voucher_get(member=member, voucher_id=str(voucher.pk)).pk == voucher.pk
    assert member_voucher_get(member=other, voucher_id=voucher.pk) is None
    assert member_voucher_get(member=member, voucher_id="nope") is None


def test_the_catalogue_says_why_a_member_may_not_buy(member, give, make_reward):
    give(member, 1000, tier=1)
    now = timezone.now()
    ok = make_reward(name="A ok", points_price=100)
    dear = make_reward(name="B dear", points_price=1001)
    tiered = make_reward(name="C tier", points_price=200, min_tier=3)
    empty = make_reward(name="D empty", points_price=300, stock_remaining=0)
    soon = make_reward(name="E soon", points_price=400, available_from=now + timedelta(days=1))
    limited = make_reward(name="F limited", points_price=50, per_member_limit=1)
    big = make_reward(name="G big", points_price=5001)
    make_reward(name="hidden inactive", active=False)
    make_reward(name="hidden ended", available_from=now - timedelta(days=2), available_until=now - timedelta(days=1))
    buy(member, limited)

    entries = {e.reward.pk: e for e in reward_catalogue(member=member, now=now)}

    assert set(entries) == {ok.pk, dear.pk, tiered.pk, empty.pk, soon.pk, limited.pk, big.pk}
    assert entries[ok.pk].eligible and entries[ok.pk].reasons == []
    assert entries[dear.pk].reasons == ["insufficient_points"]
    assert entries[tiered.pk].reasons == ["tier_too_low"]
    assert entries[empty.pk].reasons == ["out_of_stock"]
    assert entries[soon.pk].reasons == ["reward_not_yet_available"]
    assert entries[limited.pk].reasons == ["per_member_limit_reached"] and entries[limited.pk].held == 1
    assert entries[big.pk].step_up_required and not entries[ok.pk].step_up_required


# --- races ------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_in_stock_and_ten_buyers_gives_one_voucher_and_one_debit(give, make_reward, store_a):
    reward = make_reward(points_price=500, stock_remaining=1)
    buyers = [Member.objects.create(home_store=store_a) for _ in range(10)]
    for buyer in buyers:
        give(buyer, 1000)

    results = purchases_raced(reward, [(buyer, "race", session_for(buyer)) for buyer in buyers])

    assert sorted(r if isinstance(r, str) else "bought" for r in results) == ["bought"] + ["out_of_stock"] * 9
    assert Voucher.objects.count() == 1
    assert LedgerOperation.objects.filter(kind=LedgerOperation.Kind.REDEEM).count() == 1
    assert sorted(available(b) for b in buyers) == [500] + [1000] * 9
    reward.refresh_from_db()
    assert reward.stock_remaining == 0
    assert_ledger_verified()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_per_member_limit_holds_under_a_race(member, give, make_reward):
    give(member, 5000)
    reward = make_reward(points_price=100, per_member_limit=1)

    results = purchases_raced(reward, [(member, f"k{n}", session_for(member)) for n in range(4)])

    assert (
        sorted(r if isinstance(r, str) else "bought" for r in results) == ["bought"] + ["per_member_limit_reached"] * 3
    )
    assert Voucher.objects.filter(member=member).count() == 1
    assert redeem_operations(member).count() == 1 and available(member) == 4900
    assert_ledger_verified()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_key_raced_eight_times_gives_one_voucher(member, give, make_reward):
    reward = make_reward(points_price=100, stock_remaining=20)
    give(member, 5000)
    session = session_for(member)

    results = race(
        *(
            lambda: voucher_purchase(member=member, reward_id=reward.pk, idempotency_key="once", session=session)
            for _ in range(8)
        )
    )

    assert len({r.voucher.pk for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 7
    assert Voucher.objects.count() == 1 and redeem_operations(member).count() == 1
    assert available(member) == 4900
    reward.refresh_from_db()
    assert reward.stock_remaining == 19
    assert_ledger_verified()


def test_goodwill_with_the_same_issue_key_gives_the_first_voucher(member, make_reward, staff_by_role):
    manager = staff_by_role["store_manager"]
    reward = make_reward(points_price=500, stock_remaining=3)

    first = voucher_goodwill_issue(staff=manager, member=member, reward=reward, reason="Late", issue_key="a" * 32)
    again = voucher_goodwill_issue(staff=manager, member=member, reward=reward, reason="Late", issue_key="a" * 32)
    other = voucher_goodwill_issue(staff=manager, member=member, reward=reward, reason="Late", issue_key="b" * 32)

    assert again.pk == first.pk and other.pk != first.pk
    reward.refresh_from_db()
    assert reward.stock_remaining == 1
    assert MemberSecurityEvent.objects.filter(member=member, kind="voucher_goodwill_issued").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_goodwill_form_submitted_six_times_at_once_gives_one_voucher(member, make_reward, staff_by_role):
    manager = staff_by_role["store_manager"]
    reward = make_reward(points_price=500, stock_remaining=10)

    results = race(
        *(
            lambda: voucher_goodwill_issue(
                staff=manager, member=member, reward=reward, reason="Double click", issue_key="c" * 32
            )
            for _ in range(6)
        )
    )

    assert len({voucher.pk for voucher in results}) == 1
    assert Voucher.objects.count() == 1
    reward.refresh_from_db()
    assert reward.stock_remaining == 9
