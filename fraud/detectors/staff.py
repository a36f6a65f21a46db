"""Staff detectors (FRAUD.md rows 26-27).

- Row 26, the till's alerts: ``voucher_rescan``, ``cashier_redemption_frequency`` and
  ``redemption_irregular`` are raised inside the voucher services' transactions through
  ``fraud.services`` (``TILL_ALERTS``); each signals the staff member, the till and the
  store with its catalogue weight (settings.FRAUD: 40, 25, 40).
- Row 27, ``staff_linked_accounts`` (nightly): a member who shares a device with a staff
  member's own member account (``StaffUser.member_account``), or who got ``min_count``
  (3) or more of that staff member's adjustment requests, goodwill vouchers and
  redemptions (vouchers and points at the till) in ``window_days`` (90). One alert per
  (staff member, member) and quarter, its case about the staff member. The staff
  member's own account is left out: adjusting it (``own_account``), issuing it goodwill
  and redeeming to it on shift (``own_member_account``) are refused where they happen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection

from fraud import config as fraud_config
from fraud.scoring import Subject
from fraud.services import (
    alert_raise,
    cashier_frequency_alert_raise,
    redemption_irregular_alert_raise,
    voucher_rescan_alert_raise,
)
from loyalty.adjustments.models import AdjustmentRequest
from members.models import MemberDevice
from staffauth.models import StaffUser
from vouchers.models import TillRedemption, Voucher, VoucherRedemption

# Row 26: raised by vouchers.services.redemption in the till's transaction (code -> raiser).
TILL_ALERTS: dict[str, Callable[..., Any]] = {
    "voucher_rescan": voucher_rescan_alert_raise,
    "cashier_redemption_frequency": cashier_frequency_alert_raise,
    "redemption_irregular": redemption_irregular_alert_raise,
}


def _quarter(as_of: datetime) -> str:
    return f"{as_of.year}Q{(as_of.month - 1) // 3 + 1}"


def _linked_pairs(*, start: datetime, end: datetime, min_count: int) -> list[tuple[int, int, dict[str, int]]]:
    """(staff id, member id, counts) of every linked pair, one query: acts by staff for
    members in (start, end] counted per pair (kept at ``min_count``), and members sharing
    a device seen in the window with a staff member's own account."""
    tables = {
        "adjustment": AdjustmentRequest._meta.db_table,
        "voucher": Voucher._meta.db_table,
        "voucher_redemption": VoucherRedemption._meta.db_table,
        "till_redemption": TillRedemption._meta.db_table,
        "device": MemberDevice._meta.db_table,
        "staff": StaffUser._meta.db_table,
    }
    # Table names from the models (static text); every value is a bound parameter.
    sql = f"""
        WITH acts AS (
            SELECT requested_by_id AS staff_id, member_id, 'adjustments' AS act
              FROM {tables["adjustment"]}
             WHERE requested_at > %(start)s AND requested_at <= %(end)s AND state <> 'rejected'
            UNION ALL
            SELECT issued_by_id, member_id, 'goodwill'
              FROM {tables["voucher"]}
             WHERE source = 'goodwill' AND issued_by_id IS NOT NULL
               AND issued_at > %(start)s AND issued_at <= %(end)s
            UNION ALL
            SELECT r.staff_id, v.member_id, 'redemptions'
              FROM {tables["voucher_redemption"]} r JOIN {tables["voucher"]} v ON v.id = r.voucher_id
             WHERE r.staff_id IS NOT NULL AND r.redeemed_at > %(start)s AND r.redeemed_at <= %(end)s
            UNION ALL
            SELECT staff_id, member_id, 'redemptions'
              FROM {tables["till_redemption"]}
             WHERE voided_at IS NULL AND created_at > %(start)s AND created_at <= %(end)s
        ), counted AS (
            SELECT a.staff_id, a.member_id,
                   count(*) FILTER (WHERE act = 'adjustments') AS adjustments,
                   count(*) FILTER (WHERE act = 'goodwill') AS goodwill,
                   count(*) FILTER (WHERE act = 'redemptions') AS redemptions
              FROM acts a JOIN {tables["staff"]} s ON s.id = a.staff_id
             WHERE a.member_id IS DISTINCT FROM s.member_account_id
             GROUP BY a.staff_id, a.member_id
            HAVING count(*) >= %(min_count)s
        ), shared AS (
            SELECT s.id AS staff_id, other.member_id, count(DISTINCT own.id) AS shared_devices
              FROM {tables["staff"]} s
              JOIN {tables["device"]} own ON own.member_id = s.member_account_id
              JOIN {tables["device"]} other
                ON other.fingerprint_hash = own.fingerprint_hash AND other.member_id <> own.member_id
             WHERE own.last_seen_at > %(start)s AND other.last_seen_at > %(start)s
               AND own.first_seen_at <= %(end)s AND other.first_seen_at <= %(end)s
             GROUP BY s.id, other.member_id
        )
        SELECT coalesce(c.staff_id, d.staff_id), coalesce(c.member_id, d.member_id),
               coalesce(c.adjustments, 0), coalesce(c.goodwill, 0), coalesce(c.redemptions, 0),
               coalesce(d.shared_devices, 0)
          FROM counted c FULL JOIN shared d ON d.staff_id = c.staff_id AND d.member_id = c.member_id
         ORDER BY 1, 2
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, {"start": start, "end": end, "min_count": min_count})
        rows = cursor.fetchall()
    return [
        (staff_id, member_id, {"adjustments": adj, "goodwill": gw, "redemptions": red, "shared_devices": dev})
        for staff_id, member_id, adj, gw, red, dev in rows
    ]


def staff_linked_accounts(as_of: datetime) -> int:
    """Row 27 (nightly, ``as_of`` its end): raise one alert with a case about the staff
    member for each linked (staff member, member) pair. Idempotent within a quarter.
    Returns the number of pairs found."""
    code = "staff_linked_accounts"
    window_days = fraud_config.threshold(code, "window_days")
    pairs = _linked_pairs(
        start=as_of - timedelta(days=window_days), end=as_of, min_count=fraud_config.threshold(code, "min_count")
    )
    for staff_id, member_id, counts in pairs:
        alert_raise(
            detector=code, subjects=[Subject.staff(staff_id)],
            facts={**counts, "member_id": member_id, "staff_id": staff_id, "window_days": window_days},
            occurred_at=as_of, dedupe_key=f"{code}:staff:{staff_id}:member:{member_id}:{_quarter(as_of)}",
            severity="high", staff_id=staff_id, member_id=member_id,
        )  # fmt: skip
    return len(pairs)


# Batch detectors: code -> callable(as_of) (fraud.detectors.DETECTORS).
DETECTORS: dict[str, Callable[[datetime], Any]] = {
    "staff_linked_accounts": staff_linked_accounts,
}
