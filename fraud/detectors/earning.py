"""Earning detectors (FRAUD.md rows 2-3) and the member-day figures they read.

- ``member_day_stats_refresh(start_day, end_day)``: upserts ``MemberDayStats`` from the
  ledger in one ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT`` (the SELECT is the
  ledger's own selector, ``member_day_figures``).
- ``earn_above_baseline(start, end)`` (MB): today's earned points above 1.5 x the
  member's baseline B and at least 500 over it.
- ``velocity_cap_streak(as_of)`` (NB): days at the daily earn cap, 3 in a row or 4 in 7.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from fraud import config
from fraud.detectors.common import day_start, dedupe, incident_alerted, local_day
from fraud.detectors.runs import daily_memo, ruleset_version
from fraud.models import MemberDayStats
from fraud.scoring import Subject
from fraud.services import alert_raise
from loyalty.ledger import selectors as ledger
from loyalty.ledger.policy import tier_rules
from members.models import Member

EARN_ABOVE_BASELINE = "earn_above_baseline"
VELOCITY_CAP_STREAK = "velocity_cap_streak"
CAP_REFUSALS = ["daily_earn_transactions_exceeded", "daily_earn_points_exceeded"]
# MemberDayStats column <- member_day_figures' column.
STATS_COLUMNS = {
    "earns": "earns", "points": "earned_points", "base_points": "base_points", "returns": "returns", "redemptions": "redemptions",
    "redeemed_points": "redeemed_points",
}  # fmt: skip


def member_day_stats_refresh(*, first_day: date, last_day: date, until: datetime | None = None) -> int:
    """Recompute every member's figures for the local days ``first_day``..``last_day``
    (read up to ``until`` when given: today's partial day) and upsert them. Set-based,
    one statement; returns the rows written."""
    start = day_start(first_day)
    end = day_start(last_day + timedelta(days=1))
    if until is not None:
        end = min(end, until)
    figures_sql, params = ledger.member_day_figures(start=start, end=end).query.sql_with_params()
    table = MemberDayStats._meta.db_table
    columns = ", ".join(STATS_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*STATS_COLUMNS, "refreshed_at"))
    sql = (
        f"INSERT INTO {table} (member_id, day, {columns}, refreshed_at) "  # noqa: S608 (constants only)
        f"SELECT f.member_id, f.day, {', '.join('f.' + c for c in STATS_COLUMNS.values())}, %s FROM ({figures_sql}) f "
        f"ON CONFLICT (member_id, day) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), *params])
        return int(cursor.rowcount)


def member_day_stats_nightly(today: date) -> int:
    """The nightly refresh: the two local days before ``today`` (yesterday's late earns,
    and the day before's, which the last micro-batch of the day may have missed)."""
    return member_day_stats_refresh(first_day=today - timedelta(days=2), last_day=today - timedelta(days=1))


# Today's earners beside their own baseline (points over their earning days in the prior
# window). Params: today, min points today, window start, today, joined-before.
_BASELINE_SQL = """
WITH today AS (
  SELECT s.member_id, s.base_points AS points FROM {stats} s WHERE s.day = %s AND s.base_points >= %s
), own AS (
  SELECT s.member_id, SUM(s.base_points) AS points, COUNT(*) AS days
  FROM {stats} s JOIN today t ON t.member_id = s.member_id
  WHERE s.day >= %s AND s.day < %s AND s.earns > 0
  GROUP BY s.member_id
)
SELECT t.member_id, t.points, o.points, COALESCE(o.days, 0), m.tier, m.created_at <= %s
FROM today t JOIN {members} m ON m.id = t.member_id
LEFT JOIN own o ON o.member_id = t.member_id
ORDER BY t.member_id
"""
# Each tier's median earning day in the window (its members' tier today). Params: window
# start, today.
_TIER_MEDIAN_SQL = """
SELECT m.tier, percentile_cont(0.5) WITHIN GROUP (ORDER BY s.base_points)
FROM {stats} s JOIN {members} m ON m.id = s.member_id
WHERE s.day >= %s AND s.day < %s AND s.earns > 0
GROUP BY m.tier
"""


def _tier_medians(window_start: date, today: date) -> dict[str, int]:
    sql = _TIER_MEDIAN_SQL.format(stats=MemberDayStats._meta.db_table, members=Member._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [window_start, today])
        return {str(tier): int(median) for tier, median in cursor.fetchall()}


def earn_above_baseline(start: datetime, end: datetime) -> dict[str, Any]:
    """Row 2 (MB). Refreshes today's figures (up to ``end``), then alerts each member
    whose points today exceed ``ratio_percent`` of B and B by ``min_over_points``. Points
    are standard points (``MemberDayStats.base_points``: the purchases at the base rate,
    before tier multipliers), so that a tier upgrade is not a spike. B is
    the member's points over their earning days in the prior ``baseline_days`` local
    days, divided by those days, when they have ``min_earning_days`` of them and have
    been members ``min_membership_days``; else their tier's median earning day. One
    alert per member and day (re-runs find it)."""
    cfg = config.detector(EARN_ABOVE_BASELINE).thresholds
    today = local_day(end - timedelta(microseconds=1))
    member_day_stats_refresh(first_day=today, last_day=today, until=end)
    window_start = today - timedelta(days=cfg["baseline_days"])
    joined_before = end - timedelta(days=cfg["min_membership_days"])
    sql = _BASELINE_SQL.format(stats=MemberDayStats._meta.db_table, members=Member._meta.db_table)
    params: list[Any] = [today, cfg["min_over_points"], window_start, today, joined_before]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    version, raised = ruleset_version(), 0
    medians: dict[str, int] | None = None
    for member_id, points, own_points, days, tier, senior in rows:
        if senior and days >= cfg["min_earning_days"]:
            baseline, basis = int(own_points) // int(days), "own"
        else:
            if medians is None:  # once a day (the window is whole days before today)
                medians = daily_memo(
                    f"{EARN_ABOVE_BASELINE}:tiers", f"{today}:r{version}", partial(_tier_medians, window_start, today)
                )
            if str(tier) not in medians:
                continue  # nobody in the tier earned in the window: no baseline to compare with
            baseline, basis = medians[str(tier)], "tier_median"
        points = int(points)
        if points * 100 <= baseline * cfg["ratio_percent"] or points - baseline < cfg["min_over_points"]:
            continue
        result = alert_raise(
            detector=EARN_ABOVE_BASELINE,
            subjects=[Subject.member(member_id)],
            facts={"today": points, "baseline": baseline, "days": int(days), "basis": basis, "tier": tier},
            occurred_at=end,
            dedupe_key=dedupe(EARN_ABOVE_BASELINE, f"member:{member_id}", today, version),
            member_id=member_id,
        )
        raised += int(result.created)
    return {"candidates": len(rows), "alerts": raised}


def _streak(days: set[date]) -> int:
    longest = run = 0
    previous: date | None = None
    for day in sorted(days):
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest, previous = max(longest, run), day
    return longest


def velocity_cap_streak(as_of: datetime) -> dict[str, Any]:
    """Row 3 (NB). Over the 7 local days before ``as_of``'s day, the days each member hit
    the daily earn cap (row 1): a velocity refusal of an earn that day, or that day's
    earns at the count limit or points at their tier's cap. ``days_in_a_row`` consecutive
    such days or ``days_in_week`` of the 7 raise one alert (per member and 7 days: a
    streak that goes on keeps its first alert)."""
    cfg = config.detector(VELOCITY_CAP_STREAK).thresholds
    today = local_day(as_of)
    first = today - timedelta(days=7)
    start, end = day_start(first), day_start(today)
    cap_days: dict[int, set[date]] = {}
    for row in ledger.refusal_counts_by_member_day(start=start, end=end, codes=CAP_REFUSALS).iterator():
        cap_days.setdefault(row["member_id"], set()).add(row["day"])
    per_day = settings.LOYALTY_VELOCITY.get("earn_transactions_per_day")
    lowest_cap = min((t["daily_earn_points"] for t in settings.LOYALTY_TIERS), default=None)
    near_cap = MemberDayStats.objects.filter(day__gte=first, day__lt=today).order_by()
    if per_day is not None and lowest_cap is not None:
        near_cap = near_cap.filter(earns__gte=per_day) | near_cap.filter(points__gte=lowest_cap)
    elif per_day is not None:
        near_cap = near_cap.filter(earns__gte=per_day)
    elif lowest_cap is not None:
        near_cap = near_cap.filter(points__gte=lowest_cap)
    else:
        near_cap = near_cap.none()
    for member_id, day, earns, points, tier in near_cap.values_list(
        "member_id", "day", "earns", "points", "member__tier"
    ).iterator():
        cap = tier_rules(tier)["daily_earn_points"]
        if (per_day is not None and earns >= per_day) or (cap is not None and points >= cap):
            cap_days.setdefault(member_id, set()).add(day)
    version, raised, found = ruleset_version(), 0, 0
    for member_id in sorted(cap_days):
        days = cap_days[member_id]
        streak = _streak(days)
        if streak < cfg["days_in_a_row"] and len(days) < cfg["days_in_week"]:
            continue
        if incident_alerted(VELOCITY_CAP_STREAK, since=start, member_id=member_id):
            continue  # the streak of these 7 days, alerted on an earlier night
        found += 1
        result = alert_raise(
            detector=VELOCITY_CAP_STREAK,
            subjects=[Subject.member(member_id)],
            facts={"days": len(days), "streak": streak, "last_day": max(days).isoformat(), "window_days": 7},
            occurred_at=end,
            dedupe_key=dedupe(VELOCITY_CAP_STREAK, f"member:{member_id}", first, version),
            member_id=member_id,
        )
        raised += int(result.created)
    return {"members": found, "alerts": raised}
