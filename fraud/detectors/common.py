"""Small helpers the batch detectors share: programme-local days and dedupe keys."""

from __future__ import annotations

from datetime import date, datetime, time

from django.utils import timezone


def day_start(day: date) -> datetime:
    """The start of a programme-local day (as ``loyalty.ledger.policy._day_start``)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def local_day(at: datetime) -> date:
    return timezone.localdate(at)


def dedupe(code: str, subject: str, window: object, version: int, *extra: object) -> str:
    """``detector:subject:window_start[:extra...]:r<ruleset>`` (FRAUD.md §6)."""
    window_text = window.isoformat() if isinstance(window, date | datetime) else str(window)
    parts = [code, subject, window_text, *(str(e) for e in extra), f"r{version}"]
    return ":".join(parts)
