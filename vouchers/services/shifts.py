"""Staff shifts at the till, and the manager override (spec "POS Redemption Controls").

A member of staff clocks in at a till with their username, password and the code of
their TOTP device (``shift_start``). The till then sends the shift's bearer token in
the ``X-Staff-Shift`` header with every voucher or points redemption; the server keeps
only its SHA-256. A shift is valid only at the till it was opened on, while it is open
and for at most ``VOUCHERS["shift_max_hours"]`` (default 12) hours.

Credentials are checked the way the admin checks them, without creating a session:

- the password through Django's ``authenticate`` (django-axes counts failures per
  username and address and refuses a locked pair before the password is looked at;
  inactive accounts never authenticate);
- the code with ``staffauth.services.staff_otp_check`` on the user's confirmed TOTP
  devices, as in the admin (``verify_token`` on each, django-otp's back-off waived
  below the lockout limit, so a right code just after a wrong one is taken), one check
  at a time per user (the user's row is locked), so parallel guesses are counted
  exactly; a wrong code counts as a failed login for axes, as in the admin; a right
  one resets the counter; a code no device looked at (back-off) is not counted and
  answers ``<stage>_locked_out``.

Who may clock in: an active user holding the Cashier or Store Manager role and assigned
to the till's store, or a Program Administrator (every store). Roles and stores are
read again on every request (``shift_for_request``), so removing them takes effect at
once. One open shift per staff user: clocking in again ends the previous shift.

A manager override (``override_verify``) is a second person's credentials and code
entered at the till for a redemption above the cashier's limit: a Store Manager of the
store (or a Program Administrator) whose own limit covers the points, never the
person whose shift it is.

Every clock-in, clock-out, refusal and override is a ``staffauth`` ``SecurityEvent``
(ids only; never the password, code or token).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import cast

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from loyalty.kernel.models import Store, Till
from loyalty.kernel.refusals import Refusal
from staffauth.context import current_request
from staffauth.models import StaffUser
from staffauth.net import client_ip, normalise_username
from staffauth.roles import ROLE_BY_NAME
from staffauth.services import OTP_STAGE, Kind, security_event_record, staff_otp_check
from vouchers.models import StaffShift

HEADER = "X-Staff-Shift"
DEFAULT_MAX_HOURS = 12
# The roles that may work a till, and those that may approve an override.
TILL_ROLES = ("cashier", "store_manager", "program_admin")
OVERRIDE_ROLES = ("store_manager", "program_admin")
# Roles that work in every store (not store-scoped) and have no redemption limit.
UNLIMITED_ROLES = ("program_admin",)
USERNAME_MAX = 150
SECRET_MAX = 256

# SecurityEvent kinds of the till (strings until staffauth.models.SecurityEvent.Kind
# names them; the column takes any string).
EVENT_SHIFT_STARTED = "shift_started"
EVENT_SHIFT_ENDED = "shift_ended"
EVENT_SHIFT_REFUSED = "shift_refused"
EVENT_OVERRIDE_GRANTED = "override_granted"
EVENT_OVERRIDE_REFUSED = "override_refused"


class ShiftRefused(Refusal):
    """A clock-in, shift or override refusal with a stable ``code``. The message never
    holds a credential."""

    MESSAGES = {
        "staff_credentials_invalid": "The username, password or authenticator code is not right.",
        "staff_locked_out": "Too many failed attempts for this user; try again later.",
        "staff_not_permitted": "Only cashiers, store managers and programme administrators may work a till.",
        "staff_not_at_store": "This staff user is not assigned to this till's store.",
        "shift_required": "Clock in first: send the shift token in X-Staff-Shift (an open shift of this till).",
        "override_credentials_invalid": "The manager's username, password or authenticator code is not right.",
        "override_locked_out": "Too many failed attempts for this manager; try again later.",
        "override_not_permitted": "An override needs a store manager of this store or a programme administrator.",
        "override_limit_exceeded": "This redemption is above the approving manager's own limit.",
        "override_same_person": "The override must come from another member of staff than the cashier.",
    }


@dataclass(frozen=True)
class ShiftStarted:
    shift: StaffShift
    token: str  # the bearer for X-Staff-Shift: shown once, stored as SHA-256 only


@dataclass(frozen=True)
class Override:
    """A verified manager override for up to ``points`` at ``store``."""

    staff: StaffUser
    store_id: int
    points: int
    limit: int | None  # the approver's own limit (strictly below); None: unlimited
    verified_at: datetime


# --- roles and limits ----------------------------------------------------------------------------


def staff_roles(user: StaffUser) -> set[str]:
    """The role keys (``staffauth.roles``) the user holds."""
    names = user.groups.values_list("name", flat=True)
    return {ROLE_BY_NAME[name].key for name in names if name in ROLE_BY_NAME}


def _works_at(user: StaffUser, store_id: int, roles: set[str]) -> bool:
    if roles & set(UNLIMITED_ROLES):
        return True
    return user.stores.filter(pk=store_id).exists()


def redeem_limit(roles: set[str]) -> int | None:
    """Points a holder of ``roles`` may redeem at the till without an override: the
    redemption must be strictly below the limit. None: no limit (Program
    Administrator). 0 for no till role (nothing)."""
    if set(roles) & set(UNLIMITED_ROLES):
        return None
    limits = settings.ROLE_LIMITS.get("redeem_below", {})
    allowed = [limits[role] for role in roles if role in limits and role in TILL_ROLES]
    return max(allowed) if allowed else 0


def staff_redeem_limit(user: StaffUser) -> int | None:
    return redeem_limit(staff_roles(user))


def within_limit(points: int, limit: int | None) -> bool:
    return limit is None or points < limit


# --- credentials ---------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _request(request):
    """The request for axes and the security log; a bare one outside a request (axes
    needs one to count failures)."""
    request = request if request is not None else current_request()
    return request if request is not None else HttpRequest()


def _clean(value, limit: int) -> str:
    return value if isinstance(value, str) and 0 < len(value) <= limit else ""


def _locked_out(request) -> bool:
    """Whether axes locked the pair during this request. The flag is taken off the
    request: the refusal answers it (JSON 429), and axes' middleware would otherwise
    replace the API's answer with its HTML lockout page."""
    locked = bool(getattr(request, "axes_locked_out", False))
    if locked:
        request.axes_locked_out = False
    return locked


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return make_password(secrets.token_urlsafe(24))


def _credentials_check(*, request, username, password, otp_token, stage: str, till_id) -> StaffUser:
    """The active staff user with this password and TOTP code, or a ShiftRefused
    (``<stage>_credentials_invalid`` for any wrong part, ``<stage>_locked_out``).

    Failures are written (axes attempt, security event) before the refusal is raised,
    outside any transaction that could roll them back.
    """
    invalid, locked = f"{stage}_credentials_invalid", f"{stage}_locked_out"
    username = normalise_username(_clean(username, USERNAME_MAX)) or ""
    password = _clean(password, SECRET_MAX)
    otp_token = "".join(_clean(otp_token, 16).split())
    if not username or not password:
        raise ShiftRefused(invalid)
    credentials = {"username": username}
    if not AxesProxyHandler.is_allowed(request, credentials):
        raise ShiftRefused(locked)
    # Checks the password without logging in (no session, no user_logged_in). A wrong
    # password or an inactive account sends user_login_failed: axes counts it and
    # staffauth records LOGIN_FAILED.
    if StaffUser.objects.filter(username=username).exists():
        # The backends (axes, ModelBackend, guardian) only ever return AUTH_USER_MODEL.
        user = cast("StaffUser | None", authenticate(request, username=username, password=password))
    else:
        # No such user: the same signal and the same hashing cost as a wrong password
        # (so the answer's timing does not tell), without hashing what was typed into a
        # new hash as Django's backend does for unknown users.
        check_password(password, _dummy_hash())
        user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
        user = None
    if _locked_out(request):
        raise ShiftRefused(locked)
    if user is None or not user.is_active:
        raise ShiftRefused(invalid)

    verified = backed_off = False
    with transaction.atomic():
        # One code check at a time per user, as in the admin's OTP step; the lockout is
        # read again under the lock, so parallel guesses see the failures before them.
        StaffUser.objects.select_for_update().filter(pk=user.pk).first()
        if not AxesProxyHandler.is_allowed(request, credentials):
            raise ShiftRefused(locked)
        if otp_token:
            check = staff_otp_check(devices=TOTPDevice.objects.filter(user=user, confirmed=True), token=otp_token)
            verified, backed_off = check.device is not None, check.wait_seconds is not None
        if not verified and not backed_off:
            security_event_record(
                kind=Kind.OTP_FAILED, actor=user, request=request, detail={"channel": "till", "till_id": till_id}
            )
            user_login_failed.send(
                sender=__name__, credentials={"username": username, "stage": OTP_STAGE}, request=request
            )
    if backed_off:
        raise ShiftRefused(locked)
    if not verified:
        if _locked_out(request):
            raise ShiftRefused(locked)
        raise ShiftRefused(invalid)
    AxesProxyHandler.reset_attempts(ip_address=client_ip(request), username=username)
    return user


# --- shifts ------------------------------------------------------------------------------------


def max_hours() -> int:
    return int(settings.VOUCHERS.get("shift_max_hours", DEFAULT_MAX_HOURS))


def _refuse(kind: str, code: str, *, request, user=None, username="", **detail) -> ShiftRefused:
    security_event_record(kind=kind, actor=user, username=username, request=request, detail={"reason": code, **detail})
    return ShiftRefused(code)


def _credentials_or_refuse(event: str, request, typed: tuple, facts: dict, *, stage: str, till_id) -> StaffUser:
    """``_credentials_check`` of the ``typed`` username, password and TOTP code; a refusal
    is recorded as ``event`` (with ``facts``) before it is raised."""
    username, password, otp_token = typed
    try:
        return _credentials_check(
            request=request, username=username, password=password, otp_token=otp_token, stage=stage, till_id=till_id
        )
    except ShiftRefused as refusal:
        username = normalise_username(_clean(username, USERNAME_MAX)) or ""
        raise _refuse(event, refusal.code, request=request, username=username, **facts) from None


def shift_start(
    *, till: Till, username: str, password: str, otp_token: str, request=None, now: datetime | None = None
) -> ShiftStarted:
    """Clock a member of staff in at ``till``; returns the shift and its bearer token.

    Any open shift of the user (at this or another till) ends now. Raises
    ShiftRefused: ``staff_credentials_invalid`` (unknown user, wrong password or code,
    inactive account: one answer), ``staff_locked_out``, ``staff_not_permitted`` (no
    till role), ``staff_not_at_store``.
    """
    request = _request(request)
    now = now or timezone.now()
    typed = (username, password, otp_token)
    user = _credentials_or_refuse(
        EVENT_SHIFT_REFUSED, request, typed, {"till_id": till.pk}, stage="staff", till_id=till.pk
    )
    roles = staff_roles(user) & set(TILL_ROLES)
    if not roles:
        raise _refuse(EVENT_SHIFT_REFUSED, "staff_not_permitted", request=request, user=user, till_id=till.pk)
    if not _works_at(user, till.store_id, roles):
        raise _refuse(EVENT_SHIFT_REFUSED, "staff_not_at_store", request=request, user=user, till_id=till.pk)

    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        StaffUser.objects.select_for_update().filter(pk=user.pk).first()
        for previous in StaffShift.objects.filter(staff=user, ended_at__isnull=True):
            if shift_expired(previous, now):  # never used since its limit: it ended then
                limit = previous.started_at + timedelta(hours=max_hours())
                _end(previous, now=limit, reason="max_hours", request=request)
            else:
                _end(previous, now=max(now, previous.started_at), reason="superseded", request=request)
        shift = StaffShift.objects.create(
            staff=user, store_id=till.store_id, till=till, token_hash=token_hash(token), started_at=now
        )
        security_event_record(
            kind=EVENT_SHIFT_STARTED,
            actor=user,
            request=request,
            detail={"shift_id": shift.pk, "till_id": till.pk, "store_id": till.store_id},
        )
    return ShiftStarted(shift=shift, token=token)


def _end(shift: StaffShift, *, now: datetime, reason: str, request=None) -> bool:
    ended = StaffShift.objects.filter(pk=shift.pk, ended_at__isnull=True).update(ended_at=now, token_hash=None)
    if ended:
        shift.ended_at, shift.token_hash = now, None
        security_event_record(
            kind=EVENT_SHIFT_ENDED,
            actor=shift.staff,
            request=_request(request),
            detail={"shift_id": shift.pk, "till_id": shift.till_id, "reason": reason},
        )
    return bool(ended)


def shift_end(*, shift: StaffShift, now: datetime | None = None, request=None) -> StaffShift:
    """Clock out. Ending an ended shift changes nothing. The token stops working."""
    _end(shift, now=max(now or timezone.now(), shift.started_at), reason="clock_out", request=request)
    shift.refresh_from_db()
    return shift


def shift_expired(shift: StaffShift, now: datetime) -> bool:
    return now >= shift.started_at + timedelta(hours=max_hours())


def shift_for_request(request, *, now: datetime | None = None) -> StaffShift | None:
    """The open shift named by the request's ``X-Staff-Shift`` token, if it belongs to
    the request's till (``request.auth``), its staff user is still active, still holds
    a till role and still works at the store. A shift past ``shift_max_hours`` is ended
    (at its limit) and gives None."""
    till = getattr(request, "auth", None)
    token = request.headers.get(HEADER, "") if hasattr(request, "headers") else ""
    if not isinstance(till, Till) or not token or len(token) > SECRET_MAX:
        return None
    shift = (
        StaffShift.objects.select_related("staff", "store", "till")
        .filter(token_hash=token_hash(token), ended_at__isnull=True, till=till)
        .first()
    )
    if shift is None:
        return None
    now = now or timezone.now()
    if shift_expired(shift, now):
        _end(shift, now=shift.started_at + timedelta(hours=max_hours()), reason="max_hours")
        return None
    user = shift.staff
    roles = staff_roles(user) & set(TILL_ROLES)
    if not user.is_active or not roles or not _works_at(user, shift.store_id, roles):
        return None
    return shift


def shift_open_for_member(member, *, now: datetime | None = None) -> StaffShift | None:
    """An open, unexpired shift of the staff user whose own member account is ``member``."""
    now = now or timezone.now()
    return (
        StaffShift.objects.filter(
            staff__member_account=member,
            ended_at__isnull=True,
            started_at__gt=now - timedelta(hours=max_hours()),
        )
        .order_by()
        .first()
    )


def shift_current_at(shift: StaffShift | None, till: Till, now: datetime) -> bool:
    """``shift`` is of ``till``, not ended and not expired, as far as the object says
    (``shift_still_open`` asks the database)."""
    return shift is not None and shift.till_id == till.pk and shift.ended_at is None and not shift_expired(shift, now)


def shift_still_open(shift: StaffShift) -> bool:
    """The object may be stale (ended at another till since): the database decides."""
    return StaffShift.objects.filter(pk=shift.pk, ended_at__isnull=True).exists()


def staff_member_conflict(shift: StaffShift, member, *, now: datetime) -> str | None:
    """Why the cashier of ``shift`` may not redeem for ``member``: ``"own_account"``
    (the cashier's own member account), ``"member_on_shift"`` (the member is staff on an
    open shift), or None."""
    if shift.staff.member_account_id is not None and shift.staff.member_account_id == member.pk:
        return "own_account"
    if shift_open_for_member(member, now=now) is not None:
        return "member_on_shift"
    return None


# --- manager override ----------------------------------------------------------------------------


def override_verify(
    *,
    store: Store,
    username: str,
    password: str,
    otp_token: str,
    points: int,
    shift: StaffShift | None = None,
    request=None,
    now: datetime | None = None,
) -> Override:
    """A second member of staff approves a redemption of ``points`` at ``store``.

    They must be an active Store Manager assigned to the store or a Program
    Administrator, whose own limit (``ROLE_LIMITS["redeem_below"]``, none for a Program
    Administrator) covers the points, and not the person whose ``shift`` it is (the
    redemption services check that again with their shift). Raises ShiftRefused:
    ``override_credentials_invalid``, ``override_locked_out``, ``override_not_permitted``,
    ``override_limit_exceeded``, ``override_same_person``.
    """
    request = _request(request)
    now = now or timezone.now()
    typed, at_till = (username, password, otp_token), getattr(getattr(shift, "till", None), "pk", None)
    user = _credentials_or_refuse(
        EVENT_OVERRIDE_REFUSED, request, typed, {"store_id": store.pk}, stage="override", till_id=at_till
    )
    detail = {"store_id": store.pk, "points": points, "shift_id": getattr(shift, "pk", None)}
    if shift is not None and user.pk == shift.staff_id:
        raise _refuse(EVENT_OVERRIDE_REFUSED, "override_same_person", request=request, user=user, **detail)
    roles = staff_roles(user) & set(OVERRIDE_ROLES)
    if not roles or not _works_at(user, store.pk, roles):
        raise _refuse(EVENT_OVERRIDE_REFUSED, "override_not_permitted", request=request, user=user, **detail)
    limit = redeem_limit(roles)
    if not within_limit(points, limit):
        raise _refuse(EVENT_OVERRIDE_REFUSED, "override_limit_exceeded", request=request, user=user, **detail)
    security_event_record(kind=EVENT_OVERRIDE_GRANTED, actor=user, request=request, detail=detail)
    return Override(staff=user, store_id=store.pk, points=points, limit=limit, verified_at=now)
