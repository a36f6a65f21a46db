"""The member changes their own profile (``PATCH /api/v1/me``): one use case.

Name, address, date of birth and preferred channel change at once (``members.services.
member_pii_set``). A new email or phone is not written: it starts a verification of the
new address (``members.services.contact.contact_change_start``, which spends the step-up); an
empty email removes it at once (``contact_email_remove``, step-up too). All of it is one
transaction: any refusal changes nothing and gives every step-up back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import transaction

from loyalty.kernel.refusals import Refusal
from members.models import Member, MemberSecurityEvent, MemberSession
from members.services.contact import ContactChangeStarted, ContactRefused, contact_change_start, contact_email_remove
from members.services.membership import UNSET, member_pii_set
from members.services.otp import otp_step_up_valid
from members.services.pii import (
    ADDRESS_MAX,
    NAME_MAX,
    InvalidMemberData,
    MemberPii,
    birth_date_normalise,
    email_normalise,
    member_pii_read,
    phone_normalise,
    text_normalise,
)
from members.services.sessions import session_may

CONTACT_FIELDS = ("phone", "email")

# Each field's own check (member_pii_set repeats them): every error is reported at once.
_NORMALISERS: dict[str, Callable[[Any], Any]] = {
    "name": lambda v: text_normalise("name", v, max_length=NAME_MAX),
    "address": lambda v: text_normalise("address", v, max_length=ADDRESS_MAX),
    "birth_date": birth_date_normalise,
    "phone": phone_normalise,
    "email": email_normalise,
}


class ProfileRefused(Refusal):
    """A profile change was refused as a whole. ``code`` is stable (the API's error code):
    ``change_details_not_allowed`` (a web remember-me session), ``step_up_required``
    (``actions``: the step-ups to verify first, e.g. ``change_email``)."""

    message = "The change was refused."
    MESSAGES = {
        "change_details_not_allowed": (
            "This session (web, remember me) may not change details. Sign in again without remember me."
        ),
        "step_up_required": "Verify an SMS code for this change first (step-up), then retry within five minutes.",
    }

    def __init__(self, code: str, *, actions: list[str] | None = None):
        self.actions = actions or []
        facts: dict[str, Any] = {"actions": self.actions} if actions is not None else {}
        super().__init__(code, **facts)


@dataclass(frozen=True)
class ProfileUpdate:
    """The member after the change, and the contact changes it started (in field order)."""

    member: Member
    started: list[ContactChangeStarted] = field(default_factory=list)


def member_profile_update(
    *,
    member: Member,
    session: MemberSession,
    ip: str | None = None,
    name: str | None = UNSET,
    address: str | None = UNSET,
    birth_date: date | str | None = UNSET,
    preferred_channel: str | None = UNSET,
    phone: str | None = UNSET,
    email: str | None = UNSET,
) -> ProfileUpdate:
    """Change the given fields of ``member``'s profile, as the member, from ``session``.

    ``None`` or ``""`` clears a field (the phone cannot be cleared; an email is removed);
    UNSET leaves it alone. A phone or email equal to the one on file is no change; when
    nothing is left to change the member is returned as is. Each changed email or phone
    needs an unspent step-up for ``change_email`` / ``change_phone``.

    Raises ``ProfileRefused`` (``change_details_not_allowed``; ``step_up_required`` with
    the missing ``actions``, checked before anything is written and again when the
    step-up is spent), ``InvalidMemberData`` (every field's refusal at once: codes such
    as ``invalid_phone``, ``taken``, ``too_long``, ``required``), ``MemberPiiErased``,
    ``ContactRefused`` (``taken``, ``unchanged``: ``field`` names the field) and, for a
    new phone, ``OtpRefused`` (``otp_rate_limited``, ``otp_locked``). Records a
    ``profile_changed`` security event (the fields' names, never their values).
    """
    given = {
        "name": name,
        "address": address,
        "birth_date": birth_date,
        "preferred_channel": preferred_channel,
        "phone": phone,
        "email": email,
    }
    values = {key: value for key, value in given.items() if value is not UNSET}
    if not session_may(session, "change_details"):
        raise ProfileRefused("change_details_not_allowed")
    contact = _check(values, member_pii_read(member))
    if not values:  # only the phone or email already on file
        return ProfileUpdate(member=member)
    missing = [f"change_{kind}" for kind in contact if not otp_step_up_valid(member=member, action=f"change_{kind}")]
    if missing:
        raise ProfileRefused("step_up_required", actions=missing)
    try:
        return _apply(member=member, session=session, ip=ip, values=values, contact=contact)
    except ContactRefused as refusal:
        if refusal.code == "step_up_required":  # spent meanwhile by a concurrent change
            raise ProfileRefused("step_up_required", actions=[f"change_{refusal.field}"]) from None
        raise


def _check(values: dict[str, Any], current: MemberPii) -> list[str]:
    """Validates every given value (all refusals at once); drops a phone or email equal
    to the current one (or an empty email when there is none); returns the contact
    fields that change."""
    errors: dict[str, tuple[str, str]] = {}
    contact: list[str] = []
    for field_name, value in list(values.items()):
        if field_name == "preferred_channel":
            continue
        if value is None or value == "":
            if field_name == "phone":
                errors["phone"] = ("required", "The phone number cannot be removed.")
            elif field_name == "email" and current.email:
                contact.append("email")
            elif field_name == "email":
                values.pop("email")
            continue
        try:
            normalised = _NORMALISERS[field_name](value)
        except InvalidMemberData as refusal:
            errors.update(refusal.errors)
            continue
        if field_name in CONTACT_FIELDS:
            if normalised == getattr(current, field_name):
                values.pop(field_name)
            else:
                contact.append(field_name)
    if errors:
        raise InvalidMemberData(errors)
    return contact


def _apply(
    *, member: Member, session: MemberSession, ip: str | None, values: dict[str, Any], contact: list[str]
) -> ProfileUpdate:
    """One transaction: the other fields at once, then each contact change started
    (or the email removed). Any refusal rolls all of it back, step-ups included."""
    started = []
    with transaction.atomic():
        changed = {key: value for key, value in values.items() if key not in contact}
        if changed:
            member = member_pii_set(member=member, **changed)
            MemberSecurityEvent.objects.create(
                member=member, kind="profile_changed", ip=ip,
                detail={"fields": sorted(changed), "session_id": str(session.id)},
            )  # fmt: skip
        for kind in sorted(contact):
            if kind == "email" and not values["email"]:
                member = contact_email_remove(member=member, session=session, ip=ip)
            else:
                started.append(
                    contact_change_start(member=member, kind=kind, value=values[kind], session=session, ip=ip)
                )
    member.refresh_from_db()
    return ProfileUpdate(member=member, started=started)
