"""The member sign-in use case (members.services.signin): verify the code, enrol or find the member,
open a session; what each refusal leaves behind. The HTTP side is tests/members/api/test_auth_api.py."""

from __future__ import annotations

import re

import pytest

from loyalty.notifications import LocmemSmsBackend
from members.models import Consent, Member, MemberSession, OtpChallenge
from members.selectors import member_by_phone
from members.services.consents import ConsentRefused
from members.services.membership import member_create, member_pii_shred
from members.services.otp import OtpRefused, otp_request
from members.services.pii import InvalidMemberData
from members.services.sessions import DeviceBlocked, device_block
from members.services.signin import member_sign_in

pytestmark = pytest.mark.django_db

PHONE = "+60125550101"
STRANGER = "+60135550202"  # nobody is enrolled with this number
FINGERPRINT = "fp-signin-service"


@pytest.fixture
def code_for(django_capture_on_commit_callbacks):
    """Request a code for (phone, purpose); return (challenge_id, code)."""

    def request(phone: str, purpose: str) -> tuple:
        with django_capture_on_commit_callbacks(execute=True):
            result = otp_request(phone=phone, purpose=purpose, ip="10.0.0.1")
        text = [m for m in LocmemSmsBackend.outbox if m["to"] == phone][-1]["text"]
        return result.challenge_id, re.search(r"\b(\d{6})\b", text).group(1)

    return request


def sign_in(challenge_id, code, *, phone=PHONE, purpose="login", **extra):
    return member_sign_in(
        challenge_id=challenge_id, phone=phone, code=code, purpose=purpose,
        channel="app", device_fingerprint=FINGERPRINT, device_label="Pixel", ip="10.0.0.1", **extra,
    )  # fmt: skip


def test_login_opens_a_session_for_the_enrolled_member(member, code_for):
    # given a code sent to an enrolled number
    challenge_id, code = code_for(PHONE, "login")
    # when the member signs in with it
    result = sign_in(challenge_id, code)
    # then a session of theirs is open, and they were not enrolled again
    assert result.member == member and result.enrolled is False
    session = MemberSession.objects.get(pk=result.tokens.session_id)
    assert session.member == member and session.ended_at is None
    assert OtpChallenge.objects.get(pk=challenge_id).verified_at is not None


def test_enrol_creates_the_member_with_consents_and_opens_the_first_session(code_for):
    # given a code for a number nobody is enrolled with
    challenge_id, code = code_for(STRANGER, "enrol")
    # when they enrol with the essential consent
    result = sign_in(challenge_id, code, phone=STRANGER, purpose="enrol", consents={"essential": True})
    # then the member exists with that consent and a session
    assert result.enrolled is True and result.member == member_by_phone(STRANGER)
    assert Consent.objects.get(member=result.member, purpose="essential").granted is True
    assert MemberSession.objects.filter(member=result.member, pk=result.tokens.session_id).exists()


def test_enrol_without_essential_consent_creates_nothing_but_spends_the_code(code_for):
    challenge_id, code = code_for(STRANGER, "enrol")
    with pytest.raises(ConsentRefused):
        sign_in(challenge_id, code, phone=STRANGER, purpose="enrol", consents={"essential": False})
    assert member_by_phone(STRANGER) is None and not Member.objects.exists()
    assert OtpChallenge.objects.get(pk=challenge_id).verified_at is not None


def test_enrol_of_a_number_enrolled_meanwhile_is_refused_as_taken(store_a, code_for):
    # given an enrolment code, then someone enrols with the number first
    challenge_id, code = code_for(STRANGER, "enrol")
    member_create(home_store=store_a, phone=STRANGER)
    # when the code is used, then the number is taken and no second member appears
    with pytest.raises(InvalidMemberData) as caught:
        sign_in(challenge_id, code, phone=STRANGER, purpose="enrol", consents={"essential": True})
    assert caught.value.errors["phone"][0] == "taken"
    assert Member.objects.count() == 1


def test_wrong_code_is_refused_and_nothing_opens(member, code_for):
    challenge_id, code = code_for(PHONE, "login")
    with pytest.raises(OtpRefused) as caught:
        sign_in(challenge_id, f"{(int(code) + 1) % 1_000_000:06d}")
    assert caught.value.code == "otp_wrong_code"
    assert not MemberSession.objects.exists()


def test_login_of_a_member_erased_meanwhile_is_otp_invalid(member, code_for):
    challenge_id, code = code_for(PHONE, "login")
    member_pii_shred(member=member)
    with pytest.raises(OtpRefused) as caught:
        sign_in(challenge_id, code)
    assert caught.value.code == "otp_invalid"
    assert not MemberSession.objects.exists()


def test_a_blocked_device_is_refused_after_the_code_is_spent(member, code_for):
    # given the device signed in once, then blocked
    first = sign_in(*code_for(PHONE, "login"))
    device_block(member=member, device_id=MemberSession.objects.get(pk=first.tokens.session_id).device_id)
    # when it signs in again, then it is refused and the code is spent all the same
    challenge_id, code = code_for(PHONE, "login")
    with pytest.raises(DeviceBlocked):
        sign_in(challenge_id, code)
    assert OtpChallenge.objects.get(pk=challenge_id).verified_at is not None


def test_a_purpose_that_is_not_a_sign_in_is_a_programming_error(member, code_for):
    challenge_id, code = code_for(PHONE, "login")
    with pytest.raises(ValueError):
        sign_in(challenge_id, code, purpose="step_up")
    assert OtpChallenge.objects.get(pk=challenge_id).verified_at is None
