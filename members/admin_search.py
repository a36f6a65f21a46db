"""The admin's member search, with no personal data in any URL (issue 11, D7).

A GET search (``?q=``) would put phone numbers and email addresses in the address bar,
the browser history and every access log on the way. Instead the search box POSTs the
term to the member admin's ``search/`` view, which finds the members at once and keeps,
in the staff user's session under a random short-lived token, only

- the primary keys of the members found, and
- a label safe to show: a loyalty number or member id as typed, a phone number or email
  address masked (``+60 ••• ••• 89``), anything else not at all;

then redirects to the changelist with ``?s=<token>``. The term itself is kept nowhere:
not in a URL, not in the session, not in a log. A token is bound to the session (useless
to anyone else), expires after ``SEARCH_TTL`` and is one of at most ``SAVED_MAX``.

A term finds members by exact loyalty number (as printed, in groups of four, or not),
member id (the pseudonymous UUID, with or without dashes), phone number (any common
writing) or email address, the last two through the blind indexes.

Other admins' searches (``member_lookup``) find a member's rows by loyalty number or
member id only: never by phone or email, whose terms would sit in a URL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django import forms
from django.db.models import Q

from members.models import Member
from members.numbers import LENGTH as LOYALTY_NUMBER_LENGTH
from members.numbers import loyalty_number_is_well_formed
from members.selectors import member_by_email, member_by_phone
from members.services.pii import InvalidMemberData, email_mask, email_normalise, phone_mask, phone_normalise
from staffauth.posted_search import PostedSearch, posted_search_load, posted_search_save

SESSION_KEY = "admin_member_searches"
TERM_MAX = 254  # the longest email address; longer terms find nothing
UNSHOWN = "the term you entered"
# What people type between the groups of a loyalty number (as pages print it).
NUMBER_SEPARATORS = frozenset(" -\u00a0\u2010\u2011\u2012\u2013")


def loyalty_number_compact(term: str) -> str:
    """``term`` without the spaces or dashes between groups (``9900 1234 5678 9012``)."""
    return "".join(char for char in term.strip() if char not in NUMBER_SEPARATORS)


def member_uuid(term: str) -> uuid.UUID | None:
    """The UUID ``term`` holds (dashes or not, any case), or None."""
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


def member_lookup(term: str, path: str = "member__") -> Q | None:
    """For another admin's search: its rows whose member (``path``) has the loyalty
    number or the member id ``term``; None when ``term`` is neither."""
    found = member_uuid(term)
    if found is not None:
        return Q(**{f"{path}member_id": found})
    number = loyalty_number_compact(term)
    if number.isascii() and number.isdigit() and len(number) == LOYALTY_NUMBER_LENGTH:
        return Q(**{f"{path}loyalty_number": number})
    return None


@dataclass(frozen=True)
class MemberSearch:
    """A search's outcome: the members found and a label that holds no personal data."""

    member_pks: tuple[int, ...]
    label: str


def member_search_find(term: str) -> MemberSearch:
    """The members ``term`` finds (exact matches only) and a label for it."""
    term = term.strip()
    if not term or len(term) > TERM_MAX:
        return MemberSearch((), UNSHOWN if term else "")
    if "@" in term:
        found = member_by_email(term)
        try:
            label = email_mask(email_normalise(term))
        except InvalidMemberData:
            label = "an email address that is not valid"
        return MemberSearch((found.pk,) if found else (), label)
    found_uuid = member_uuid(term)
    if found_uuid is not None:
        pks = tuple(Member.objects.filter(member_id=found_uuid).values_list("pk", flat=True))
        return MemberSearch(pks, str(found_uuid))
    number = loyalty_number_compact(term)
    by_number = tuple(Member.objects.filter(loyalty_number=number).values_list("pk", flat=True))
    if by_number or loyalty_number_is_well_formed(number):
        return MemberSearch(by_number, number)
    found = member_by_phone(term)
    try:
        label = phone_mask(phone_normalise(term))
    except InvalidMemberData:
        # Not a phone number, loyalty number or UUID: perhaps a name, perhaps a card
        # number typed by mistake. Never echoed.
        label = UNSHOWN
    return MemberSearch((found.pk,) if found else (), label)


def member_search_save(session, search: MemberSearch, *, now: float | None = None) -> str:
    """Keep ``search`` in ``session``; returns its token (``staffauth.posted_search``)."""
    return posted_search_save(session, SESSION_KEY, PostedSearch(search.member_pks, search.label), now=now)


def member_search_load(session, token: str, *, now: float | None = None) -> MemberSearch | None:
    """The search saved under ``token`` in ``session``; None when unknown or expired."""
    found = posted_search_load(session, SESSION_KEY, token, now=now)
    return None if found is None else MemberSearch(tuple(int(pk) for pk in found.pks), found.label)


def member_by_typed_loyalty_number(typed: str) -> Member:
    """The member whose loyalty number an admin form's field holds (spaces around it
    and between its groups ignored), or the form's error."""
    member = Member.objects.filter(loyalty_number=loyalty_number_compact(typed)).first()
    if member is None:
        raise forms.ValidationError("No member has that loyalty number.")
    return member


def member_search_kind(term: str) -> str:
    """Which kind of search ``term`` makes (email, member_id, number, phone), as
    ``member_search_find`` decides it: the access log keeps the kind, never the term."""
    term = term.strip()
    if "@" in term:
        return "email"
    if member_uuid(term) is not None:
        return "member_id"
    number = loyalty_number_compact(term)
    if loyalty_number_is_well_formed(number) or Member.objects.filter(loyalty_number=number).exists():
        return "number"
    return "phone"
