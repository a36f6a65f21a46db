"""Reads of members: equality look-ups of personal data through the blind indexes."""

from __future__ import annotations

from members.models import Member
from members.services.pii import DEFAULT_PHONE_REGION, InvalidMemberData, blind_index, email_normalise, phone_normalise


def member_by_phone(phone: str, *, region: str = DEFAULT_PHONE_REGION) -> Member | None:
    """The member with this phone number in any common writing (spaces, national or
    international form), or None, also for a number that is not valid."""
    try:
        normalised = phone_normalise(phone, region=region)
    except InvalidMemberData:
        return None
    return Member.objects.filter(phone_index=blind_index("phone", normalised)).first()


def member_by_email(email: str) -> Member | None:
    """The member with this email address (case-insensitive, trimmed), or None."""
    try:
        normalised = email_normalise(email)
    except InvalidMemberData:
        return None
    return Member.objects.filter(email_index=blind_index("email", normalised)).first()
