"""Staff security services: the security log, sessions, access changes.

Services take keyword arguments and an explicit actor; callers (admin, views,
commands) stay thin.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.models import Device, VerifyNotAllowed

from loyalty.kernel.pan import redact_pans
from staffauth.context import current_request
from staffauth.models import PasswordHistory, SecurityEvent, StaffUser
from staffauth.net import client_ip
from staffauth.permissions import privilege_change_refused

# Marks a user_login_failed signal sent for a wrong OTP token, so that axes counts it
# but the log records it once, as OTP_FAILED (staffauth.receivers).
OTP_STAGE = "otp"

Kind = SecurityEvent.Kind


def security_event_record(
    *,
    kind: str,
    actor: StaffUser | None = None,
    subject: StaffUser | None = None,
    username: str = "",
    request: HttpRequest | None = None,
    detail: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Append one security event. IP and user agent come from the request being served.

    ``detail`` must never hold a secret (password, OTP, token) or member PII.
    """
    request = request if request is not None else current_request()
    ip, agent = None, ""
    if request is not None:
        ip = client_ip(request)
        agent = request.META.get("HTTP_USER_AGENT", "")[:256]
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return SecurityEvent.objects.create(
        kind=kind,
        actor=actor,
        subject=subject,
        username=redact_pans(username or (actor.username if actor else ""))[:150],  # as typed: maybe a card
        ip_address=ip,
        user_agent=agent,
        detail=detail or {},
    )


def _actor_from_request() -> StaffUser | None:
    request = current_request()
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


@transaction.atomic
def password_changed_record(*, user: StaffUser, depth: int) -> None:
    """Keep the new hash for the no-reuse rule and log the change.

    Other sessions end by themselves: the session hash covers the password hash.
    """
    PasswordHistory.objects.create(user=user, password_hash=user.password)
    stale = PasswordHistory.objects.filter(user=user).values_list("pk", flat=True)[depth:]
    PasswordHistory.objects.filter(pk__in=list(stale)).delete()
    actor = _actor_from_request() or user
    security_event_record(kind=Kind.PASSWORD_CHANGED, actor=actor, subject=user)


@transaction.atomic
def staff_sessions_end(*, user: StaffUser, actor: StaffUser | None, reason: str) -> None:
    """End every session of ``user`` at their next request by rotating the security stamp."""
    StaffUser.objects.filter(pk=user.pk).update(security_stamp=uuid.uuid4())
    user.refresh_from_db(fields=["security_stamp"])
    security_event_record(kind=Kind.SESSIONS_ENDED, actor=actor, subject=user, detail={"reason": reason})


def staff_access_check_change(*, actor: StaffUser, user: StaffUser) -> None:
    """Refuse changes nobody may make to an account's privileges.

    Nobody changes their own roles, stores, permissions or active flag, and only a
    superuser changes a superuser. Raises PermissionDenied; the 403 that follows is
    logged by ``AccessDeniedLogMiddleware`` once the refused transaction rolled back.
    """
    if reason := privilege_change_refused(actor, user):
        raise PermissionDenied(f"You cannot change the privileges of this account ({reason}).")


@transaction.atomic
def staff_access_changed(
    *,
    actor: StaffUser,
    user: StaffUser,
    roles_before: set[str],
    stores_before: set[str],
    was_active: bool,
) -> None:
    """Record a change of roles, stores or active flag made by ``actor``, end the
    user's sessions when their privileges changed, and refuse self-escalation.

    Called inside the transaction that saved the change, so a refusal rolls it back.
    """
    roles_after = set(user.groups.values_list("name", flat=True))
    stores_after = set(user.stores.values_list("code", flat=True))
    changes = []
    if roles_after != roles_before:
        changes.append(
            (
                Kind.ROLES_CHANGED,
                {"added": sorted(roles_after - roles_before), "removed": sorted(roles_before - roles_after)},
            )
        )
    if stores_after != stores_before:
        changes.append(
            (
                Kind.STORES_CHANGED,
                {"added": sorted(stores_after - stores_before), "removed": sorted(stores_before - stores_after)},
            )
        )
    if was_active != user.is_active:
        changes.append((Kind.ACCOUNT_REACTIVATED if user.is_active else Kind.ACCOUNT_DEACTIVATED, {}))
    if not changes:
        return
    staff_access_check_change(actor=actor, user=user)
    for kind, detail in changes:
        security_event_record(kind=kind, actor=actor, subject=user, detail=detail)
    staff_sessions_end(user=user, actor=actor, reason="access changed")


@transaction.atomic
def otp_backup_codes_issue(*, user: StaffUser, count: int | None = None) -> list[str]:
    """Replace ``user``'s backup codes with ``count`` new single-use ones; returns them.

    The codes are shown once to the user; django-otp keeps them for verification.
    """
    from django.conf import settings
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    count = count or settings.STAFF_BACKUP_CODE_COUNT
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(count)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@dataclass(frozen=True)
class OtpCheck:
    """What ``staff_otp_check`` found: ``device`` took the code; or ``wait_seconds``: no
    device looked at the code (each is in django-otp's back-off), so it is neither right
    nor wrong and must not be counted; or neither: the code is wrong, count it."""

    device: Device | None = None
    wait_seconds: int | None = None


def staff_otp_check(*, devices: Iterable[Device], token: str) -> OtpCheck:
    """Check a staff member's code against their confirmed ``devices`` with each one's
    ``verify_token`` (never ``match_token``, which throttles every device).

    Guessing is bounded by the product's own counter: the caller counts each wrong code
    as a failed login for axes, which locks the username and address at
    ``AXES_FAILURE_LIMIT`` failures. django-otp adds a per-device back-off (1, 2, 4, 8 s
    ... after consecutive failures) during which ``verify_token`` refuses even the right
    code; the caller then counted that refusal as a wrong code, so a right code typed
    just after a wrong one was refused and brought the lock closer. So:

    - while a device has fewer consecutive failures than ``AXES_FAILURE_LIMIT``, its
      back-off is waived: the code is checked (a wrong one still counts, for axes and
      for the device);
    - from then on (failures from several addresses, or left from an earlier lock) the
      back-off holds, so guesses spread over many addresses stay slowed down; a code
      sent during it is not checked, and the answer says to wait (``wait_seconds``)
      rather than counting it.

    A wrong code fails on every device; when one device takes a code, the others'
    failure counts are reset too (otherwise backup codes would stay in back-off).
    """
    devices = list(devices)
    limit = settings.AXES_FAILURE_LIMIT
    checked = False
    waits = []
    for device in devices:
        allowed, why = device.verify_is_allowed()
        if not allowed:
            why = why or {}
            throttled = why.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS
            if throttled and getattr(device, "throttling_failure_count", limit) < limit:
                # Waived: verify_token reads the timestamp only through verify_is_allowed
                # and saves the count and the timestamp with its outcome either way.
                device.throttling_failure_timestamp = None
            else:
                waits.append(why.get("locked_until"))
                continue
        checked = True
        if device.verify_token(token):
            for other in devices:
                if other is not device and getattr(other, "throttling_failure_count", 0) > 0:
                    other.throttle_reset()
            return OtpCheck(device=device)
    if checked or not waits:
        return OtpCheck()
    # The first device out of its back-off may take the code then.
    until = min((w for w in waits if w is not None), default=timezone.now())
    return OtpCheck(wait_seconds=max(1, math.ceil((until - timezone.now()).total_seconds())))
