"""The member's optional password (issue 5; spec "Password-Based Authentication",
"MFA Triggers", "Session Invalidation").

Rules for a new password (``password_validate``), each refusal with a stable code:

- ``password_too_short``: fewer than ``MIN_LENGTH`` (8) characters;
  ``password_too_long``: more than ``MAX_LENGTH`` (128; the hash's cost);
- ``password_needs_letter`` / ``password_needs_digit`` / ``password_needs_symbol``: a
  letter, a digit and a symbol (neither a letter, a digit nor a space) must all appear;
- ``password_too_common``: in Django's common-password list (case-insensitive);
- ``password_contains_phone``: contains the last ``PHONE_DIGITS`` (7) digits of the
  member's phone number (spaces, dashes, dots, brackets, ``+`` and ``/`` ignored);
- ``password_reused``: one of the member's last ``MEMBER_AUTH["password_history"]`` (5)
  passwords, the current one included (checked with ``check_password`` against the kept
  hashes; older hashes are deleted).

Who may set it (``member_password_set``): the first password needs a verified step-up
for ``password_set`` (an SMS code less than five minutes old; chosen over "a session
fresh from OTP" because a session does not say how it was opened, and a step-up is bound
to the action and single use). Changing one needs the current password, or a step-up for
``password_reset`` (the forgotten-password way). Removing it needs a step-up for
``password_remove``. A step-up is spent inside the transaction that makes the change.
Whoever may not change details (a web remember-me session) may do none of this. The
authorisation comes before the rules: otherwise ``password_reused`` would tell a holder
of a stolen session whether a guess was the current password, uncounted.

A change, a first password or a removal ends all the member's OTHER sessions (the one
making the change stays), records a ``password_changed`` / ``password_set`` /
``password_removed`` security event (ids and how, never the password) and notifies the
member.

Signing in (``password_login``) with a password is factor 1 only. It opens a session
only when none of the spec's MFA triggers holds: a device already registered (and not
blocked), a member below tier ``MEMBER_AUTH["mfa_tier"]`` (3), a place the member signed
in from before. Otherwise it answers ``otp_required`` and the client signs in by SMS
code. A wrong password, an unknown number and a member without a password all answer
``credentials_invalid`` after the same work (a hash check: a dummy one when there is no
hash); each counts one failure for the number today under the OTP lock and daily cap
(``members.services.otp.otp_phone_credential_check``), after which sign-in by password and by
code is locked until the end of the day (``password_locked``).

Passwords are never logged, stored (only Django's hash, argon2 in production), put in an
event, a notice or an exception message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Unpack

import phonenumbers
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from loyalty.kernel.refusals import Refusal
from loyalty.notifications import notify_member
from members.geo import distance_km, geolocation
from members.models import Member, MemberDevice, MemberPasswordHistory, MemberSecurityEvent, MemberSession
from members.services.otp import OtpRefused, otp_phone_credential_check, otp_step_up_consume, otp_step_up_valid
from members.services.pii import blind_index, member_pii_value, phone_normalise
from members.services.sessions import (
    TRAVEL_SLACK_KM,
    SessionOpening,
    SessionTokens,
    session_may,
    session_start,
    sessions_end_all,
)

MIN_LENGTH = 8
MAX_LENGTH = 128
PHONE_DIGITS = 7
HISTORY_DEFAULT = 5
MFA_TIER_DEFAULT = 3
# Step-up actions (an SMS code verified for the action less than five minutes ago).
STEP_UP_SET = "password_set"
STEP_UP_RESET = "password_reset"
STEP_UP_REMOVE = "password_remove"
PHONE_SEPARATORS = re.compile(r"[\s\-.()+/]")


class PasswordRefused(Refusal):
    """A refused password operation. ``code`` is stable; ``retry_after`` (seconds) is set
    for ``password_locked``; ``detail`` holds facts for the client (never the password).

    Codes besides the rules' (``PasswordInvalid``): ``credentials_invalid``,
    ``otp_required``, ``password_locked``, ``current_password_required``,
    ``current_password_wrong``, ``step_up_required``, ``password_not_set``,
    ``change_details_not_allowed``.
    """

    message = "The password was refused."
    MESSAGES = {
        "credentials_invalid": "The phone number or password is not correct.",
        "otp_required": "Sign in with an SMS code for this device, place or account.",
        "password_locked": "Too many failed sign-ins for this number today. Try again tomorrow.",
        "current_password_required": (
            "Give your current password, or verify an SMS code for password_reset first (step-up)."
        ),
        "current_password_wrong": "The current password is not correct.",
        "step_up_required": "Verify an SMS code for this change first (step-up), then retry within five minutes.",
        "password_not_set": "You have no password to remove.",
        "change_details_not_allowed": (
            "This session (web, remember me) may not change details. Sign in again without remember me."
        ),
    }

    def __init__(self, code: str, *, message: str | None = None, retry_after: int | None = None, detail=None):
        super().__init__(code, message, retry_after=retry_after, **(detail or {}))

    @property
    def detail(self):  # None when there are no facts, as before
        return self.facts or None


class PasswordInvalid(PasswordRefused):
    """The new password breaks a rule (see the module docstring for the codes)."""


@dataclass(frozen=True)
class PasswordChange:
    """What a change did: ``kind`` is ``password_set``, ``password_changed`` or
    ``password_removed``."""

    kind: str
    sessions_ended: int
    changed_at: datetime


# --- the rules ---------------------------------------------------------------------------


def _history_depth() -> int:
    return settings.MEMBER_AUTH.get("password_history", HISTORY_DEFAULT)


@lru_cache(maxsize=1)
def _common() -> CommonPasswordValidator:
    return CommonPasswordValidator()  # reads its 20,000-word list once


def _phone_tail(member: Member) -> str | None:
    phone = member_pii_value(member, "phone")
    if not phone:
        return None
    national = str(phonenumbers.parse(phone, None).national_number)
    return national[-PHONE_DIGITS:] if len(national) >= PHONE_DIGITS else None


def _recent_hashes(member: Member) -> list[str]:
    depth = _history_depth()
    hashes = list(
        MemberPasswordHistory.objects.filter(member=member)
        .order_by("-created_at", "-id")
        .values_list("password_hash", flat=True)[:depth]
    )
    if member.password_hash and member.password_hash not in hashes:  # the current one, always
        hashes = [member.password_hash, *hashes][:depth]
    return hashes


def password_validate(*, member: Member, password: str) -> None:
    """Raise ``PasswordInvalid`` with the first rule ``password`` breaks for ``member``
    (cheap rules first; the reuse check, a hash per kept password, last)."""
    if len(password) < MIN_LENGTH:
        raise PasswordInvalid("password_too_short", message=f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise PasswordInvalid("password_too_long", message=f"Use at most {MAX_LENGTH} characters.")
    if not any(c.isalpha() for c in password):
        raise PasswordInvalid("password_needs_letter", message="Use at least one letter.")
    if not any(c.isdecimal() for c in password):
        raise PasswordInvalid("password_needs_digit", message="Use at least one digit.")
    if all(c.isalnum() or c.isspace() for c in password):
        raise PasswordInvalid("password_needs_symbol", message="Use at least one symbol, such as ! or #.")
    try:
        _common().validate(password)
    except ValidationError:
        raise PasswordInvalid("password_too_common", message="This password is too common.") from None
    tail = _phone_tail(member)
    if tail and tail in PHONE_SEPARATORS.sub("", password):
        raise PasswordInvalid("password_contains_phone", message="Do not use your phone number in your password.")
    if any(check_password(password, encoded) for encoded in _recent_hashes(member)):
        raise PasswordInvalid(
            "password_reused", message=f"Choose a password you have not used among your last {_history_depth()}."
        )


# --- set, change, remove -----------------------------------------------------------------


def _state_key(member: Member) -> str:
    # The number's OTP state row; a member without a number (erased) gets a key of their own.
    return member.phone_index or f"member:{member.pk}"


def _current_password_check(*, member: Member, current_password: str, ip: str | None, now: datetime) -> None:
    """A wrong current password counts like a wrong sign-in (a stolen session must not
    be a free guessing oracle); committed before the refusal is raised."""
    encoded = member.password_hash
    refusal = otp_phone_credential_check(
        phone_index=_state_key(member),
        check=lambda: check_password(current_password, encoded),
        member=member,
        kind="password_failed",
        ip=ip,
        now=now,
    )
    if refusal is not None:
        raise _from_otp(refusal, wrong="current_password_wrong")


def _from_otp(refusal: OtpRefused, *, wrong: str) -> PasswordRefused:
    if refusal.code == "otp_locked":
        return PasswordRefused("password_locked", retry_after=refusal.retry_after)
    return PasswordRefused(wrong)


def _check_session(session: MemberSession | None) -> None:
    if session is not None and not session_may(session, "change_details"):
        raise PasswordRefused("change_details_not_allowed")


def member_password_set(
    *,
    member: Member,
    new_password: str,
    current_password: str | None = None,
    session: MemberSession | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> PasswordChange:
    """Set the member's first password or change it (see the module docstring).

    Order: the session's privilege, then who may (the current password, or a valid
    step-up: ``password_set`` for a first password, ``password_reset`` to replace one
    without the current one), then the rules, then, in one transaction under the
    member's row lock: the step-up spent, the hash and its history written (older
    history deleted), the member's other sessions ended, the event recorded, the member
    notified. Returns a ``PasswordChange``.

    Raises ``PasswordRefused``: ``change_details_not_allowed``, ``step_up_required``
    (first password), ``current_password_required``, ``current_password_wrong`` (counted
    as a failed sign-in; also when the password changed meanwhile), ``password_locked``;
    ``PasswordInvalid`` for a rule.
    """
    now = now or timezone.now()
    _check_session(session)
    member = Member.objects.get(pk=member.pk)
    if not member.password_hash:
        via, action = "step_up", STEP_UP_SET
        if not otp_step_up_valid(member=member, action=STEP_UP_SET, now=now):
            raise PasswordRefused("step_up_required", detail={"actions": [STEP_UP_SET]})
    elif current_password:
        via, action = "current_password", None
        _current_password_check(member=member, current_password=current_password, ip=ip, now=now)
    elif otp_step_up_valid(member=member, action=STEP_UP_RESET, now=now):
        via, action = "step_up", STEP_UP_RESET
    else:
        raise PasswordRefused("current_password_required", detail={"actions": [STEP_UP_RESET]})
    seen_hash = member.password_hash

    password_validate(member=member, password=new_password)
    encoded = make_password(new_password)
    kind = "password_changed" if seen_hash else "password_set"
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if member.password_hash != seen_hash:  # changed (or set, removed) meanwhile
            raise PasswordRefused("current_password_wrong" if seen_hash else "current_password_required")
        if action is not None and not otp_step_up_consume(member=member, action=action, now=now):
            raise PasswordRefused("step_up_required", detail={"actions": [action]})
        member.password_hash, member.password_changed_at = encoded, now
        member.save(update_fields=["password_hash", "password_changed_at"])
        _history_record(member=member, encoded=encoded, now=now)
        ended = sessions_end_all(member=member, reason=kind, except_session=session, now=now)
        _record(member=member, kind=kind, via=via, session=session, ended=ended, ip=ip, now=now)
    return PasswordChange(kind=kind, sessions_ended=ended, changed_at=now)


def _history_record(*, member: Member, encoded: str, now: datetime) -> None:
    """Keep the new hash and the ``depth - 1`` before it: the last ``depth`` passwords,
    the current one included; nothing older is kept."""
    entry = MemberPasswordHistory.objects.create(member=member, password_hash=encoded)
    MemberPasswordHistory.objects.filter(pk=entry.pk).update(created_at=now)  # auto_now_add ignores ``now``
    keep = (
        MemberPasswordHistory.objects.filter(member=member)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[: _history_depth()]
    )
    MemberPasswordHistory.objects.filter(member=member).exclude(pk__in=list(keep)).delete()


NOTICES = {
    "password_set": ("A password was added to your account", "A password was added to"),
    "password_changed": ("Your password was changed", "The password of"),
    "password_removed": ("Your password was removed", "The password was removed from"),
}


def _record(*, member, kind, via, session, ended, ip, now) -> None:
    detail = {"via": via, "sessions_ended": ended}
    if session is not None:
        detail["session_id"] = str(session.id)
    MemberSecurityEvent.objects.create(member=member, kind=kind, ip=ip or None, detail=detail)
    subject, what = NOTICES[kind]
    notify_member(
        member=member,
        channel="preferred",
        subject=subject,
        body=(
            f"{what} your loyalty account on {now:%Y-%m-%d %H:%M} UTC, and your other sessions were "
            "signed out. If this was not you, contact us at once."
        ),
        topic="security",
    )


def member_password_remove(
    *, member: Member, session: MemberSession | None = None, ip: str | None = None, now: datetime | None = None
) -> PasswordChange:
    """Remove the member's password (sign-in by SMS code only from then on). Needs a
    step-up for ``password_remove``, spent here. The history is kept: a password set
    again later may still not be one of the last ones. Ends the member's other sessions,
    records ``password_removed``, notifies the member.

    Raises ``PasswordRefused``: ``change_details_not_allowed``, ``password_not_set``,
    ``step_up_required``.
    """
    now = now or timezone.now()
    _check_session(session)
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if not member.password_hash:
            raise PasswordRefused("password_not_set")
        if not otp_step_up_consume(member=member, action=STEP_UP_REMOVE, now=now):
            raise PasswordRefused("step_up_required", detail={"actions": [STEP_UP_REMOVE]})
        member.password_hash, member.password_changed_at = "", now
        member.save(update_fields=["password_hash", "password_changed_at"])
        ended = sessions_end_all(member=member, reason="password_removed", except_session=session, now=now)
        _record(member=member, kind="password_removed", via="step_up", session=session, ended=ended, ip=ip, now=now)
    return PasswordChange(kind="password_removed", sessions_ended=ended, changed_at=now)


# --- signing in ----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _dummy_hash(hashers: tuple) -> str:
    """A hash of a random password with the preferred hasher (keyed on the hashers
    setting), checked when there is no real hash so that every answer costs one check."""
    return make_password(get_random_string(32))


def _upgrade(member: Member, encoded: str):
    """``check_password``'s setter: re-hash when the hasher or its cost changed."""

    def setter(raw: str) -> None:
        Member.objects.filter(pk=member.pk, password_hash=encoded).update(password_hash=make_password(raw))

    return setter


def _mfa_reasons(*, member: Member, device_fingerprint: str, ip: str | None) -> list[str]:
    """The spec's MFA triggers that hold for this sign-in (empty: the password will do)."""
    reasons = []
    if member.tier >= settings.MEMBER_AUTH.get("mfa_tier", MFA_TIER_DEFAULT):
        reasons.append("tier")
    # The same keyed hash members.services.sessions stores for a device's fingerprint.
    fingerprint_hash = blind_index("device_fingerprint", device_fingerprint)
    devices = list(MemberDevice.objects.filter(member=member))
    device = next((d for d in devices if d.fingerprint_hash == fingerprint_hash), None)
    if device is None:
        reasons.append("new_device")
    elif device.blocked_at is not None:
        reasons.append("device_blocked")
    known = [(d.latitude, d.longitude) for d in devices if d.latitude is not None and d.longitude is not None]
    location = geolocation().locate(ip) if ip else None
    if location is None:
        if known:  # placed before, cannot be placed now: not a place we know
            reasons.append("unknown_location")
    elif all(distance_km(place, location) > TRAVEL_SLACK_KM for place in known):
        reasons.append("new_location")
    return reasons


def password_login(
    *,
    phone: str,
    password: str,
    now: datetime | None = None,
    **opening: Unpack[SessionOpening],
) -> SessionTokens:
    """Sign in with the phone number and password (factor 1), then open a session as
    ``opening`` says (``session_start``'s arguments); see the module docstring.

    Raises ``members.services.pii.InvalidMemberData`` for a malformed number; ``PasswordRefused``:
    ``credentials_invalid`` (unknown number, no password or a wrong one: the same answer
    after the same work, each a counted failure), ``password_locked`` (``retry_after``),
    ``otp_required`` (a correct password, but an MFA trigger holds: recorded as
    ``password_login_otp_required`` with the reasons); and whatever ``session_start``
    raises (``DeviceBlocked``, ``ImpossibleTravel``, ``MemberNotActive``, ``ValueError``).
    """
    now = now or timezone.now()
    channel, ip = opening["channel"], opening.get("ip")
    phone_index = blind_index("phone", phone_normalise(phone))
    member = Member.objects.filter(phone_index=phone_index).first()
    encoded = member.password_hash if member is not None else ""

    def check() -> bool:
        if not encoded:
            check_password(password, _dummy_hash(tuple(settings.PASSWORD_HASHERS)))
            return False
        assert member is not None  # encoded comes from a member
        return check_password(password, encoded, setter=_upgrade(member, encoded))

    refusal = otp_phone_credential_check(
        phone_index=phone_index, check=check, member=member, kind="password_failed", ip=ip, now=now
    )
    if refusal is not None:
        raise _from_otp(refusal, wrong="credentials_invalid")
    assert member is not None  # with no member check() fails, so a refusal was raised

    reasons = _mfa_reasons(member=member, device_fingerprint=opening["device_fingerprint"], ip=ip)
    if reasons:
        MemberSecurityEvent.objects.create(
            member=member, kind="password_login_otp_required", ip=ip or None,
            detail={"reasons": reasons, "channel": channel},
        )  # fmt: skip
        raise PasswordRefused("otp_required")
    tokens = session_start(member=member, now=now, **opening)
    MemberSecurityEvent.objects.create(
        member=member, kind="password_login", ip=ip or None,
        detail={"session_id": str(tokens.session_id), "channel": channel},
    )  # fmt: skip
    return tokens
