"""Staff security services: the security log, sessions, access changes.

Services take keyword arguments and an explicit actor; callers (admin, views,
commands) stay thin.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.db import transaction

from loyalty.pan import redact_pans
from staffauth.context import current_request
from staffauth.models import PasswordHistory, SecurityEvent, StaffUser
from staffauth.net import client_ip

Kind = SecurityEvent.Kind


def security_event_record(
    *,
    kind: str,
    actor: StaffUser | None = None,
    subject: StaffUser | None = None,
    username: str = "",
    request=None,
    detail: dict | None = None,
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
    reason = None
    if actor.pk == user.pk:
        reason = "own account"
    elif user.is_superuser and not actor.is_superuser:
        reason = "superuser account"
    if reason:
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
