"""The fraud configuration (``settings.FRAUD``), read through typed accessors.

Names (stable; other modules and the ruleset hash use them):

- ``detectors[<code>]``: ``weight`` (W, 0-100, copied onto each signal), ``family``
  (``ato``, ``api``, ``velocity``, ``redemption``, ``returns``, ``insider``: picks the
  half-life and the member inbox), ``force`` (an outcome the detector forces while its
  signal is younger than one half-life: ``step_up``, ``throttle``, ``block_and_review``;
  None for score only) and the detector's thresholds (FRAUD.md §1, one key each, e.g.
  ``earn_above_baseline.ratio_percent`` 150). Each is ``FRAUD_<CODE>_<KEY>`` in the environment.
- ``half_life_days[<family>]``: ato/api 3, velocity/redemption 7, returns/insider 30.
- ``outcome_bands``: the lowest score of ``review`` (30), ``step_up`` (60),
  ``block_and_review`` (80); below review: ``allow``.
- ``case_due_hours[<severity>]``: critical 1, high 4, medium 24, low 72.
- ``storm_alerts_per_hour`` (50), ``not_fraud_snooze_days`` (90), ``auto_assign_cap`` (25).

A detector not in the catalogue (a test's, a new one before its row) gets weight 0,
family ``insider``, no forced outcome.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

OUTCOMES = ("allow", "review", "throttle", "step_up", "block_and_review")
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class DetectorConfig:
    code: str
    weight: int
    family: str
    force: str | None
    thresholds: dict[str, int]


def fraud_config() -> dict[str, Any]:
    """The whole ``settings.FRAUD`` dict (what a ruleset version stores)."""
    return settings.FRAUD


def config_sha256(config: dict[str, Any] | None = None) -> str:
    """The hash of a configuration: canonical JSON (sorted keys), SHA-256 hex."""
    canonical = json.dumps(fraud_config() if config is None else config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def detector(code: str, config: dict[str, Any] | None = None) -> DetectorConfig:
    entry = dict((config or fraud_config())["detectors"].get(code) or {})
    weight = int(entry.pop("weight", 0))
    family = str(entry.pop("family", "insider"))
    force = entry.pop("force", None) or None
    return DetectorConfig(code=code, weight=weight, family=family, force=force, thresholds=entry)


def threshold(code: str, key: str) -> int:
    """One threshold of a detector (``KeyError`` if the catalogue has no such key)."""
    return int(fraud_config()["detectors"][code][key])


def half_life_days(family: str, config: dict[str, Any] | None = None) -> int:
    return max(1, int((config or fraud_config())["half_life_days"].get(family, 30)))


def outcome_for_score(score: int, config: dict[str, Any] | None = None) -> str:
    bands = (config or fraud_config())["outcome_bands"]
    for outcome in ("block_and_review", "step_up", "review"):
        if score >= int(bands[outcome]):
            return outcome
    return "allow"


def case_due_hours(severity: str) -> int:
    return int(fraud_config()["case_due_hours"][severity])


def storm_alerts_per_hour() -> int:
    return int(fraud_config()["storm_alerts_per_hour"])


def not_fraud_snooze_days() -> int:
    return int(fraud_config()["not_fraud_snooze_days"])


def auto_assign_cap() -> int:
    return int(fraud_config()["auto_assign_cap"])
