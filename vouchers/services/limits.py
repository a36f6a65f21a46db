"""The till's redemption limits, one for vouchers and points: the store's daily cap,
the cashier frequency rule and the audit sample (``vouchers.services.redemption`` and
``vouchers.services.till_points`` both apply them)."""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from fraud.models import FraudAlert
from fraud.services import cashier_frequency_alert_raise
from loyalty.kernel.models import Store
from loyalty.kernel.refusals import Refusal
from vouchers.models import TillRedemption, VoucherRedemption


def cashier_frequency_check(
    *, staff_id: int, store_id: int, now: datetime, shift_id: int | None = None
) -> FraudAlert | None:
    """The cashier frequency rule, one for vouchers and points at the till: the staff
    member's voucher redemptions (``redeemed_at``) and captured points redemptions
    (``TillRedemption.captured_at``, counted for the cashier who took the hold) in the
    ``VOUCHERS["cashier_redemptions_window_minutes"]`` ending at ``now``, together; above
    ``VOUCHERS["cashier_redemptions_alert"]`` one ``cashier_redemption_frequency`` alert
    per staff member and window (whichever kind tips it). Returns the alert, or None when
    within the threshold (or the rule is switched off: no threshold, no window). Call it
    after the redemption committed."""
    threshold = settings.VOUCHERS.get("cashier_redemptions_alert")
    minutes = int(settings.VOUCHERS.get("cashier_redemptions_window_minutes", 60))
    if threshold is None or minutes <= 0:
        return None
    since = now - timedelta(minutes=minutes)
    count = (
        VoucherRedemption.objects.filter(staff_id=staff_id, redeemed_at__gt=since, redeemed_at__lte=now).count()
        + TillRedemption.objects.filter(staff_id=staff_id, captured_at__gt=since, captured_at__lte=now).count()
    )
    if count <= threshold:
        return None
    return cashier_frequency_alert_raise(
        staff_id=staff_id,
        store_id=store_id,
        redemptions=count,
        threshold=threshold,
        window_minutes=minutes,
        now=now,
        shift_id=shift_id,
    )


# --- the store's daily cap -----------------------------------------------------------------------


class StoreDailyLimitReached(Refusal):
    """The store's daily redemption cap would be passed: ``detail`` {limit, used, points}."""

    code = "store_daily_limit_reached"
    message = "This store has reached its daily redemption limit."

    def __init__(self, *, limit: int, used: int, points: int):
        super().__init__(limit=limit, used=used, points=points)


def store_daily_limit() -> int:
    """``VOUCHERS["store_daily_redeem_points"]``; 0 (or less): no cap."""
    return max(int(settings.VOUCHERS.get("store_daily_redeem_points", 0) or 0), 0)


def store_points_redeemed_today(*, store_id: int, now: datetime) -> int:
    """Points redeemed at the store in the local day (``TIME_ZONE``) of ``now``: points
    captured at its tills plus its voucher redemptions by their reward's points price."""
    start = datetime.combine(timezone.localdate(now), time.min, tzinfo=timezone.get_current_timezone())
    end = start + timedelta(days=1)
    vouchers = VoucherRedemption.objects.filter(store_id=store_id, redeemed_at__gte=start, redeemed_at__lt=end)
    points = TillRedemption.objects.filter(store_id=store_id, captured_at__gte=start, captured_at__lt=end)
    return (vouchers.aggregate(total=Sum("voucher__reward__points_price"))["total"] or 0) + (
        points.aggregate(total=Sum("captured_points"))["total"] or 0
    )


def store_daily_limit_lock(*, store_id: int) -> bool:
    """Lock the store's row for the rest of the caller's transaction when the store has a
    daily cap (the redemptions counted against it are then recorded one after another);
    True when it did. Without a cap nothing is locked."""
    if not store_daily_limit():
        return False
    Store.objects.select_for_update().filter(pk=store_id).first()
    return True


def store_daily_limit_check(*, store_id: int, points: int, now: datetime, lock: bool = False) -> None:
    """Refuse ``points`` more at the store today if they would take it past its daily cap
    (reaching the cap exactly is allowed). ``lock=True`` (inside the transaction that
    records the redemption) locks the store's row first, so concurrent redemptions at the
    store's tills are counted one after another and cannot both pass the cap; without a
    cap nothing is locked. Raises StoreDailyLimitReached."""
    limit = store_daily_limit()
    if not limit:
        return
    if lock:
        store_daily_limit_lock(store_id=store_id)
    used = store_points_redeemed_today(store_id=store_id, now=now)
    if used + points > limit:
        raise StoreDailyLimitReached(limit=limit, used=used, points=points)


def audit_sample(percent: float | None = None) -> bool:
    """True for a random ``percent`` share of calls (``secrets``, in 1/10,000ths)."""
    percent = settings.VOUCHERS.get("audit_sample_percent", 0) if percent is None else percent
    return secrets.randbelow(10_000) < round(float(percent) * 100)
