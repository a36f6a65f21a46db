"""Small helpers the batch detectors share: programme-local days and dedupe keys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any

from django.utils import timezone

from fraud.models import FraudAlert, RiskSignal


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


def incident_alerted(detector: str, *, since: datetime, ids: Iterable[int] | None = None, **subject: Any) -> bool:
    """True when the incident a batch detector sees again already has its alert: one of
    ``detector``'s alerts on the same subject columns (``member_id=``, ``staff_id=``,
    ``store_id=``, ``detail__pattern=``...) whose signals occurred since ``since`` (the
    detectors' own clock, not the row's write time) and, with ``ids``,
    naming one of the same records in its facts (an incident that goes on, its window
    sliding, keeps its first alert and case: FRAUD.md §6, one alert per incident)."""
    seen = RiskSignal.objects.filter(detector=detector, occurred_at__gte=since, alert__isnull=False)
    alerts = FraudAlert.objects.filter(kind=detector, pk__in=seen.values("alert_id"), **subject)
    if ids is None:
        return alerts.exists()
    wanted = set(ids)
    return any(wanted & set(detail.get("ids") or []) for detail in alerts.values_list("detail", flat=True)[:50])
