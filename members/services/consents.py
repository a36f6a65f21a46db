"""Members' consents: the current choice per purpose and the record of every change.

The law's "record of consent" (spec, PDPA: explicit, informed, separate per purpose,
easy to withdraw, recorded) is ``ConsentRecord``: one append-only row per change, with
the text version the member saw, the source (enrolment, the member, staff) and the
session. ``Consent`` holds the current choice per member and purpose and is written
only here, together with the record, under the member's row lock.

Purposes:

- ``essential``: running the membership. Given at enrolment and never withdrawn through
  consents: a member who no longer wants it closes the account or asks for erasure.
- ``sms_marketing``, ``email_marketing``, ``analytics``, ``data_sharing``,
  ``personalisation``: separate opt-ins, off unless the member turned them on.

A purpose never recorded counts as not granted. The consent text version comes from
``settings.MEMBER_AUTH["consent_version"]`` (default ``DEFAULT_CONSENT_VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from loyalty.kernel.refusals import Refusal
from members.models import Consent, ConsentRecord, Member, MemberSecurityEvent, MemberSession
from members.services.sessions import session_may

Purpose = Consent.Purpose
Source = ConsentRecord.Source

DEFAULT_CONSENT_VERSION = "2026-11"
OPT_IN_PURPOSES = tuple(p for p in Purpose.values if p != Purpose.ESSENTIAL)
# Marketing goes out by these channels only, each with its own opt-in.
MARKETING_PURPOSE_BY_CHANNEL = {"sms": Purpose.SMS_MARKETING, "email": Purpose.EMAIL_MARKETING}

MESSAGES = {
    "essential_consent_required": (
        "Essential processing is needed to run the membership and cannot be withdrawn here. "
        "To stop it, close the account or ask for your personal data to be erased."
    ),
    "consent_grant_by_staff": (
        "Staff may record a withdrawal on the member's request, never a grant: the member gives consent themselves."
    ),
    "change_details_not_allowed": (
        "This session (web, remember me) may withdraw consents but not grant them. Sign in again without remember me."
    ),
}


class ConsentRefused(Refusal):
    """A refused consent change; ``code`` is stable: ``essential_consent_required``,
    ``consent_grant_by_staff``, ``change_details_not_allowed``; ``purposes`` (a fact)."""

    MESSAGES = MESSAGES

    def __init__(self, code: str, purposes: list[str] | None = None):
        self.purposes = purposes or []
        super().__init__(code, purposes=self.purposes)


def consent_version() -> str:
    """The version of the consent text members are shown now (recorded with each change)."""
    return str(settings.MEMBER_AUTH.get("consent_version", DEFAULT_CONSENT_VERSION))


# --- selectors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentState:
    purpose: str
    granted: bool
    version: str | None  # None: never recorded
    updated_at: datetime | None

    @property
    def label(self) -> str:
        return Purpose(self.purpose).label


def member_consents(member: Member) -> dict[str, ConsentState]:
    """Every purpose, in ``Consent.Purpose`` order, with the member's current choice;
    a purpose never recorded is not granted."""
    rows = {c.purpose: c for c in Consent.objects.filter(member=member)}
    states = {}
    for purpose in Purpose.values:
        row = rows.get(purpose)
        states[purpose] = ConsentState(
            purpose=purpose,
            granted=bool(row and row.granted),
            version=row.version if row else None,
            updated_at=row.updated_at if row else None,
        )
    return states


def member_consent_records(member: Member) -> QuerySet[ConsentRecord]:
    """The member's record of consent, newest first."""
    return ConsentRecord.objects.filter(member=member).order_by("-created_at", "-id")


def _marketing_purpose(channel: str) -> str:
    try:
        return MARKETING_PURPOSE_BY_CHANNEL[channel]
    except KeyError:
        raise ValueError(f"no marketing by {channel!r}") from None


def members_may_receive_marketing(channel: str) -> QuerySet[Member]:
    """The members a marketing message may go to by ``channel`` (``sms`` or ``email``):
    active, personal data not erased, and opted in to that channel's marketing. The one
    rule a marketing sender must select its audience with."""
    granted = Consent.objects.filter(member=OuterRef("pk"), purpose=_marketing_purpose(channel), granted=True)
    return Member.objects.filter(Q(status=Member.Status.ACTIVE), Q(pii_erased_at__isnull=True), Exists(granted))


def member_may_receive_marketing(member: Member, channel: str) -> bool:
    """Whether a marketing message may go to ``member`` by ``channel`` (the rule of
    ``members_may_receive_marketing``). Service messages (codes, security notices,
    receipts) are not marketing and do not ask. Raises ValueError for another channel."""
    return members_may_receive_marketing(channel).filter(pk=member.pk).exists()


# --- services -------------------------------------------------------------------------------


@transaction.atomic
def consents_record(
    *,
    member: Member,
    choices: dict[str, bool],
    source: str,
    session: MemberSession | None = None,
    ip: str | None = None,
) -> list[ConsentRecord]:
    """Record the member's choices (purpose -> granted) and return the new records.

    Only changes are written: a purpose never recorded, a value that differs from the
    current one, or a grant of a purpose granted under an older text version (the
    member agreed to the new text). Each change is one ``ConsentRecord`` under the
    current ``consent_version()`` and an update (or insert) of the ``Consent`` row; a
    ``consent_changed`` security event names the purposes (never the values). Nothing
    is written when nothing changes.

    The member's row is locked first, so concurrent changes are serialised: each sees
    the state the previous one left, the history alternates, and its latest row per
    purpose is the current choice.

    Raises ``ConsentRefused``: ``essential_consent_required`` (withdrawing essential
    processing, or an enrolment without it), ``consent_grant_by_staff`` (source
    ``staff`` granting anything), ``change_details_not_allowed`` (a grant from a
    lower-privilege session: web with remember-me). ``ValueError`` for an unknown
    purpose or source, or a value that is not a bool.
    """
    if source not in Source.values:
        raise ValueError(f"unknown consent source {source!r}")
    unknown = sorted(set(choices) - set(Purpose.values))
    if unknown:
        raise ValueError(f"unknown consent purposes {unknown}")
    if any(not isinstance(value, bool) for value in choices.values()):
        raise ValueError("consent choices are booleans")
    if choices.get(Purpose.ESSENTIAL) is False or (
        source == Source.ENROLMENT and choices.get(Purpose.ESSENTIAL) is not True
    ):
        raise ConsentRefused("essential_consent_required", [Purpose.ESSENTIAL.value])

    # Lock the member, then read: the choices are compared with the committed state.
    member = Member.objects.select_for_update().get(pk=member.pk)
    current = {c.purpose: c for c in Consent.objects.filter(member=member)}
    version = consent_version()
    changes = []
    for purpose in Purpose.values:  # a fixed order: records and events read the same each time
        if purpose not in choices:
            continue
        granted, row = choices[purpose], current.get(purpose)
        if row is None or row.granted != granted or (granted and row.version != version):
            changes.append((purpose, granted, row))
    if not changes:
        return []

    grants = [purpose for purpose, granted, _ in changes if granted]
    if grants and source == Source.STAFF:
        raise ConsentRefused("consent_grant_by_staff", grants)
    if grants and session is not None and not session_may(session, "change_details"):
        raise ConsentRefused("change_details_not_allowed", grants)

    session_id = session.pk if session is not None else None
    records = []
    for purpose, granted, row in changes:
        record = ConsentRecord.objects.create(
            member=member, purpose=purpose, granted=granted, version=version, source=source, session_id=session_id
        )
        records.append(record)
        if row is None:
            Consent.objects.create(
                member=member, purpose=purpose, granted=granted, version=version, updated_at=record.created_at
            )
        else:
            row.granted, row.version, row.updated_at = granted, version, record.created_at
            row.save(update_fields=["granted", "version", "updated_at"])

    detail = {"purposes": [purpose for purpose, _, _ in changes], "source": source}
    if session_id is not None:
        detail["session_id"] = str(session_id)
    MemberSecurityEvent.objects.create(member=member, kind="consent_changed", ip=ip, detail=detail)
    return records
