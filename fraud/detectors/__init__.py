"""Batch fraud detectors (FRAUD.md §1), one module per family, and their registry.

``REGISTRY``: catalogue code -> callable(as_of) running that detector as of that time, as
its schedule does (reads up to ``as_of``, never ``now()``; idempotent: a re-run finds its
signals and alerts by their dedupe keys). ``CADENCE``: the detectors ``detectors_run``
schedules one by one, code -> ``mb`` (every 5 minutes, over their own watermark window,
``fraud.detectors.runs``), ``nb`` (nightly) or ``mo`` (monthly). The return detectors run
as one micro-batch and one nightly batch (``returns.returns_detect``, ``returns_nightly``:
they share one read and the ladder runs after them), the account and staff ones by their
own tasks; detectors triggered by an event (a member's security event, a till's
redemption) are listed in their modules (``accounts.EVENT_CHECKS``, ``staff.TILL_ALERTS``). ``fraud.tasks`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from fraud.detectors import accounts, adjustments, earning, redemption, returns, staff, stores
from fraud.detectors.runs import batch, micro_batch


def _mb(code: str, body: Callable[[datetime, datetime], dict[str, Any]]) -> Callable[[datetime], dict[str, Any]]:
    return lambda as_of: micro_batch(code, as_of, body)


def _nb(code: str, body: Callable[[datetime], dict[str, Any]]) -> Callable[[datetime], dict[str, Any]]:
    return lambda as_of: batch(code, partial(body, as_of))


CADENCE: dict[str, str] = {
    earning.EARN_ABOVE_BASELINE: "mb",
    redemption.REDEMPTION_DEVIATION: "mb",
    redemption.REDEMPTION_SPIKE: "mb",
    stores.STORE_ISSUE_CAP: "mb",
    earning.VELOCITY_CAP_STREAK: "nb",
    adjustments.STORE_ADJUST_RATE: "nb",
    adjustments.STAFF_ADJUST_FREQUENCY: "nb",
    adjustments.ADJUST_SALAMI: "nb",
    adjustments.ADJUST_RATIONALE_AUDIT: "mo",
}

REGISTRY: dict[str, Callable[[datetime], Any]] = {
    earning.EARN_ABOVE_BASELINE: _mb(earning.EARN_ABOVE_BASELINE, earning.earn_above_baseline),
    earning.VELOCITY_CAP_STREAK: _nb(earning.VELOCITY_CAP_STREAK, earning.velocity_cap_streak),
    redemption.REDEMPTION_DEVIATION: _mb(redemption.REDEMPTION_DEVIATION, redemption.redemption_deviation),
    redemption.REDEMPTION_SPIKE: _mb(redemption.REDEMPTION_SPIKE, redemption.redemption_spike),
    stores.STORE_ISSUE_CAP: _mb(stores.STORE_ISSUE_CAP, stores.store_issue_cap),
    adjustments.STORE_ADJUST_RATE: _nb(adjustments.STORE_ADJUST_RATE, adjustments.store_adjust_rate),
    adjustments.STAFF_ADJUST_FREQUENCY: _nb(adjustments.STAFF_ADJUST_FREQUENCY, adjustments.staff_adjust_frequency),
    adjustments.ADJUST_SALAMI: _nb(adjustments.ADJUST_SALAMI, adjustments.adjust_salami),
    adjustments.ADJUST_RATIONALE_AUDIT: _nb(adjustments.ADJUST_RATIONALE_AUDIT, adjustments.adjust_rationale_audit),
    **returns.DETECTORS,
    **accounts.DETECTORS,
    **staff.DETECTORS,
}


def detectors_run(cadence: str, as_of: datetime) -> dict[str, dict[str, Any]]:
    """Run every detector ``CADENCE`` schedules at ``cadence`` as of ``as_of`` (code
    order); returns each one's counts."""
    return {code: REGISTRY[code](as_of) for code in sorted(CADENCE) if CADENCE[code] == cadence}
