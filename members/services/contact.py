"""Changing a member's email address or phone number, with proof of the new one (issue 5;
spec "Email Verification" and "Session Invalidation").

A new value never replaces the old one until the member proves they control it:

1. ``contact_change_start`` (needs a step-up for ``change_email`` / ``change_phone``,
   spent here, in the same transaction) refuses a value another member has, cancels
   the member's earlier pending change of that kind and keeps the new value encrypted
   under the member's data key in a ``ContactVerification`` row, then
   - email: sends a link with a random token (256 bits) to the NEW address, after
     commit, with Django's ``send_mail`` (never through the outbox, which stores bodies
     and addresses in clear). The database keeps only the token's SHA-256. The token
     travels in the URL's fragment (``#token=...``), which browsers do not send to
     servers, so no access log sees it; the app page POSTs it to
     ``contact_email_confirm``. The link is valid ``MEMBER_AUTH["email_link_hours"]``
     hours (24) and works once;
   - phone: requests an SMS code with purpose ``change_phone`` to the NEW number
     (``members.services.otp.otp_request``, whose rate limits apply), bound to this change.
2. ``contact_email_confirm`` (the token alone: no session needed) or
   ``contact_phone_confirm`` (the member's session, the change's id, the challenge id
   and the code). Under the member's row lock, then the change's row lock: the change
   must be pending (not used, not cancelled or superseded, not expired: expiry is
   exact, ``now >= expires_at`` is expired); "taken" is checked again; the change is
   marked used by a conditional UPDATE, so two confirmations cannot both apply. Then:
   - a security notice goes to the OLD address, delivered at once, inside the
     transaction and before the change is written (the outbox looks the address up at
     delivery; afterwards it would reach the new one). A first email (none on file)
     is announced by SMS to the phone instead;
   - the value is written through ``members.services.member_pii_set`` (the unique blind
     index is the final guard: a concurrent writer taking the value makes the whole
     confirmation roll back with ``taken``, nothing half-saved);
   - the member's sessions end: all of them for an email link (confirmed without a
     session), all but the current one for a phone code;
   - ``contact_changed`` is recorded (field names and ids only, never values).

Tokens, codes and values never reach a log, a security event or an exception message.
Lock order everywhere here: the member row, then the change rows.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from loyalty.kernel.refusals import Refusal
from loyalty.notifications import message_deliver, notify_member
from members.models import ContactVerification, Member, MemberSecurityEvent, MemberSession, OtpChallenge
from members.services.membership import member_pii_set
from members.services.otp import OtpRefused, otp_request, otp_step_up_consume, otp_verify
from members.services.pii import (
    InvalidMemberData,
    MemberPiiErased,
    blind_index,
    data_key_new,
    data_key_wrap,
    email_mask,
    email_normalise,
    field_decrypt,
    field_encrypt,
    member_data_key,
    member_pii_value,
    phone_mask,
    phone_normalise,
)
from members.services.restrictions import step_up_check
from members.services.sessions import sessions_end_all

logger = logging.getLogger(__name__)

Kind = ContactVerification.Kind
# Where the member app lives; the email link opens its verify-email page.
DEFAULT_MEMBER_APP_URL = "http://localhost:3000"
TOKEN_BYTES = 32  # 256 bits
TOKEN_MAX = 128  # longer input is not a token of ours (refused before hashing)
DEFAULT_LINK_HOURS = 24

CONTACT_NOTICE: dict[str, tuple[str, str, str]] = {
    Kind.PHONE: ("sms", "Your phone number was changed", "the phone number"),
    Kind.EMAIL: ("email", "Your email address was changed", "the email address"),
}


class ContactRefused(Refusal):
    """A contact change was refused. ``code`` is stable (the API's error code).

    Codes: ``step_up_required``, ``unchanged`` (the value is the one on file), ``taken``
    (another member has it), ``link_invalid`` (no such link), ``link_expired``,
    ``link_used``, ``link_cancelled`` (superseded by a newer change, or cancelled),
    ``not_found`` (no such change of this member), ``verification_expired``,
    ``verification_used``, ``verification_cancelled``.
    """

    message = "The change was refused."
    MESSAGES = {
        "step_up_required": "Verify an SMS code for this change first (step-up), then retry within five minutes.",
        "unchanged": "This is already the value on file.",
        "taken": "Another member already has this address or number.",
        "link_invalid": "This verification link is not valid.",
        "link_expired": "This verification link has expired. Change the email address again for a new link.",
        "link_used": "This verification link was already used.",
        "link_cancelled": "This verification link was replaced by a newer one or cancelled.",
        "not_found": "Not found.",
        "verification_expired": "This change has expired. Start it again.",
        "verification_used": "This change was already confirmed.",
        "verification_cancelled": "This change was replaced by a newer one or cancelled.",
    }

    def __init__(self, code: str, *, field: str | None = None):
        # The field names the input a profile update refuses (not a fact of the answer).
        self.field = field
        super().__init__(code)


@dataclass(frozen=True)
class ContactChangeStarted:
    """A started change: never the token or the value."""

    verification: ContactVerification
    challenge_id: uuid.UUID | None  # phone: the SMS challenge to answer


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _link_hours() -> int:
    return settings.MEMBER_AUTH.get("email_link_hours", DEFAULT_LINK_HOURS)


def _app_url() -> str:
    return (getattr(settings, "MEMBER_APP_URL", "") or DEFAULT_MEMBER_APP_URL).rstrip("/")


def _phone_action(verification_id: uuid.UUID) -> str:
    """The action a new-number code is bound to: this change and no other."""
    return f"contact:{verification_id}"


def _normalise(kind: str, value: str) -> str:
    if kind == Kind.PHONE:
        return phone_normalise(value)
    if kind == Kind.EMAIL:
        return email_normalise(value)
    raise ValueError(f"unknown contact kind {kind!r}")


def _data_key(member: Member):
    """The member's data key, created first for a member without personal data yet."""
    key = member_data_key(member)
    if key is None:
        member.data_key_wrapped = data_key_wrap(data_key_new())
        member.save(update_fields=["data_key_wrapped"])
        key = member_data_key(member)
    return key


def _taken(kind: str, index: str, member: Member) -> bool:
    return Member.objects.filter(**{f"{kind}_index": index}).exclude(pk=member.pk).exists()


def _event(member: Member, kind: str, *, ip: str | None, **detail) -> None:
    MemberSecurityEvent.objects.create(member=member, kind=kind, ip=ip or None, detail=detail)


def _pending(member: Member, kind: str | None = None):
    rows = ContactVerification.objects.filter(member=member, verified_at__isnull=True, cancelled_at__isnull=True)
    return rows.filter(kind=kind) if kind else rows


# --- start ---------------------------------------------------------------------------------


@transaction.atomic
def contact_change_start(
    *, member: Member, kind: str, value: str, session: MemberSession | None = None, ip: str | None = None
) -> ContactChangeStarted:
    """Start changing the member's ``kind`` (email or phone) to ``value``; see the module
    docstring. Spends the step-up (a refusal gives it back: everything rolls back).

    Raises ``InvalidMemberData`` (malformed value), ``MemberPiiErased``,
    ``ContactRefused`` (``step_up_required``, ``unchanged``, ``taken``) and, for a phone,
    ``OtpRefused`` (``otp_rate_limited``, ``otp_locked`` for the new number).
    """
    normalised = _normalise(kind, value)
    index = blind_index(kind, normalised)
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.pii_erased_at is not None:
        raise MemberPiiErased()
    now = timezone.now()
    # The fraud score's step-up requirement: a step-up verified since it began passed it.
    step_up_check(member, ContactRefused("step_up_required", field=kind))
    # The step-up first: only a member who just proved their phone learns that a value is taken.
    if not otp_step_up_consume(member=member, action=f"change_{kind}", now=now):
        raise ContactRefused("step_up_required", field=kind)
    if getattr(member, f"{kind}_index") == index:
        raise ContactRefused("unchanged", field=kind)
    if _taken(kind, index, member):
        raise ContactRefused("taken", field=kind)

    superseded = _pending(member, kind).update(cancelled_at=now)
    verification = ContactVerification(
        id=uuid.uuid4(),
        member=member,
        kind=kind,
        value_encrypted=field_encrypt(_data_key(member), normalised),
        value_index=index,
    )
    if kind == Kind.EMAIL:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        verification.token_hash = _token_hash(token)
        verification.expires_at = now + timedelta(hours=_link_hours())
        verification.save(force_insert=True)
        transaction.on_commit(
            partial(_link_send, to=normalised, token=token, verification=verification),
        )
    else:
        challenge = otp_request(
            phone=normalised, purpose=OtpChallenge.Purpose.CHANGE_PHONE, action=_phone_action(verification.id), ip=ip
        )
        verification.challenge_id = challenge.challenge_id
        verification.expires_at = challenge.expires_at
        verification.save(force_insert=True)
    _event(
        member, "contact_change_requested", ip=ip, field=kind, verification_id=str(verification.id),
        session_id=str(session.id) if session else None, superseded=superseded,
    )  # fmt: skip
    logger.info("contact change %s requested (%s)", verification.id, kind)
    return ContactChangeStarted(verification=verification, challenge_id=verification.challenge_id)


def _link_send(*, to: str, token: str, verification: ContactVerification) -> None:
    """Email the link to the new address (after commit; never through the outbox)."""
    url = f"{_app_url()}/verify-email#token={token}"
    body = (
        "Please confirm this email address for your loyalty account by opening this link:\n\n"
        f"{url}\n\n"
        f"The link works once and expires on {verification.expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not ask for this, ignore this email: nothing changes without it."
    )
    try:
        send_mail("Confirm your email address", body, None, [to])
    except Exception as exc:  # an SMTP failure must not leak the address or link into logs
        logger.warning("verification link for change %s not sent (%s)", verification.id, type(exc).__name__)


# --- confirm -------------------------------------------------------------------------------


def _check_pending(verification: ContactVerification, now: datetime, *, prefix: str) -> None:
    if verification.verified_at is not None:
        raise ContactRefused(f"{prefix}_used")
    if verification.cancelled_at is not None:
        raise ContactRefused(f"{prefix}_cancelled")
    if now >= verification.expires_at:
        raise ContactRefused(f"{prefix}_expired")


def contact_email_confirm(*, token: str, ip: str | None = None) -> Member:
    """Apply the email change the link's ``token`` belongs to (see the module docstring).
    Ends all the member's sessions. Returns the member.

    Raises ``ContactRefused`` (``link_invalid``, ``link_expired``, ``link_used``,
    ``link_cancelled``, ``taken``) and ``MemberPiiErased``.
    """
    if not isinstance(token, str) or not 0 < len(token) <= TOKEN_MAX:
        raise ContactRefused("link_invalid")
    token_hash = _token_hash(token)
    member_id = (
        ContactVerification.objects.filter(token_hash=token_hash, kind=Kind.EMAIL)
        .values_list("member_id", flat=True)
        .first()
    )
    if member_id is None:
        raise ContactRefused("link_invalid")
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member_id)
        verification = ContactVerification.objects.select_for_update().get(token_hash=token_hash)
        now = timezone.now()
        _check_pending(verification, now, prefix="link")
        return _apply(member=member, verification=verification, now=now, session=None, ip=ip, via="email_link")


def contact_phone_confirm(
    *,
    member: Member,
    verification_id,
    challenge_id,
    code: str,
    session: MemberSession | None = None,
    ip: str | None = None,
) -> Member:
    """Apply the member's phone change ``verification_id`` with the SMS code sent to the
    new number. Ends the member's other sessions (all but ``session``). Returns the
    member.

    The code is checked first, outside the change's transaction (``otp_verify`` commits
    a wrong guess before it refuses), so do not call this inside a transaction.

    Raises ``ContactRefused`` (``not_found`` for an id that is not this member's phone
    change, ``verification_expired``, ``verification_used``,
    ``verification_cancelled``, ``taken``), ``OtpRefused`` (``otp_invalid`` for a
    challenge that is not this change's, and the other code refusals) and
    ``MemberPiiErased``.
    """
    try:
        verification_id = uuid.UUID(str(verification_id))
        challenge_id = uuid.UUID(str(challenge_id))
    except ValueError:
        raise ContactRefused("not_found") from None
    verification = ContactVerification.objects.filter(pk=verification_id, member=member, kind=Kind.PHONE).first()
    if verification is None:
        raise ContactRefused("not_found")
    _check_pending(verification, timezone.now(), prefix="verification")
    if verification.challenge_id != challenge_id:
        raise OtpRefused("otp_invalid")
    key = member_data_key(member)
    if key is None:
        raise MemberPiiErased()
    phone = field_decrypt(key, verification.value_encrypted)
    otp_verify(
        challenge_id=challenge_id,
        phone=phone,
        code=code,
        purpose=OtpChallenge.Purpose.CHANGE_PHONE,
        action=_phone_action(verification.id),
    )
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        verification = ContactVerification.objects.select_for_update().get(pk=verification.pk)
        now = timezone.now()
        _check_pending(verification, now, prefix="verification")
        return _apply(member=member, verification=verification, now=now, session=session, ip=ip, via="sms_code")


def _apply(
    *, member: Member, verification: ContactVerification, now: datetime, session: MemberSession | None, ip, via: str
) -> Member:
    """Write a pending change (both rows locked by the caller, inside its transaction)."""
    kind = verification.kind
    if member.pii_erased_at is not None:
        raise MemberPiiErased()
    if _taken(kind, verification.value_index, member):
        raise ContactRefused("taken", field=kind)
    used = ContactVerification.objects.filter(
        pk=verification.pk, verified_at__isnull=True, cancelled_at__isnull=True, expires_at__gt=now
    ).update(verified_at=now)
    if used != 1:  # cannot happen under the row lock; the conditional UPDATE is the last word
        raise ContactRefused("link_used" if kind == Kind.EMAIL else "verification_used")
    key = member_data_key(member)
    assert key is not None  # the value was encrypted with it (_data_key) and PII is not erased
    value = field_decrypt(key, verification.value_encrypted)
    if member_pii_value(member, kind):
        _notify_old_address(member, kind, now)
    else:
        _notify_first_email(member, now)
    try:
        change: dict[str, Any] = {kind: value}  # phone= or email=
        member = member_pii_set(member=member, **change)
    except InvalidMemberData:  # the blind index's unique constraint: taken meanwhile
        raise ContactRefused("taken", field=kind) from None
    ended = sessions_end_all(member=member, reason=f"{kind}_changed", except_session=session, now=now)
    _event(
        member, "contact_changed", ip=ip, fields=[kind], verification_id=str(verification.id), via=via,
        session_id=str(session.id) if session else None, sessions_ended=ended,
    )  # fmt: skip
    logger.info("contact change %s confirmed (%s, %s sessions ended)", verification.id, kind, ended)
    return member


def _notify_old_address(member: Member, kind: str, now: datetime) -> None:
    """Queue the notice to the field's channel and deliver it now, while the old address
    is still the one on file (see the module docstring)."""
    channel, subject, what = CONTACT_NOTICE[kind]
    message = notify_member(
        member=member,
        channel=channel,
        subject=subject,
        body=(
            f"{what.capitalize()} on your loyalty account was changed on {now:%Y-%m-%d %H:%M} UTC, and "
            "your sessions were signed out. If this was not you, contact us at once."
        ),
        topic="security",
    )
    message_deliver(message_id=message.pk)


def _notify_first_email(member: Member, now: datetime) -> None:
    """A first email address (none on file before): tell the phone (the outbox, as usual)."""
    notify_member(
        member=member,
        channel="sms",
        subject="Email address added",
        body=(
            f"An email address was added to your loyalty account on {now:%Y-%m-%d %H:%M} UTC. "
            "If this was not you, contact us at once."
        ),
        topic="security",
    )


# --- remove, list, cancel ----------------------------------------------------------------


@transaction.atomic
def contact_email_remove(*, member: Member, session: MemberSession | None = None, ip: str | None = None) -> Member:
    """Remove the member's email address (nothing to verify: it applies at once). Needs
    and spends a ``change_email`` step-up; notifies the old address first; cancels a
    pending email change; ends the member's other sessions.

    Raises ``ContactRefused`` (``step_up_required``, ``unchanged`` when there is no
    email) and ``MemberPiiErased``."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.pii_erased_at is not None:
        raise MemberPiiErased()
    now = timezone.now()
    step_up_check(member, ContactRefused("step_up_required", field="email"))
    if not otp_step_up_consume(member=member, action="change_email", now=now):
        raise ContactRefused("step_up_required", field="email")
    if not member.email_index:
        raise ContactRefused("unchanged", field="email")
    _pending(member, Kind.EMAIL).update(cancelled_at=now)
    _notify_old_address(member, Kind.EMAIL, now)
    member = member_pii_set(member=member, email=None)
    ended = sessions_end_all(member=member, reason="email_changed", except_session=session, now=now)
    _event(
        member, "contact_changed", ip=ip, fields=["email"], removed=True,
        session_id=str(session.id) if session else None, sessions_ended=ended,
    )  # fmt: skip
    return member


def contact_changes_pending(member: Member, *, now: datetime | None = None) -> list[dict]:
    """The member's pending changes (not used, cancelled or expired), newest first, with
    masked values only."""
    now = now or timezone.now()
    key = member_data_key(member)
    changes = []
    for row in _pending(member).filter(expires_at__gt=now).order_by("-created_at"):
        value = field_decrypt(key, row.value_encrypted) if key is not None else ""
        changes.append(
            {
                "id": row.id,
                "kind": row.kind,
                "value_masked": email_mask(value) if row.kind == Kind.EMAIL else phone_mask(value),
                "created_at": row.created_at,
                "expires_at": row.expires_at,
                "challenge_id": row.challenge_id,
            }
        )
    return changes


@transaction.atomic
def contact_change_cancel(*, member: Member, verification_id, ip: str | None = None) -> bool:
    """Cancel one of the member's pending changes: True when it was pending (now
    cancelled), False when there was nothing left to cancel (used, cancelled, expired).
    Raises ``ContactRefused("not_found")`` for an id that is not one of the member's."""
    try:
        verification_id = uuid.UUID(str(verification_id))
    except ValueError:
        raise ContactRefused("not_found") from None
    member = Member.objects.select_for_update().get(pk=member.pk)
    if not ContactVerification.objects.filter(pk=verification_id, member=member).exists():
        raise ContactRefused("not_found")
    now = timezone.now()
    cancelled = _pending(member).filter(pk=verification_id, expires_at__gt=now).update(cancelled_at=now) == 1
    if cancelled:
        _event(member, "contact_change_cancelled", ip=ip, verification_id=str(verification_id))
    return cancelled
