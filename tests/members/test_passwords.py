"""The member's optional password (members.services.passwords): the rules at their boundaries,
who may set, change or remove it, history, sessions ended, step-ups spent, and signing
in with it (factor 1 only: MFA triggers, identical refusals, failures counted and locked
under the OTP daily cap)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from loyalty.kernel.models import OutboundMessage
from members.models import Member, MemberPasswordHistory, MemberSecurityEvent, MemberSession, OtpPhoneState
from members.services.membership import member_create
from members.services.otp import OtpRefused, otp_request, otp_step_up_valid
from members.services.passwords import (
    PasswordInvalid,
    PasswordRefused,
    member_password_remove,
    member_password_set,
    password_login,
    password_validate,
)
from members.services.pii import blind_index, phone_normalise
from members.services.sessions import access_token_authenticate, device_block, session_start
from tests.concurrency import race

START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 11:00 in Kuala Lumpur
PHONE = "+60 12-555 0101"
STRANGER = "+60 13-555 0202"  # nobody is enrolled with this number
FP = "fp-phone-7c1e2a"
KL, KL_TOO, PENANG, NOWHERE = "192.0.2.10", "192.0.2.20", "192.0.2.200", "10.0.0.1"
GOOD = "Rambutan#2026"
PASSWORDS = ["Durian!4471", "Mango%8812", "Papaya&3309", "Guava*5120", "Lychee@6634", "Pomelo^7745"]


@pytest.fixture
def with_password(member, phone_step_up):
    """The member with the first password GOOD (set through the step-up)."""
    phone_step_up("password_set")
    member_password_set(member=member, new_password=GOOD)
    member.refresh_from_db()
    return member


@pytest.fixture
def test_geo(settings):
    settings.GEOLOCATION_BACKEND = "members.geo.TestGeolocation"


def refused(call) -> str:
    with pytest.raises(PasswordRefused) as caught:
        call()
    return caught.value.code


def rule(member, password) -> str | None:
    try:
        password_validate(member=member, password=password)
    except PasswordInvalid as refusal:
        return refusal.code
    return None


def login(phone=PHONE, password=GOOD, fingerprint=FP, ip=KL, **kwargs):
    return password_login(
        phone=phone, password=password, channel="app", device_fingerprint=fingerprint, ip=ip, **kwargs
    )


def kinds(member) -> list[str]:
    return list(MemberSecurityEvent.objects.filter(member=member).order_by("pk").values_list("kind", flat=True))


def failures(phone=PHONE) -> int:
    state = OtpPhoneState.objects.filter(pk=blind_index("phone", phone_normalise(phone))).first()
    return state.failures if state else 0


# --- the rules, each at its boundary --------------------------------------------------------------


def test_seven_characters_are_too_short_and_eight_are_enough(member):
    assert rule(member, "Ab1!xyz") == "password_too_short"
    assert rule(member, "Ab1!xyzw") is None


def test_128_characters_are_allowed_and_129_too_long(member):
    base = "Ab1!" + "kq7#" * 31  # 128 characters, nothing common
    assert len(base) == 128 and rule(member, base) is None
    assert rule(member, base + "z") == "password_too_long"


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("12345678!#", "password_needs_letter"),
        ("Abcdefgh!#", "password_needs_digit"),
        ("Abcdefgh12", "password_needs_symbol"),
        ("Abcd efgh 12", "password_needs_symbol"),  # a space is not a symbol
    ],
)
def test_letters_digits_and_symbols_must_all_appear(member, password, code):
    assert rule(member, password) == code


def test_a_common_password_is_refused_whatever_its_case(member):
    assert rule(member, "p@ssw0rd") == "password_too_common"
    assert rule(member, "P@SSW0RD") == "password_too_common"
    assert rule(member, "Password1!") == "password_too_common"
    assert rule(member, "Pa55w0rd!Kedah") is None


def test_the_members_phone_digits_are_refused_in_any_writing(member):
    # +60 12-555 0101: the last seven digits of the national number are 5550101.
    assert rule(member, "Siti!5550101") == "password_contains_phone"
    assert rule(member, "Siti!555-0101") == "password_contains_phone"
    assert rule(member, "x!+60125550101") == "password_contains_phone"
    assert rule(member, "Siti!5550102") is None  # a different number
    assert rule(member, "Siti!550101") is None  # six digits are not the number


def test_each_of_the_last_five_is_refused_and_the_sixth_back_allowed(clock, with_password):
    member = with_password
    # GOOD, then PASSWORDS[0..3]: the last five, the current one included.
    previous = GOOD
    for password in PASSWORDS[:4]:
        clock.shift(timedelta(minutes=1))
        member_password_set(member=member, new_password=password, current_password=previous)
        previous = password
    member.refresh_from_db()
    for password in [GOOD, *PASSWORDS[:4]]:
        assert rule(member, password) == "password_reused"
    clock.shift(timedelta(minutes=1))
    member_password_set(member=member, new_password=PASSWORDS[4], current_password=previous)
    member.refresh_from_db()
    assert rule(member, GOOD) is None  # now the sixth back
    assert rule(member, PASSWORDS[0]) == "password_reused"
    # Only what the rule needs is kept: the last five hashes, never a password.
    kept = list(MemberPasswordHistory.objects.filter(member=member).values_list("password_hash", flat=True))
    assert len(kept) == 5 and kept[0] == member.password_hash
    assert not any(p in h for h in kept for p in [GOOD, *PASSWORDS])


def test_a_password_is_stored_only_as_a_django_hash(with_password):
    assert with_password.password_hash.startswith("argon2")
    assert GOOD not in with_password.password_hash
    assert with_password.password_changed_at is not None


# --- who may set, change, remove ----------------------------------------------------------------


def test_a_first_password_needs_a_password_set_step_up_which_is_spent(clock, member, phone_step_up):
    assert refused(lambda: member_password_set(member=member, new_password=GOOD)) == "step_up_required"
    phone_step_up("change_email")  # a step-up for another action does not do
    assert refused(lambda: member_password_set(member=member, new_password=GOOD)) == "step_up_required"
    phone_step_up("password_set")
    change = member_password_set(member=member, new_password=GOOD)
    assert change.kind == "password_set"
    assert not otp_step_up_valid(member=member, action="password_set")
    member.refresh_from_db()
    assert member.password_hash and kinds(member)[-1] == "password_set"


def test_a_step_up_older_than_five_minutes_does_not_do(clock, member, phone_step_up):
    phone_step_up("password_set")
    clock.shift(timedelta(minutes=5, seconds=1))
    assert refused(lambda: member_password_set(member=member, new_password=GOOD)) == "step_up_required"


def test_a_refused_rule_does_not_spend_the_step_up(clock, member, phone_step_up):
    phone_step_up("password_set")
    with pytest.raises(PasswordInvalid):
        member_password_set(member=member, new_password="short1!")
    assert otp_step_up_valid(member=member, action="password_set")


def test_changing_needs_the_current_password_or_a_reset_step_up(clock, with_password, phone_step_up):
    member = with_password
    assert refused(lambda: member_password_set(member=member, new_password=PASSWORDS[0])) == (
        "current_password_required"
    )
    phone_step_up("password_reset")
    change = member_password_set(member=member, new_password=PASSWORDS[0])
    assert change.kind == "password_changed"
    assert not otp_step_up_valid(member=member, action="password_reset")  # spent
    assert refused(lambda: member_password_set(member=member, new_password=PASSWORDS[1])) == (
        "current_password_required"
    )
    member_password_set(member=member, new_password=PASSWORDS[1], current_password=PASSWORDS[0])
    event = MemberSecurityEvent.objects.filter(member=member, kind="password_changed").latest("pk")
    assert event.detail["via"] == "current_password"


def test_a_wrong_current_password_is_refused_counted_and_changes_nothing(clock, with_password):
    member = with_password
    before = member.password_hash
    code = refused(lambda: member_password_set(member=member, new_password=PASSWORDS[0], current_password="Nope!123"))
    assert code == "current_password_wrong"
    member.refresh_from_db()
    assert member.password_hash == before and failures() == 1
    assert kinds(member)[-1] == "password_failed"


def test_without_authorisation_the_reuse_rule_is_not_an_oracle(clock, with_password):
    # The current password as "new" with no proof: refused for the proof, not "reused".
    assert refused(lambda: member_password_set(member=with_password, new_password=GOOD)) == "current_password_required"


def test_a_change_ends_all_the_other_sessions_and_notifies_the_member(clock, with_password):
    member = with_password
    here = session_start(member=member, channel="app", device_fingerprint=FP)
    others = [session_start(member=member, channel="web", device_fingerprint=f"fp-{n}") for n in range(2)]
    current = MemberSession.objects.get(pk=here.session_id)
    OutboundMessage.objects.all().delete()

    change = member_password_set(member=member, new_password=PASSWORDS[0], current_password=GOOD, session=current)

    assert change.sessions_ended == 2
    assert access_token_authenticate(here.access_token).pk == here.session_id
    ended = MemberSession.objects.filter(pk__in=[t.session_id for t in others])
    assert all(s.ended_at is not None and s.end_reason == "password_changed" for s in ended)
    event = MemberSecurityEvent.objects.filter(member=member, kind="password_changed").get()
    assert event.detail == {"via": "current_password", "sessions_ended": 2, "session_id": str(here.session_id)}
    notice = OutboundMessage.objects.get(member=member)
    assert notice.topic == "security" and "password" in notice.subject.lower()


def test_a_web_remember_me_session_may_not_change_the_password(clock, with_password):
    tokens = session_start(member=with_password, channel="web", device_fingerprint=FP, remember_me=True)
    session = MemberSession.objects.get(pk=tokens.session_id)
    code = refused(
        lambda: member_password_set(
            member=with_password, new_password=PASSWORDS[0], current_password=GOOD, session=session
        )
    )
    assert code == "change_details_not_allowed"
    assert refused(lambda: member_password_remove(member=with_password, session=session)) == (
        "change_details_not_allowed"
    )


def test_removing_needs_a_step_up_keeps_the_history_and_ends_other_sessions(clock, with_password, phone_step_up):
    member = with_password
    other = session_start(member=member, channel="web", device_fingerprint="fp-other")
    assert refused(lambda: member_password_remove(member=member)) == "step_up_required"
    phone_step_up("password_remove")
    change = member_password_remove(member=member)
    member.refresh_from_db()
    assert change.kind == "password_removed" and member.password_hash == ""
    assert MemberSession.objects.get(pk=other.session_id).ended_at is not None
    assert not otp_step_up_valid(member=member, action="password_remove")
    assert refused(lambda: member_password_remove(member=member)) == "password_not_set"
    # Set again later: the old one is still among the last five.
    phone_step_up("password_set")
    with pytest.raises(PasswordInvalid) as caught:
        member_password_set(member=member, new_password=GOOD)
    assert caught.value.code == "password_reused"


# --- signing in -----------------------------------------------------------------------------------


@pytest.fixture
def known_device(with_password, test_geo):
    """The member signed in once by SMS code from FP in Kuala Lumpur."""
    session_start(member=with_password, channel="app", device_fingerprint=FP, ip=KL)
    return with_password


def test_password_login_opens_a_session_through_session_start(clock, known_device):
    clock.shift(timedelta(hours=1))
    tokens = login(ip=KL_TOO)  # Kuala Lumpur again
    session = access_token_authenticate(tokens.access_token)
    assert session.member_id == known_device.pk and session.device.fingerprint_hash == blind_index(
        "device_fingerprint", FP
    )
    assert tokens.new_device is False
    assert kinds(known_device)[-2:] == ["login", "password_login"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fingerprint": "fp-new-laptop"}, "new_device"),
        ({"ip": PENANG}, "new_location"),  # about 290 km from KL
        ({"ip": NOWHERE}, "unknown_location"),
    ],
)
def test_a_new_device_or_place_needs_an_sms_code(clock, known_device, change, reason):
    clock.shift(timedelta(hours=1))
    sessions = MemberSession.objects.count()
    assert refused(lambda: login(**change)) == "otp_required"
    assert MemberSession.objects.count() == sessions
    event = MemberSecurityEvent.objects.filter(member=known_device).latest("pk")
    assert event.kind == "password_login_otp_required" and event.detail["reasons"] == [reason]
    assert failures() == 0  # the password was right: not a failure


def test_a_blocked_device_needs_an_sms_code(clock, known_device):
    device_block(member=known_device, device_id=known_device.devices.get().pk)
    assert refused(lambda: login(ip=KL_TOO)) == "otp_required"


def test_tier_3_needs_an_sms_code_and_tier_2_does_not(clock, known_device):
    Member.objects.filter(pk=known_device.pk).update(tier=3)
    assert refused(lambda: login(ip=KL_TOO)) == "otp_required"
    Member.objects.filter(pk=known_device.pk).update(tier=2)
    assert login(ip=KL_TOO).session_id


def test_without_a_geolocation_backend_a_known_device_signs_in(clock, with_password):
    session_start(member=with_password, channel="app", device_fingerprint=FP, ip=NOWHERE)
    assert login(ip=NOWHERE).session_id


def test_unknown_number_no_password_and_wrong_password_answer_alike(clock, member, store_a, phone_step_up):
    phone_step_up("password_set")
    member_password_set(member=member, new_password=GOOD)
    no_password = member_create(home_store=store_a, phone="+60 19-555 0303")
    answers = []
    for phone, password in [(STRANGER, GOOD), ("+60 19-555 0303", GOOD), (PHONE, "Wrong!1234")]:
        with pytest.raises(PasswordRefused) as caught:
            login(phone=phone, password=password)
        answers.append((caught.value.code, str(caught.value), caught.value.retry_after, caught.value.detail))
        assert failures(phone) == 1  # each counted for its number
    assert answers[0] == answers[1] == answers[2] == ("credentials_invalid", answers[0][1], None, None)
    assert "password_failed" in kinds(no_password)


def test_an_unknown_number_runs_a_hash_check_too(clock, db, monkeypatch):
    import members.services.passwords as passwords

    checked = []
    real = passwords.check_password
    monkeypatch.setattr(passwords, "check_password", lambda *a, **k: checked.append(1) or real(*a, **k))
    with pytest.raises(PasswordRefused):
        login(phone=STRANGER)
    assert checked == [1]


def test_the_tenth_failure_of_the_day_locks_password_and_code_sign_in_until_midnight(clock, known_device, settings):
    assert settings.MEMBER_AUTH["otp_failures_per_day"] == 10
    for _ in range(9):
        assert refused(lambda: login(password="Wrong!1234")) == "credentials_invalid"
    assert failures() == 9
    with pytest.raises(PasswordRefused) as caught:
        login(password="Wrong!1234")
    # Locked until midnight in Kuala Lumpur (16:00 UTC): 13 hours after START.
    assert caught.value.code == "password_locked" and caught.value.retry_after == 13 * 3600
    assert refused(lambda: login()) == "password_locked"  # the right password too
    with pytest.raises(OtpRefused) as otp:
        otp_request(phone=PHONE, purpose="login")
    assert otp.value.code == "otp_locked"
    assert kinds(known_device)[-2:] == ["password_failed", "otp_locked"]
    notice = OutboundMessage.objects.filter(member=known_device, subject="Sign-in locked").get()
    assert notice.topic == "security"
    clock.move_to(datetime(2026, 3, 2, 16, 0, 1, tzinfo=UTC))  # 00:00:01 the next day in KL
    assert login(ip=KL_TOO).session_id


def test_the_lock_counts_for_unknown_numbers_alike(clock, db):
    for _ in range(9):
        assert refused(lambda: login(phone=STRANGER)) == "credentials_invalid"
    assert refused(lambda: login(phone=STRANGER)) == "password_locked"


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_guesses_cannot_pass_the_daily_cap(store_a):
    member = member_create(home_store=store_a, phone=PHONE)
    Member.objects.filter(pk=member.pk).update(password_hash=make_password(GOOD))
    state_key = blind_index("phone", phone_normalise(PHONE))
    OtpPhoneState.objects.create(phone_index=state_key, failures=8, failures_on=timezone.localdate())

    def guess():
        try:
            login(password="Wrong!1234")
        except PasswordRefused as refusal:
            return refusal.code

    codes = race(*[guess] * 6)
    # The 9th failure, then the 10th locks; the other four are refused without a check.
    assert sorted(codes) == ["credentials_invalid", *["password_locked"] * 5]
    assert OtpPhoneState.objects.get(pk=state_key).failures == 10  # no guess was checked past the cap


def test_the_password_is_never_logged_nor_in_events_or_notices(clock, known_device, phone_step_up, caplog):
    caplog.set_level(logging.DEBUG)
    member = known_device
    with pytest.raises(PasswordRefused):
        login(password="Wrong!9876")
    login(ip=KL_TOO)
    member_password_set(member=member, new_password=PASSWORDS[0], current_password=GOOD)
    with pytest.raises(PasswordRefused):
        member_password_set(member=member, new_password=PASSWORDS[1], current_password="Wrong!5555")
    phone_step_up("password_remove")
    member_password_remove(member=member)
    secrets = [GOOD, PASSWORDS[0], PASSWORDS[1], "Wrong!9876", "Wrong!5555"]
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "sign-in credential refused" in caplog.text  # the service's own lines are captured
    stored = [str(e.detail) for e in MemberSecurityEvent.objects.all()]
    stored += [m.subject + m.body for m in OutboundMessage.objects.all()]
    assert [s for s in secrets if s in logged or any(s in x for x in stored)] == []
