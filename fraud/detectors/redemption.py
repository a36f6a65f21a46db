"""Redemption detectors (FRAUD.md rows 4-5), micro-batches over ``[start, end)``.

- ``redemption_deviation``: a redemption far above the member's own history, a large
  first one, or any soon after a contact change or a new device (the ATO variant).
- ``redemption_spike``: redemptions per 15 minutes, per store and programme-wide, above
  mean + 4 sigma of the same weekday-hour over 28 days and at least 50.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from fraud import config
from fraud.detectors.common import dedupe
from fraud.detectors.runs import ruleset_version
from fraud.models import FraudAlert
from fraud.scoring import Subject
from fraud.services import alert_raise
from loyalty.ledger import selectors as ledger
from members.selectors import members_account_changes

REDEMPTION_DEVIATION = "redemption_deviation"
REDEMPTION_SPIKE = "redemption_spike"


def redemption_deviation(start: datetime, end: datetime) -> dict[str, Any]:
    """Row 4 (MB). Each redemption made in the window is checked against the member's
    redemptions in the ``history_days`` before it: above ``times_largest`` x their
    largest and above ``floor_points`` (``above_history``); a first one of at least
    ``first_ever_points`` (``first_ever``); any within ``after_change_hours`` after a
    contact change or a new device (``after_change``: ATO, weight ``ato_weight``, high
    severity). One alert per redemption."""
    cfg = config.detector(REDEMPTION_DEVIATION).thresholds
    rows = list(
        ledger.redemptions_with_history(start=start, end=end, history=timedelta(days=cfg["history_days"])).iterator()
    )
    after = timedelta(hours=cfg["after_change_hours"])
    changes = members_account_changes(member_ids=[r["member_id"] for r in rows], start=start - after, end=end)
    version, raised = ruleset_version(), 0
    for row in rows:
        points, prior_max = int(row["points"]), row["prior_max"]
        recent = [at for at in changes.get(row["member_id"], []) if at <= row["created_at"] < at + after]
        if recent:
            rule = "after_change"
        elif prior_max is not None and points > max(cfg["times_largest"] * int(prior_max), cfg["floor_points"]):
            rule = "above_history"
        elif not row["prior_count"] and points >= cfg["first_ever_points"]:
            rule = "first_ever"
        else:
            continue
        hours = (row["created_at"] - recent[-1]).total_seconds() / 3600 if recent else None
        ato = rule == "after_change"
        result = alert_raise(
            detector=REDEMPTION_DEVIATION,
            subjects=[Subject.member(row["member_id"])],
            facts={
                "op": str(row["id"]),
                "points": points,
                "max": int(prior_max or 0),
                "hours": round(hours, 1) if hours is not None else None,
                "rule": rule,
            },
            occurred_at=row["created_at"],
            dedupe_key=dedupe(REDEMPTION_DEVIATION, f"member:{row['member_id']}", row["id"], version),
            severity=FraudAlert.Severity.HIGH if ato else FraudAlert.Severity.MEDIUM,
            member_id=row["member_id"],
            store_id=row["store_id"],
            weight=cfg["ato_weight"] if ato else None,
        )
        raised += int(result.created)
    return {"redemptions": len(rows), "alerts": raised}


def _baseline(counts: list[int], samples: int) -> tuple[float, float]:
    """Mean and (population) standard deviation over ``samples`` buckets, the buckets
    not in ``counts`` being zero."""
    if samples <= 0:
        return 0.0, 0.0
    mean = sum(counts) / samples
    variance = max(sum(c * c for c in counts) / samples - mean * mean, 0.0)
    return mean, math.sqrt(variance)


def redemption_spike(start: datetime, end: datetime) -> dict[str, Any]:
    """Row 5 (MB). Each ``window_minutes`` bucket that ended in ``(start, end]`` is
    compared, per store and for the whole programme, with the same weekday-hour (local)
    of the ``baseline_days`` before it (empty buckets count as zero): more than mean +
    ``sigmas`` sigma and at least ``min_count`` redemptions alerts. A store's alert
    signals the store; the programme's is an alert without a subject (high severity:
    the analyst opens the incident)."""
    cfg = config.detector(REDEMPTION_SPIKE).thresholds
    width = timedelta(minutes=cfg["window_minutes"])
    seconds = int(width.total_seconds())
    first = datetime.fromtimestamp((int(start.timestamp()) // seconds) * seconds, tz=start.tzinfo)
    if first + width <= start:
        first += width
    buckets: list[datetime] = []
    while first + width <= end:
        buckets.append(first)
        first += width
    if not buckets:
        return {"buckets": 0, "alerts": 0}
    current = ledger.redemption_counts_by_bucket(
        start=buckets[0], end=buckets[-1] + width, minutes=cfg["window_minutes"]
    )
    version, raised = ruleset_version(), 0
    samples = cfg["baseline_days"] // 7 * (3600 // seconds)
    for bucket in buckets:
        local = timezone.localtime(bucket)
        history = ledger.redemption_counts_by_bucket(
            start=bucket - timedelta(days=cfg["baseline_days"]), end=bucket, minutes=cfg["window_minutes"],
            weekday=local.isoweekday(), hour=local.hour,
        )  # fmt: skip
        now_rows = [(store, count) for store, at, count in current if at == bucket]
        per_store: dict[Any, list[int]] = {}
        programme: dict[datetime, int] = {}
        for store, at, count in history:
            per_store.setdefault(store, []).append(count)
            programme[at] = programme.get(at, 0) + count
        checks: list[tuple[int | None, int, list[int]]] = [
            (store, count, per_store.get(store, [])) for store, count in now_rows if store is not None
        ]
        checks.append((None, sum(count for _, count in now_rows), list(programme.values())))
        for store, count, past in checks:
            mean, sigma = _baseline(past, samples)
            if count < cfg["min_count"] or count <= mean + cfg["sigmas"] * sigma:
                continue
            subject = f"store:{store}" if store is not None else "programme"
            result = alert_raise(
                detector=REDEMPTION_SPIKE,
                subjects=[Subject.store(store)] if store is not None else [],
                facts={"count": count, "mean": round(mean, 2), "sigma": round(sigma, 2), "bucket": bucket.isoformat()},
                occurred_at=bucket + width,
                dedupe_key=dedupe(REDEMPTION_SPIKE, subject, bucket, version),
                severity=FraudAlert.Severity.MEDIUM if store is not None else FraudAlert.Severity.HIGH,
                store_id=store,
            )
            raised += int(result.created)
    return {"buckets": len(buckets), "alerts": raised}
