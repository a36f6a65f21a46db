"""Changing a member's email or phone with proof of the new one (members.services.contact)."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from loyalty.kernel.models import OutboundMessage
from loyalty.notifications import LocmemSmsBackend
from members.models import ContactVerification, MemberSecurityEvent, MemberSession, OtpChallenge
from members.services.contact import (
    ContactRefused,
    contact_change_cancel,
    contact_change_start,
    contact_changes_pending,
    contact_email_confirm,
    contact_phone_confirm,
)
from members.services.membership import member_create, member_pii_set, member_pii_shred
from members.services.otp import OtpRefused, otp_request
from members.services.pii import member_pii_read
from members.services.sessions import session_start
from tests.concurrency import race
from tests.members.contact_values import EMAIL_A, EMAIL_B, NEW_EMAIL, NEW_PHONE, PHONE_A, PHONE_B


@pytest.fixture
def member_a(db, store_a):
    return member_create(home_store=store_a, name="Aminah", phone=PHONE_A, email=EMAIL_A, preferred_channel="sms")


@pytest.fixture
def member_b(db, store_a):
    return member_create(home_store=store_a, name="Bala", phone=PHONE_B, email=EMAIL_B)


def _last_code(to: str | None = None) -> str:
    messages = [m for m in LocmemSmsBackend.outbox if to is None or m["to"] == to]
    return re.search(r"\b(\d{6})\b", messages[-1]["text"]).group(1)


@pytest.fixture
def start_email(django_capture_on_commit_callbacks, step_up):
    """Start an email change (with a fresh step-up); returns (verification, token from the mail)."""

    def start(member, value=NEW_EMAIL, **kwargs):
        step_up(member, "change_email")
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            started = contact_change_start(member=member, kind="email", value=value, **kwargs)
        assert [m.to for m in mail.outbox] == [[value]]
        token = re.search(r"/verify-email#token=([A-Za-z0-9_-]+)", mail.outbox[-1].body).group(1)
        return started.verification, token

    return start


@pytest.fixture
def start_phone(django_capture_on_commit_callbacks, step_up):
    def start(member, value=NEW_PHONE, **kwargs):
        step_up(member, "change_phone")
        with django_capture_on_commit_callbacks(execute=True):
            started = contact_change_start(member=member, kind="phone", value=value, **kwargs)
        return started, _last_code(value)

    return start


def confirm_phone(member, started, code, *, challenge_id=None, **kwargs):
    """Confirm the phone change ``started`` as ``member`` with ``code`` (under its own challenge unless told)."""
    return contact_phone_confirm(
        member=member,
        verification_id=started.verification.id,
        challenge_id=challenge_id or started.challenge_id,
        code=code,
        **kwargs,
    )


def email_confirm_refusal(token) -> str:
    """The code of the refusal that confirming with ``token`` meets (it must be refused)."""
    with pytest.raises(ContactRefused) as refused:
        contact_email_confirm(token=token)
    return refused.value.code


def email_confirm_outcome(token) -> str:
    """Confirm with ``token``: "ok", or the code of the refusal met."""
    try:
        contact_email_confirm(token=token)
    except ContactRefused as refused:
        return refused.code
    return "ok"


def sign_in(member, fingerprint):
    return session_start(member=member, channel="app", device_fingerprint=fingerprint)


def live_sessions(member) -> int:
    return MemberSession.objects.filter(member=member, ended_at__isnull=True).count()


# --- start -----------------------------------------------------------------------------------


def test_starting_an_email_change_keeps_the_old_address_and_mails_a_link_to_the_new_one(member_a, start_email):
    verification, token = start_email(member_a)

    assert member_pii_read(member_a).email == EMAIL_A
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == EMAIL_A
    assert len(token) >= 43  # 32 random bytes, base64url
    assert mail.outbox[0].body.count(token) == 1 and "http://localhost:3000/verify-email#token=" in mail.outbox[0].body
    row = ContactVerification.objects.get(pk=verification.pk)
    assert row.kind == "email" and row.token_hash != token and len(row.token_hash) == 64
    assert NEW_EMAIL not in row.value_encrypted
    assert row.expires_at - row.created_at == pytest.approx(timedelta(hours=24), abs=timedelta(seconds=2))
    event = MemberSecurityEvent.objects.get(member=member_a, kind="contact_change_requested")
    assert event.detail["field"] == "email" and event.detail["verification_id"] == str(row.pk)


def test_the_link_uses_the_member_app_url_setting(member_a, start_email, settings):
    settings.MEMBER_APP_URL = "https://app.loyalty.example/"
    _, token = start_email(member_a)
    assert f"https://app.loyalty.example/verify-email#token={token}" in mail.outbox[0].body


def test_a_change_needs_a_step_up_for_its_action(member_a, step_up):
    with pytest.raises(ContactRefused) as refused:
        contact_change_start(member=member_a, kind="email", value=NEW_EMAIL)
    assert refused.value.code == "step_up_required"
    step_up(member_a, "change_phone")
    with pytest.raises(ContactRefused):
        contact_change_start(member=member_a, kind="email", value=NEW_EMAIL)
    assert not ContactVerification.objects.exists()


def test_the_step_up_is_spent_by_the_change(member_a, start_email):
    start_email(member_a)
    with pytest.raises(ContactRefused) as refused:
        contact_change_start(member=member_a, kind="email", value="third@example.com")
    assert refused.value.code == "step_up_required"


def test_a_refused_start_gives_the_step_up_back(member_a, member_b, step_up, django_capture_on_commit_callbacks):
    step_up(member_a, "change_email")
    with pytest.raises(ContactRefused) as refused:
        contact_change_start(member=member_a, kind="email", value=EMAIL_B.upper())
    assert refused.value.code == "taken"
    with django_capture_on_commit_callbacks(execute=True):
        contact_change_start(member=member_a, kind="email", value=NEW_EMAIL)
    assert ContactVerification.objects.filter(member=member_a).count() == 1


def test_the_value_on_file_is_unchanged(member_a, step_up):
    step_up(member_a, "change_email")
    with pytest.raises(ContactRefused) as refused:
        contact_change_start(member=member_a, kind="email", value=" aminah@EXAMPLE.com ")
    assert refused.value.code == "unchanged"


def test_a_newer_change_supersedes_the_pending_one(member_a, start_email):
    first, first_token = start_email(member_a)
    second, second_token = start_email(member_a, "second@example.com")
    with pytest.raises(ContactRefused) as refused:
        contact_email_confirm(token=first_token)
    assert refused.value.code == "link_cancelled"
    contact_email_confirm(token=second_token)
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == "second@example.com"
    assert [c["id"] for c in contact_changes_pending(member_a)] == []


# --- email confirm ---------------------------------------------------------------------------


def test_confirming_the_link_notifies_the_old_address_then_changes_it_and_ends_all_sessions(member_a, start_email):
    sign_in(member_a, "fp-1")
    sign_in(member_a, "fp-2")
    verification, token = start_email(member_a)
    mail.outbox.clear()

    member = contact_email_confirm(token=token, ip="10.1.2.3")

    assert member_pii_read(member).email == NEW_EMAIL
    # the notice went to the OLD address (the outbox reads the address at delivery)
    assert [m.to for m in mail.outbox] == [[EMAIL_A]]
    assert NEW_EMAIL not in mail.outbox[0].body
    notice = OutboundMessage.objects.get(member=member_a, topic="security", channel="email")
    assert notice.status == OutboundMessage.Status.SENT
    assert live_sessions(member_a) == 0
    event = MemberSecurityEvent.objects.get(member=member_a, kind="contact_changed")
    assert event.detail["fields"] == ["email"] and event.detail["sessions_ended"] == 2
    assert event.detail["via"] == "email_link" and event.ip == "10.1.2.3"
    assert ContactVerification.objects.get(pk=verification.pk).verified_at is not None


def test_a_link_works_once(member_a, start_email):
    _, token = start_email(member_a)
    contact_email_confirm(token=token)
    assert email_confirm_refusal(token) == "link_used"
    assert MemberSecurityEvent.objects.filter(member=member_a, kind="contact_changed").count() == 1


@pytest.mark.parametrize("token", ["", "x" * 200, "not-a-token-of-ours", None, 12])
def test_an_unknown_or_malformed_token_is_invalid(member_a, token):
    assert email_confirm_refusal(token) == "link_invalid"


def test_the_link_is_valid_for_24_hours_to_the_second(member_a, start_email):
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as clock:
        _, token = start_email(member_a)
        clock.move_to("2026-03-02 08:59:59+00:00")
        contact_email_confirm(token=token)  # 23:59:59 later: still valid
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == NEW_EMAIL


def test_the_link_has_expired_a_second_after_24_hours(member_a, start_email):
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as clock:
        _, token = start_email(member_a)
        clock.move_to("2026-03-02 09:00:01+00:00")
        with pytest.raises(ContactRefused) as refused:
            contact_email_confirm(token=token)
    assert refused.value.code == "link_expired"
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == EMAIL_A


def test_an_address_taken_meanwhile_is_refused_at_confirm_and_nothing_changes(member_a, member_b, start_email):
    sign_in(member_a, "fp-1")
    _, token = start_email(member_a)
    member_pii_set(member=member_b, email=NEW_EMAIL)
    mail.outbox.clear()
    assert email_confirm_refusal(token) == "taken"
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == EMAIL_A
    assert mail.outbox == [] and live_sessions(member_a) == 1
    assert ContactVerification.objects.get(member=member_a).verified_at is None
    assert not MemberSecurityEvent.objects.filter(member=member_a, kind="contact_changed").exists()


def test_a_first_email_also_needs_the_link_and_the_phone_is_told(store_a, start_email):
    member = member_create(home_store=store_a, phone=PHONE_A)
    _, token = start_email(member)
    assert member_pii_read(member).email is None
    mail.outbox.clear()
    contact_email_confirm(token=token)
    member.refresh_from_db()
    assert member_pii_read(member).email == NEW_EMAIL
    assert mail.outbox == []  # no old address to tell
    assert OutboundMessage.objects.filter(member=member, channel="sms", topic="security").exists()


def test_an_erased_member_cannot_confirm(member_a, start_email):
    _, token = start_email(member_a)
    member_pii_shred(member=member_a)
    # Erasure cleared the pending address and its link: the link is simply dead.
    assert email_confirm_refusal(token) == "link_invalid"


# --- phone confirm ---------------------------------------------------------------------------


def test_a_phone_change_sends_a_code_to_the_new_number_and_confirming_it_applies(member_a, start_phone, sms_outbox):
    current = sign_in(member_a, "fp-1")
    sign_in(member_a, "fp-2")
    sms_outbox.clear()
    started, code = start_phone(member_a)
    assert [m["to"] for m in sms_outbox] == [PHONE_A, NEW_PHONE]  # the step-up, then the new number's code
    challenge = OtpChallenge.objects.get(pk=started.challenge_id)
    assert challenge.purpose == "change_phone" and started.verification.challenge_id == challenge.pk
    member_a.refresh_from_db()
    assert member_pii_read(member_a).phone == PHONE_A
    sms_outbox.clear()
    session = MemberSession.objects.get(pk=current.session_id)

    member = confirm_phone(member_a, started, code, session=session)

    assert member_pii_read(member).phone == NEW_PHONE
    assert [m["to"] for m in sms_outbox] == [PHONE_A]  # the old number was told
    assert "0303" not in sms_outbox[0]["text"]
    assert list(MemberSession.objects.filter(member=member_a, ended_at__isnull=True)) == [session]
    event = MemberSecurityEvent.objects.get(member=member_a, kind="contact_changed")
    assert event.detail["fields"] == ["phone"] and event.detail["sessions_ended"] == 1


def test_a_wrong_code_is_refused_and_nothing_changes(member_a, start_phone):
    started, code = start_phone(member_a)
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(OtpRefused) as refused:
        confirm_phone(member_a, started, wrong)
    assert refused.value.code == "otp_wrong_code"
    member_a.refresh_from_db()
    assert member_pii_read(member_a).phone == PHONE_A


def test_another_members_phone_change_is_not_found(member_a, member_b, start_phone):
    started, code = start_phone(member_a)
    with pytest.raises(ContactRefused) as refused:
        confirm_phone(member_b, started, code)
    assert refused.value.code == "not_found"


def test_a_challenge_of_another_change_does_not_do(member_a, start_phone):
    started, code = start_phone(member_a)
    other = otp_request(phone=NEW_PHONE, purpose="change_phone")
    with pytest.raises(OtpRefused) as refused:
        confirm_phone(member_a, started, code, challenge_id=other.challenge_id)
    assert refused.value.code == "otp_invalid"


def test_a_phone_change_is_used_once(member_a, start_phone):
    started, code = start_phone(member_a)
    kwargs = {"verification_id": started.verification.id, "challenge_id": started.challenge_id, "code": code}
    contact_phone_confirm(member=member_a, **kwargs)
    member_a.refresh_from_db()
    with pytest.raises(ContactRefused) as refused:
        contact_phone_confirm(member=member_a, **kwargs)
    assert refused.value.code == "verification_used"


def test_a_number_taken_meanwhile_is_refused_at_confirm(member_a, member_b, start_phone):
    started, code = start_phone(member_a)
    member_pii_set(member=member_b, phone=NEW_PHONE)
    with pytest.raises(ContactRefused) as refused:
        confirm_phone(member_a, started, code)
    assert refused.value.code == "taken"
    member_a.refresh_from_db()
    assert member_pii_read(member_a).phone == PHONE_A


def test_the_new_numbers_rate_limit_applies(member_a, step_up, settings, django_capture_on_commit_callbacks):
    settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "otp_codes_per_hour": 1}
    otp_request(phone=NEW_PHONE, purpose="change_phone")
    step_up(member_a, "change_phone")
    with pytest.raises(OtpRefused) as refused:
        contact_change_start(member=member_a, kind="phone", value=NEW_PHONE)
    assert refused.value.code == "otp_rate_limited"
    assert not ContactVerification.objects.exists()


# --- list and cancel -------------------------------------------------------------------------


def test_pending_changes_are_listed_masked_and_can_be_cancelled(member_a, member_b, start_email, start_phone):
    verification, token = start_email(member_a)
    started, _ = start_phone(member_a)
    pending = contact_changes_pending(member_a)
    assert {(c["kind"], c["value_masked"]) for c in pending} == {
        ("email", "a•••@example.com"),
        ("phone", "+60 ••• ••• 03"),
    }
    assert NEW_EMAIL not in json.dumps(pending, default=str)

    with pytest.raises(ContactRefused):
        contact_change_cancel(member=member_b, verification_id=verification.id)
    assert contact_change_cancel(member=member_a, verification_id=verification.id) is True
    assert contact_change_cancel(member=member_a, verification_id=verification.id) is False
    assert [c["kind"] for c in contact_changes_pending(member_a)] == ["phone"]
    assert email_confirm_refusal(token) == "link_cancelled"


# --- secrets stay out of logs, the outbox and events -------------------------------------------


def test_the_token_and_new_address_are_never_logged_stored_or_in_events(member_a, start_email, caplog):
    caplog.set_level(logging.DEBUG)
    _, token = start_email(member_a)
    contact_email_confirm(token=token)
    texts = [r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records]
    assert texts and not any(token in t for t in texts)
    assert not any(NEW_EMAIL in t for t in texts)
    for message in OutboundMessage.objects.all():
        assert token not in f"{message.to} {message.subject} {message.body}"
        assert NEW_EMAIL not in f"{message.to} {message.subject} {message.body}"
    for event in MemberSecurityEvent.objects.filter(member=member_a):
        assert token not in json.dumps(event.detail) and "aminah" not in json.dumps(event.detail)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM members_contactverification")
        dump = json.dumps(cursor.fetchall(), default=str)
    assert token not in dump and NEW_EMAIL not in dump


# --- races -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_confirmations_of_one_link_apply_once(store_a, start_email):
    member = member_create(home_store=store_a, phone=PHONE_A, email=EMAIL_A)
    _, token = start_email(member)
    mail.outbox.clear()

    assert sorted(race(lambda: email_confirm_outcome(token), lambda: email_confirm_outcome(token))) == [
        "link_used",
        "ok",
    ]
    assert MemberSecurityEvent.objects.filter(member=member, kind="contact_changed").count() == 1
    assert OutboundMessage.objects.filter(member=member, topic="security").count() == 1
    member.refresh_from_db()
    assert member_pii_read(member).email == NEW_EMAIL


@pytest.mark.django_db(transaction=True)
def test_two_members_confirming_the_same_address_one_wins(store_a, start_email):
    a = member_create(home_store=store_a, phone=PHONE_A, email=EMAIL_A)
    b = member_create(home_store=store_a, phone=PHONE_B, email=EMAIL_B)
    _, token_a = start_email(a)
    _, token_b = start_email(b)

    assert sorted(race(lambda: email_confirm_outcome(token_a), lambda: email_confirm_outcome(token_b))) == [
        "ok",
        "taken",
    ]
    emails = {member_pii_read(m.__class__.objects.get(pk=m.pk)).email for m in (a, b)}
    assert NEW_EMAIL in emails and len(emails) == 2
