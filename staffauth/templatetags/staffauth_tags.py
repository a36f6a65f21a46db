"""Template filters of the staff pages."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration_words(value: timedelta | None) -> str:
    """``30 minutes``, ``1 hour 30 minutes``, ``2 days``: a duration in words (Django
    prints a timedelta as ``0:30:00``)."""
    if not isinstance(value, timedelta):
        return "" if value is None else str(value)
    minutes = max(int(value.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    words = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return " ".join(words) or "less than a minute"
