"""The batch detectors' registry: catalogue code -> callable(as_of), run by fraud.tasks.

Detectors triggered by an event (a member's security event, a till's redemption) are
listed in their modules (``accounts.EVENT_CHECKS``, ``staff.TILL_ALERTS``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fraud.detectors import accounts, staff

DETECTORS: dict[str, Callable[[datetime], Any]] = {
    **accounts.DETECTORS,
    **staff.DETECTORS,
}
