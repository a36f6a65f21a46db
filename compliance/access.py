"""Access logging (COMPLIANCE.md §5): the one writer of ``AccessEvent``.

``record()`` is called by the admin mixin (``compliance.admin_access``), the download helper
(``compliance.downloads.download_response``) and the till look-up views. It keeps search
terms and personal data out: members by id, parameters restricted to kinds, counts, dates and
codes. After a member view it raises the two access alerts (fraud.services.alert_raise, the
staff member as subject): more than ``ACCESS_MEMBER_VIEWS_PER_DAY`` distinct members viewed in
a programme day, and a staff member viewing their own member account."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils import timezone

from compliance.models.access import AccessEvent
from staffauth.context import current_request, current_request_id
from staffauth.net import client_ip

Kind = AccessEvent.Kind

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{0,40}$")


class AccessParameterRefused(ValueError):
    """A parameter that is not a kind, a count, a date or a code (a search term, say)."""

    code = "access_parameter_refused"


def _filtered(parameters: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, bool) or value is None or isinstance(value, int):
            clean[key] = value
        elif isinstance(value, (dt.date, dt.datetime)):
            clean[key] = value.isoformat()
        elif isinstance(value, str) and _SAFE_VALUE.match(value) and "@" not in value and not value.isdigit():
            clean[key] = value
        else:
            raise AccessParameterRefused(f"access parameter {key!r} must be a kind, count, date or code")
    return clean


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def record(
    kind: str,
    *,
    staff: Any = None,
    member_id: int | None = None,
    member_ids: Iterable[int] = (),
    obj: models.Model | None = None,
    report_type: str = "",
    parameters: dict[str, Any] | None = None,
    rows: int | None = None,
    file_sha256: str = "",
    request: Any = None,
    now: dt.datetime | None = None,
) -> AccessEvent:
    """Writes one access event. ``staff`` defaults to the request's user; ``request`` to the
    current request (its client IP and request id are kept). Raises AccessParameterRefused
    for a parameter that could carry a search term or personal data."""
    request = request if request is not None else current_request()
    if staff is None and request is not None:
        user = getattr(request, "user", None)
        staff = user if isinstance(user, get_user_model()) and user.is_authenticated else None
    event = AccessEvent.objects.create(
        kind=Kind(kind),
        at=now or timezone.now(),
        staff=staff,
        member_id=member_id,
        member_ids=sorted({int(pk) for pk in member_ids}),
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        report_type=report_type,
        parameters=_filtered(parameters or {}),
        rows=rows,
        file_sha256=file_sha256,
        ip=client_ip(request) if request is not None else None,
        request_id=current_request_id() if request is not None else "",
    )
    if kind == Kind.MEMBER_VIEW and staff is not None and member_id is not None:
        transaction.on_commit(lambda: _member_view_alerts(event))
    return event


def distinct_members_viewed(staff_id: int, day: dt.date) -> int:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return (
        AccessEvent.objects.filter(
            kind=Kind.MEMBER_VIEW, staff_id=staff_id, at__gte=start, at__lt=start + dt.timedelta(days=1)
        )
        .values("member_id")
        .distinct()
        .count()
    )


def _member_view_alerts(event: AccessEvent) -> None:
    from fraud.models import FraudAlert
    from fraud.scoring import Subject
    from fraud.services import alert_raise

    staff_id = event.staff_id
    assert staff_id is not None and event.member_id is not None
    day = timezone.localdate(event.at)
    limit = settings.ACCESS_MEMBER_VIEWS_PER_DAY
    viewed = distinct_members_viewed(staff_id, day)
    if viewed > limit:
        alert_raise(
            detector="member_view_volume", subjects=[Subject.staff(staff_id)], occurred_at=event.at,
            dedupe_key=f"member_view_volume:{staff_id}:{day.isoformat()}", severity=FraudAlert.Severity.HIGH,
            staff_id=staff_id, facts={"members_viewed": viewed, "limit": limit, "day": day.isoformat()},
        )  # fmt: skip
    if getattr(event.staff, "member_account_id", None) == event.member_id:
        alert_raise(
            detector="own_member_account_access", subjects=[Subject.staff(staff_id)], occurred_at=event.at,
            dedupe_key=f"own_member_account_access:{staff_id}:{day.isoformat()}",
            severity=FraudAlert.Severity.MEDIUM, staff_id=staff_id, member_id=event.member_id,
            facts={"member_id": event.member_id, "day": day.isoformat()},
        )  # fmt: skip
