"""The one rule for timestamps the API answers: UTC, ISO 8601, the offset written ``Z``.

Times are stored in UTC (``USE_TZ``); staff pages show them in the programme's time zone
(``loyalty.workplace.display.local_time``); every API answer writes them in UTC with a
``Z`` (``2026-01-31T06:05:00Z``, microseconds when there are some), whether a DRF field
renders them (``loyalty.api.serializers.UtcDateTimeField``) or a service builds the body
by hand (this function), including bodies saved under an idempotency key and replayed, and
error details (a lock's ``until``). That is DRF's own ISO 8601 form for a UTC time.
"""

from __future__ import annotations

from datetime import UTC, datetime

API_DATETIME_PATTERN = r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z"


def iso_utc(value: datetime) -> str:
    """``value`` (aware) as ISO 8601 in UTC with ``Z``; raises ValueError for a naive one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive datetime has no instant to answer")
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"
