"""Read-only views of a staff account's security state (the staff page's status panel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from staffauth.models import PasswordHistory, SecurityEvent, StaffUser


@dataclass(frozen=True)
class StaffSecurityStatus:
    totp_devices: list[str]  # names of confirmed authenticator apps
    backup_codes_left: int | None  # None: no backup codes issued
    lockouts: list[tuple[int, str]]  # (record id, address) of the user name's current locks
    active_sessions: int
    last_login: datetime | None
    password_changed_at: datetime | None


def staff_active_sessions(user: StaffUser) -> int:
    """Unexpired database sessions signed in as ``user`` with the account's current
    security stamp (ended sessions carry an old one and die on their next request)."""
    user_id, auth_hash, count = str(user.pk), user.get_session_auth_hash(), 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        data = session.get_decoded()
        if data.get("_auth_user_id") == user_id and data.get("_auth_user_hash") == auth_hash:
            count += 1
    return count


def staff_security_status(user: StaffUser) -> StaffSecurityStatus:
    """MFA devices (never a code), locks of the user name, sessions and dates."""
    from axes.models import AccessAttempt
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    totp = list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("name").values_list("name", flat=True))
    static = StaticDevice.objects.filter(user=user, confirmed=True)
    codes = sum(device.token_set.count() for device in static) if static.exists() else None
    locks = AccessAttempt.objects.filter(
        username=user.get_username(), failures_since_start__gte=settings.AXES_FAILURE_LIMIT
    ).order_by("-attempt_time")
    changes = [
        PasswordHistory.objects.filter(user=user).order_by("-created_at").values_list("created_at", flat=True).first(),
        SecurityEvent.objects.filter(subject=user, kind=SecurityEvent.Kind.PASSWORD_CHANGED)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first(),
    ]
    return StaffSecurityStatus(
        totp_devices=totp,
        backup_codes_left=codes,
        lockouts=[(lock.pk, lock.ip_address or "") for lock in locks],
        active_sessions=staff_active_sessions(user),
        last_login=user.last_login,
        password_changed_at=max((c for c in changes if c is not None), default=None),
    )
