"""Member sign-in with an SMS code: verify the code, enrol or find the member, open a session.

One use case, called by ``POST /api/v1/auth/otp/verify`` (``members.api.auth_views``); the
steps are the services of ``members.services.otp``, ``members.services.membership``, ``members.services.consents`` and
``members.services.sessions``. The sign-in with a password is ``members.services.passwords.password_login``
(it opens its session with the same ``session_start``).

Deliberately not one transaction: the code check commits what it records (a counted wrong
guess, the code spent) before it refuses or returns, so a later refusal (the number taken
meanwhile, a blocked device) does not give the guess or the code back. The enrolment is
its own transaction: the member exists with their consents recorded, or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Unpack

from django.db import transaction

from members.models import ConsentRecord, Member, OtpChallenge
from members.selectors import member_by_phone
from members.services.consents import consents_record
from members.services.membership import member_create
from members.services.otp import OtpRefused, otp_verify
from members.services.sessions import SessionOpening, SessionTokens, session_start
from members.services.terms import terms_accept_at_enrolment

SIGN_IN_PURPOSES = frozenset({OtpChallenge.Purpose.LOGIN, OtpChallenge.Purpose.ENROL})


@dataclass(frozen=True)
class SignInResult:
    """A member signed in: the session's ``tokens``; ``enrolled`` when this sign-in
    created the member (purpose ``enrol``)."""

    member: Member
    tokens: SessionTokens
    enrolled: bool


def member_sign_in(
    *,
    challenge_id: uuid.UUID | str,
    phone: str,
    code: str,
    purpose: str,
    consents: Mapping[str, bool] | None = None,
    terms_version: int | None = None,
    **opening: Unpack[SessionOpening],
) -> SignInResult:
    """Sign a member in with the code sent to ``phone`` (E.164) for ``purpose``, then open
    a session as ``opening`` says (``session_start``'s channel, device, ip, remember_me...).

    ``login``: the member enrolled with the number gets a session. ``enrol``: the
    member is created with ``consents`` recorded (source ``enrolment``; ``essential``
    must be true) and, with ``terms_version``, their acceptance of those terms when they
    are the ones in force (``members.services.terms``), then gets their first session. The caller checks the whole input
    before calling: the code is spent (or a wrong guess counted) first of all.

    Raises ``OtpRefused`` (any ``otp_verify`` refusal; ``otp_invalid`` too when the
    number's member is gone by the time of a ``login``: erased, or changed number);
    for ``enrol`` ``InvalidMemberData`` (``phone``: ``taken`` when the number was
    enrolled meanwhile) and ``ConsentRefused`` (``essential_consent_required``), with
    nothing created; whatever ``session_start`` raises (``SessionRefused``:
    ``DeviceBlocked``, ``ImpossibleTravel``, ``MemberNotActive``; ``ValueError``).
    ``ValueError`` too for a purpose other than ``login`` or ``enrol``, before the code
    is looked at.
    """
    if purpose not in SIGN_IN_PURPOSES:
        raise ValueError(f"not a sign-in purpose: {purpose!r}")
    otp_verify(challenge_id=challenge_id, phone=phone, code=code, purpose=purpose)
    enrolled = purpose == OtpChallenge.Purpose.ENROL
    if enrolled:
        member = member_enrol(phone=phone, consents=consents or {}, ip=opening.get("ip"), terms_version=terms_version)
    else:
        found = member_by_phone(phone)
        if found is None:  # the number's member was erased or changed number meanwhile
            raise OtpRefused("otp_invalid")
        member = found
    return SignInResult(member=member, tokens=session_start(member=member, **opening), enrolled=enrolled)


@transaction.atomic
def member_enrol(
    *, phone: str, consents: Mapping[str, bool], ip: str | None = None, terms_version: int | None = None
) -> Member:
    """Create the member for ``phone`` and record their enrolment ``consents`` (purpose ->
    granted), in one transaction: the member exists with their consents, or not at all.
    ``terms_version``: the terms the member was shown and accepted; recorded (channel
    ``enrolment``) when it is the version in force, else not (asked at sign-in).

    Raises ``InvalidMemberData`` (``phone``: ``taken`` when someone is enrolled with the
    number) and ``ConsentRefused`` (``essential_consent_required`` unless ``essential``
    is true); ``ValueError`` for an unknown purpose.
    """
    member = member_create(phone=phone)
    consents_record(member=member, choices=dict(consents), source=ConsentRecord.Source.ENROLMENT, ip=ip)
    if terms_version is not None:
        terms_accept_at_enrolment(member, terms_version, "enrolment")
    return member
