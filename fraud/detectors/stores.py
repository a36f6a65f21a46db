"""Store issuance (FRAUD.md row 6), a micro-batch: points earned per store today
against the store's cap T."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from fraud import config
from fraud.detectors.common import day_start, dedupe, local_day
from fraud.detectors.runs import daily_memo, ruleset_version
from fraud.models import FraudAlert
from fraud.scoring import Subject, signal_raise
from fraud.services import alert_raise
from loyalty.kernel.models import Store
from loyalty.ledger import selectors as ledger

STORE_ISSUE_CAP = "store_issue_cap"


def percentile(values: list[int], percent: int) -> float:
    """Linear-interpolation percentile (as PostgreSQL's ``percentile_cont``)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percent / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _learned_caps(today: date) -> dict[str, int]:
    """``{store_id: T}`` learned from every store's daily issuance over the
    ``baseline_days`` local days before ``today`` (days without earns count as zero);
    stores without any are absent (they get the floor). One query."""
    cfg = config.detector(STORE_ISSUE_CAP).thresholds
    days = cfg["baseline_days"]
    history: dict[int, list[int]] = {}
    for row in ledger.store_points_by_day(start=day_start(today - timedelta(days=days)), end=day_start(today)):
        history.setdefault(row["store_id"], []).append(int(row["points"]))
    return {
        str(pk): int(percentile(daily + [0] * (days - len(daily)), 95) * cfg["p95_percent"] // 100)
        for pk, daily in history.items()
    }


def store_caps(*, store_ids: list[int], today: date) -> dict[int, int]:
    """T per store: the store's configured cap (``FRAUD["store_issue_caps"]`` by store
    code) or max(``floor_points``, ``p95_percent`` % of the 95th percentile of its daily
    issuance over the ``baseline_days`` local days before ``today``). The learned part is
    computed on the day's first run only (``runs.daily_memo``)."""
    cfg = config.detector(STORE_ISSUE_CAP).thresholds
    configured = config.fraud_config().get("store_issue_caps") or {}
    codes = dict(Store.objects.filter(pk__in=store_ids).values_list("pk", "code")) if configured else {}
    learned = daily_memo(f"{STORE_ISSUE_CAP}:caps", f"{today}:r{ruleset_version()}", partial(_learned_caps, today))
    caps = {}
    for pk in store_ids:
        if codes.get(pk) in configured:
            caps[pk] = int(configured[codes[pk]])
        else:
            caps[pk] = max(cfg["floor_points"], learned.get(str(pk), 0))
    return caps


def store_issue_cap(start: datetime, end: datetime) -> dict[str, Any]:
    """Row 6 (MB). Points issued today (local day up to ``end``) per store: at T a
    signal (weight ``weight``), at ``alert_percent`` % of T an alert with a case (weight
    ``alert_weight``, high severity). Facts: issued, T, the top tills and staff. One
    signal and one alert at most per store and day."""
    cfg = config.detector(STORE_ISSUE_CAP).thresholds
    today = local_day(end - timedelta(microseconds=1))
    since = day_start(today)
    issued = {row["store_id"]: int(row["points"]) for row in ledger.store_points_by_day(start=since, end=end)}
    caps = store_caps(store_ids=sorted(issued), today=today) if issued else {}
    version, signals, alerts = ruleset_version(), 0, 0
    for store_id in sorted(issued):
        points, cap = issued[store_id], caps[store_id]
        if points < cap:
            continue
        facts = {"issued": points, "cap": cap, **ledger.store_issue_top_actors(store_id=store_id, start=since, end=end)}
        subject = Subject.store(store_id)
        if points * 100 >= cap * cfg["alert_percent"]:
            result = alert_raise(
                detector=STORE_ISSUE_CAP,
                subjects=[subject],
                facts=facts,
                occurred_at=end,
                dedupe_key=dedupe(STORE_ISSUE_CAP, subject.key, today, version),
                severity=FraudAlert.Severity.HIGH,
                store_id=store_id,
                weight=cfg["alert_weight"],
            )
            alerts += int(result.created)
        else:
            signal = signal_raise(
                detector=STORE_ISSUE_CAP,
                subject=subject,
                facts=facts,
                occurred_at=end,
                dedupe_key=dedupe(STORE_ISSUE_CAP, subject.key, today, version, "signal"),
            )
            signals += int(signal.created)
    return {"stores": len(issued), "signals": signals, "alerts": alerts}
