"""The till's redemption limits (spec "POS Redemption Controls": "Validate redemption
limits (min/max)", "Alert on high redemption frequency by cashier", issue 6: "within
the cashier's and store's limits"): one cashier frequency rule over vouchers and points,
the minimum and maximum of a points hold, the store's daily cap over both kinds (exact
boundaries, the local day, and two tills racing for the last points of the cap)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import partial

import pytest
from django.utils import timezone

from fraud.models import FraudAlert
from loyalty.kernel.statuses import refusal_status
from loyalty.ledger.models import LedgerOperation
from members.services.membership import member_create
from tests.concurrency import race
from tests.vouchers import till_helpers
from tests.vouchers.till_api_helpers import error
from tests.vouchers.till_api_helpers import hold as http_hold
from tests.vouchers.till_helpers import (
    authorise_by_app,
    available,
    capture,
    hold,
    open_shift,
    redeem,
    refused,
)
from vouchers.models import TillRedemption, Voucher, VoucherRedemption, VoucherScan
from vouchers.services.limits import cashier_frequency_check, store_points_redeemed_today
from vouchers.services.redemption import RedemptionRefused, voucher_redeem, voucher_validate
from vouchers.services.till_controls import TillPointsRefused

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings", "sms_outbox")]


def voucher_refusal(call, *args, **kwargs) -> RedemptionRefused:
    with pytest.raises(RedemptionRefused) as caught:
        call(*args, **kwargs)
    return caught.value


def captured(shift, member, points, n, **kwargs):
    """A points redemption carried through: hold, the member's app confirmation, capture."""
    hold_id = hold(shift, member, points, f"h-{n}").body["hold_id"]
    authorise_by_app(member, hold_id)
    return capture(shift, hold_id, f"c-{n}", **kwargs)


def frequency_alerts():
    return FraudAlert.objects.filter(kind="cashier_redemption_frequency")


@pytest.fixture
def cap(settings):
    def set_cap(points: int):
        settings.VOUCHERS = {**settings.VOUCHERS, "store_daily_redeem_points": points}

    return set_cap


# --- one frequency rule for vouchers and points --------------------------------------------------


def test_the_shipped_limits():
    from django.conf import settings

    shipped = {k: settings.VOUCHERS[k] for k in ("redeem_min_points", "redeem_max_points", "store_daily_redeem_points")}
    assert shipped == {"redeem_min_points": 100, "redeem_max_points": 50_000, "store_daily_redeem_points": 0}


@pytest.mark.parametrize(("captures", "alerts"), [(11, 1), (10, 0)])
def test_vouchers_and_points_captures_count_together_for_the_cashier(on_shift, shopper, make_voucher, captures, alerts):
    """Threshold 20 (the till_settings fixture): 10 vouchers and 11 captures are 21, above
    it: one alert; 10 and 10 are 20, at it: none."""
    for n in range(10):
        redeem(on_shift, make_voucher(points=100), f"v-{n}")
    for n in range(captures):
        assert captured(on_shift, shopper, 100, n).status_code == 201

    assert frequency_alerts().count() == alerts
    if alerts:
        alert = frequency_alerts().get()
        assert (alert.staff, alert.store) == (on_shift.staff, on_shift.store)
        assert alert.detail["redemptions"] == 21 and alert.detail["threshold"] == 20
        # Later redemptions in the window find the same alert, from either side.
        redeem(on_shift, make_voucher(points=100), "v-late")
        assert frequency_alerts().count() == 1
        assert cashier_frequency_check(staff_id=on_shift.staff_id, store_id=on_shift.store_id, now=timezone.now())
        assert frequency_alerts().count() == 1


def test_a_points_capture_counts_for_the_cashier_who_took_the_hold_not_others(
    settings, on_shift, shopper, make_voucher, make_staff, store_a, till_for
):
    settings.VOUCHERS = {**settings.VOUCHERS, "cashier_redemptions_alert": 1}
    other = open_shift(make_staff("cashier2", "cashier", stores=[store_a]), till_for())
    redeem(other, make_voucher(points=100), "v-other")
    captured(on_shift, shopper, 100, 1)
    assert not frequency_alerts().exists()  # one each

    redeem(on_shift, make_voucher(points=100), "v-own")

    alert = frequency_alerts().get()  # the voucher tipped it, over the capture
    assert alert.staff == on_shift.staff and alert.detail["redemptions"] == 2


# --- the minimum and maximum of a points hold ----------------------------------------------------


def test_a_hold_of_99_points_is_below_the_minimum_and_100_is_not(on_shift, shopper):
    refusal = refused(hold, on_shift, shopper, 99)
    assert (refusal.code, refusal_status(refusal), refusal.detail) == (
        "below_minimum_redemption",
        422,
        {"points": 99, "minimum": 100},
    )
    assert not LedgerOperation.objects.filter(kind="hold").exists()
    assert hold(on_shift, shopper, 100, "k-100").ok


def test_a_hold_above_the_maximum_is_refused_even_with_an_override(settings, on_shift, manager, shopper):
    refusal = refused(hold, on_shift, shopper, 50_001, override=till_helpers.credentials(manager))
    assert (refusal.code, refusal_status(refusal), refusal.detail) == (
        "above_maximum_redemption",
        422,
        {"points": 50_001, "maximum": 50_000},
    )
    settings.VOUCHERS = {**settings.VOUCHERS, "redeem_max_points": 400}
    assert refused(hold, on_shift, shopper, 401).code == "above_maximum_redemption"
    assert hold(on_shift, shopper, 400, "k-400").ok
    assert TillRedemption.objects.get().points == 400


def test_the_till_api_answers_422_with_the_limit(pos, shopper):
    response = http_hold(pos, shopper, 99)
    assert (response.status_code, error(response)) == (422, "below_minimum_redemption")
    assert response.json()["error"]["detail"] == {"points": 99, "minimum": 100}
    response = http_hold(pos, shopper, 50_001, key="k-max")
    assert (response.status_code, error(response)) == (422, "above_maximum_redemption")
    assert not LedgerOperation.objects.filter(kind="hold").exists()


# --- the store's daily cap -----------------------------------------------------------------------


def test_the_cap_counts_points_and_vouchers_and_allows_reaching_it_exactly(cap, on_shift, shopper, make_voucher):
    cap(1000)
    captured(on_shift, shopper, 400, 1)
    redeem(on_shift, make_voucher(points=300), "v-1")
    assert store_points_redeemed_today(store_id=on_shift.store_id, now=timezone.now()) == 700

    assert captured(on_shift, shopper, 300, 2).status_code == 201  # 1,000: the cap itself
    assert store_points_redeemed_today(store_id=on_shift.store_id, now=timezone.now()) == 1000

    one_more = make_voucher(points=1)
    for call in (voucher_validate, voucher_redeem):
        kwargs = {"idempotency_key": "v-2"} if call is voucher_redeem else {}
        refusal = voucher_refusal(
            call,
            till=on_shift.till,
            shift=on_shift,
            code=one_more.code,
            member_loyalty_number=one_more.member.loyalty_number,
            **kwargs,
        )
        assert (refusal.code, refusal_status(refusal)) == ("store_daily_limit_reached", 403)
        assert refusal.detail == {"limit": 1000, "used": 1000, "points": 1}
        assert VoucherScan.objects.order_by("-id").first().result == "store_daily_limit_reached"
    one_more.refresh_from_db()
    assert one_more.status == Voucher.Status.ACTIVE and not VoucherRedemption.objects.filter(voucher=one_more)

    refusal = refused(hold, on_shift, shopper, 100, "h-over")
    assert (refusal.code, refusal_status(refusal)) == ("store_daily_limit_reached", 403)


def test_a_capture_past_the_cap_is_refused_and_captures_nothing(cap, on_shift, shopper, make_voucher):
    cap(1000)
    captured(on_shift, shopper, 300, 1)
    hold_id = hold(on_shift, shopper, 400, "h-2").body["hold_id"]  # 700 ≤ 1,000 when held
    authorise_by_app(shopper, hold_id)
    redeem(on_shift, make_voucher(points=400), "v-1")  # 700 used: 400 more would be 1,100
    before = available(shopper)

    refusal = refused(capture, on_shift, hold_id, "c-2")

    assert (refusal.code, refusal_status(refusal)) == ("store_daily_limit_reached", 403)
    assert refusal.detail == {"limit": 1000, "used": 700, "points": 400}
    record = TillRedemption.objects.get(hold_operation_id=hold_id)
    assert record.captured_at is None and LedgerOperation.objects.filter(kind="capture").count() == 1
    assert available(shopper) == before
    # The same key is judged again (nothing was saved under it): 300 of the hold fit exactly.
    assert capture(on_shift, hold_id, "c-2", points=300).status_code == 201
    assert store_points_redeemed_today(store_id=on_shift.store_id, now=timezone.now()) == 1000
    # A retry of a capture made answers its receipt, even once the cap is lowered below it.
    cap(500)
    again = capture(on_shift, hold_id, "c-2", points=300)
    assert (again.status_code, again.replayed, again.body["receipt"]["points_redeemed"]) == (201, True, 300)


def test_the_cap_is_per_store(cap, on_shift, shopper, make_staff, store_b, make_voucher, till_for):
    cap(300)
    redeem(on_shift, make_voucher(points=300), "v-a")
    elsewhere = open_shift(make_staff("cashier-b", "cashier", stores=[store_b]), till_for(store_b))
    redeem(elsewhere, make_voucher(points=300), "v-b")
    assert VoucherRedemption.objects.count() == 2


def test_the_cap_is_of_the_local_day(cap, cashier, till, make_voucher):
    cap(600)
    midnight = datetime.combine(timezone.localdate(), time.min, tzinfo=timezone.get_current_timezone())
    shift = open_shift(cashier, till, started_at=midnight - timedelta(hours=1))

    def voucher(points):
        return make_voucher(points=points, issued_at=midnight - timedelta(days=2))

    redeem(shift, voucher(300), "before", now=midnight - timedelta(seconds=1))
    assert store_points_redeemed_today(store_id=till.store_id, now=midnight - timedelta(seconds=1)) == 300
    redeem(shift, voucher(300), "at", now=midnight)
    redeem(shift, voucher(300), "after", now=midnight + timedelta(seconds=1))  # 600: the cap
    assert store_points_redeemed_today(store_id=till.store_id, now=midnight + timedelta(seconds=1)) == 600

    refusal = voucher_refusal(redeem, shift, voucher(1), "over", now=midnight + timedelta(seconds=2))
    assert refusal.code == "store_daily_limit_reached" and refusal.detail["used"] == 600


def test_without_a_cap_nothing_is_refused(on_shift, shopper, make_voucher):
    for n in range(3):
        redeem(on_shift, make_voucher(points=499), f"v-{n}")
    assert captured(on_shift, shopper, 499, 1).status_code == 201


def test_the_till_api_answers_403_store_daily_limit_reached(cap, pos, shopper):
    cap(300)
    assert http_hold(pos, shopper, 300).status_code == 201
    response = http_hold(pos, shopper, 301, key="k-2")
    assert (response.status_code, error(response)) == (403, "store_daily_limit_reached")
    assert response.json()["error"]["detail"] == {"limit": 300, "used": 0, "points": 301}


# --- two tills racing for the last points of the cap ---------------------------------------------


def _racing_tills(make_staff, store_a, till_for, n):
    return [open_shift(make_staff(f"racer{i}", "cashier", stores=[store_a], otp=False), till_for()) for i in range(n)]


def _attempt_voucher(shift, voucher, key):
    try:
        voucher_redeem(
            till=shift.till,
            shift=shift,
            idempotency_key=key,
            code=voucher.code,
            member_loyalty_number=voucher.member.loyalty_number,
        )
    except RedemptionRefused as refusal:
        return refusal.code
    return "ok"


def _attempt_capture(shift, hold_id, key):
    try:
        outcome = capture(shift, hold_id, key)
    except TillPointsRefused as refusal:
        return refusal.code
    return "ok" if outcome.status_code == 201 else outcome.error_code


@pytest.mark.django_db(transaction=True)
def test_two_tills_cannot_both_pass_the_cap_with_vouchers(settings, make_staff, store_a, till_for, make_voucher):
    settings.VOUCHERS = {**settings.VOUCHERS, "store_daily_redeem_points": 500}
    shifts = _racing_tills(make_staff, store_a, till_for, 2)
    vouchers = [make_voucher(points=300), make_voucher(points=300)]

    results = race(*(partial(_attempt_voucher, shifts[i], vouchers[i], f"race-{i}") for i in range(2)))

    assert sorted(results) == ["ok", "store_daily_limit_reached"]
    assert VoucherRedemption.objects.count() == 1
    assert Voucher.objects.filter(status=Voucher.Status.REDEEMED).count() == 1
    assert store_points_redeemed_today(store_id=store_a.pk, now=timezone.now()) == 300


@pytest.mark.django_db(transaction=True)
def test_a_voucher_and_a_points_capture_cannot_both_pass_the_cap(settings, make_staff, store_a, till_for, make_voucher):
    settings.VOUCHERS = {**settings.VOUCHERS, "store_daily_redeem_points": 500}
    voucher_shift, points_shift = _racing_tills(make_staff, store_a, till_for, 2)
    shopper = member_create(home_store=store_a, name="Racer", phone=till_helpers.PHONE)
    till_helpers.give(shopper, points_shift.till, 1000)
    hold_id = hold(points_shift, shopper, 300).body["hold_id"]
    authorise_by_app(shopper, hold_id)
    voucher = make_voucher(points=300)

    results = race(
        partial(_attempt_voucher, voucher_shift, voucher, "race-v"),
        partial(_attempt_capture, points_shift, hold_id, "race-c"),
    )

    assert sorted(results) == ["ok", "store_daily_limit_reached"]
    redeemed = VoucherRedemption.objects.count() + TillRedemption.objects.filter(captured_at__isnull=False).count()
    assert redeemed == 1
    assert store_points_redeemed_today(store_id=store_a.pk, now=timezone.now()) == 300
