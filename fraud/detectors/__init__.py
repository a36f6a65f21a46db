"""Batch detectors (FRAUD.md §1), one module per family, and their registry: detector
code -> ``callable(as_of)`` (reads up to ``as_of``, never ``now()``; idempotent: a re-run
finds its signals and alerts by their dedupe keys). Run from ``fraud.tasks``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fraud.detectors import returns

REGISTRY: dict[str, Callable[[datetime], Any]] = {
    **returns.DETECTORS,
}
