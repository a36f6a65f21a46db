"""Members' consents (members.services.consents): the record of every change, the current choice
per purpose, the refusals, the append-only history, concurrency and the marketing rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from members.models import Consent, ConsentRecord, Member, MemberSecurityEvent, MemberSession
from members.services.consents import (
    DEFAULT_CONSENT_VERSION,
    OPT_IN_PURPOSES,
    ConsentRefused,
    consent_version,
    consents_record,
    member_consent_records,
    member_consents,
    member_may_receive_marketing,
    members_may_receive_marketing,
)
from members.services.membership import member_create, member_pii_shred
from members.services.sessions import session_start
from tests.concurrency import race

PURPOSES = ["essential", "sms_marketing", "email_marketing", "analytics", "data_sharing", "personalisation"]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def member(db, store_a):
    return member_create(home_store=store_a, phone="+60 12-555 0101", email="aminah@example.com")


@pytest.fixture
def enrolled(member):
    consents_record(member=member, choices={"essential": True}, source="enrolment")
    return member


def _history(member) -> list[tuple]:
    """Oldest first: (purpose, granted, version, source)."""
    return list(
        ConsentRecord.objects.filter(member=member)
        .order_by("id")
        .values_list("purpose", "granted", "version", "source")
    )


def _set_version(settings, version: str) -> None:
    settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "consent_version": version}


# --- the current state ---------------------------------------------------------------------------


def test_a_member_with_nothing_recorded_has_every_purpose_not_granted(member):
    states = member_consents(member)

    assert list(states) == PURPOSES
    assert all(not s.granted and s.version is None and s.updated_at is None for s in states.values())
    assert states["sms_marketing"].label == "Marketing by SMS"


def test_the_consent_version_has_a_default_and_follows_the_setting(settings):
    settings.MEMBER_AUTH = {k: v for k, v in settings.MEMBER_AUTH.items() if k != "consent_version"}
    assert consent_version() == DEFAULT_CONSENT_VERSION == "2026-11"
    _set_version(settings, "2027-01")
    assert consent_version() == "2027-01"


# --- enrolment -----------------------------------------------------------------------------------


def test_enrolment_records_every_purpose_given_and_one_event_naming_purposes_only(member):
    with time_machine.travel(T0, tick=False):
        records = consents_record(
            member=member, choices={"essential": True, "email_marketing": True, "analytics": False}, source="enrolment"
        )

    assert [(r.purpose, r.granted) for r in records] == [
        ("essential", True), ("email_marketing", True), ("analytics", False),
    ]  # fmt: skip
    assert _history(member) == [
        ("essential", True, "2026-11", "enrolment"),
        ("email_marketing", True, "2026-11", "enrolment"),
        ("analytics", False, "2026-11", "enrolment"),
    ]
    states = member_consents(member)
    assert {p for p, s in states.items() if s.granted} == {"essential", "email_marketing"}
    assert states["analytics"].version == "2026-11" and states["analytics"].updated_at == T0
    assert states["sms_marketing"].version is None  # never recorded
    event = MemberSecurityEvent.objects.get(member=member, kind="consent_changed")
    assert event.detail == {"purposes": ["essential", "email_marketing", "analytics"], "source": "enrolment"}


@pytest.mark.parametrize("choices", [{}, {"sms_marketing": True}, {"essential": False}])
def test_enrolment_without_the_essential_consent_is_refused_and_writes_nothing(member, choices):
    with pytest.raises(ConsentRefused) as refused:
        consents_record(member=member, choices=choices, source="enrolment")

    assert refused.value.code == "essential_consent_required"
    assert "close the account" in str(refused.value)
    assert not ConsentRecord.objects.exists() and not Consent.objects.exists()
    assert not MemberSecurityEvent.objects.filter(kind="consent_changed").exists()


# --- opt-ins, withdrawals ------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", OPT_IN_PURPOSES)
def test_each_opt_in_is_granted_on_its_own(enrolled, purpose):
    consents_record(member=enrolled, choices={purpose: True}, source="member")

    states = member_consents(enrolled)
    assert {p for p, s in states.items() if s.granted} == {"essential", purpose}
    assert _history(enrolled)[-1] == (purpose, True, "2026-11", "member")
    assert ConsentRecord.objects.filter(member=enrolled).count() == 2


def test_withdraw_and_re_grant_are_recorded_in_order_with_their_versions(member, settings):
    enrolled = member
    with time_machine.travel(T0, tick=False) as clock:
        consents_record(member=enrolled, choices={"essential": True}, source="enrolment")
        clock.shift(timedelta(minutes=1))
        consents_record(member=enrolled, choices={"sms_marketing": True}, source="member")
        clock.shift(timedelta(days=3))
        consents_record(member=enrolled, choices={"sms_marketing": False}, source="member")
        clock.shift(timedelta(days=30))
        _set_version(settings, "2027-01")
        consents_record(member=enrolled, choices={"sms_marketing": True}, source="member")
        regranted_at = datetime.now(UTC)

    assert _history(enrolled)[1:] == [
        ("sms_marketing", True, "2026-11", "member"),
        ("sms_marketing", False, "2026-11", "member"),
        ("sms_marketing", True, "2027-01", "member"),
    ]
    newest_first = [(r.purpose, r.granted) for r in member_consent_records(enrolled)]
    assert newest_first == [
        ("sms_marketing", True), ("sms_marketing", False), ("sms_marketing", True), ("essential", True),
    ]  # fmt: skip
    current = Consent.objects.get(member=enrolled, purpose="sms_marketing")
    assert (current.granted, current.version, current.updated_at) == (True, "2027-01", regranted_at)


def test_the_same_choice_again_records_nothing(enrolled):
    consents_record(member=enrolled, choices={"analytics": True}, source="member")
    before = (ConsentRecord.objects.count(), MemberSecurityEvent.objects.filter(kind="consent_changed").count())

    assert consents_record(member=enrolled, choices={"analytics": True, "essential": True}, source="member") == []
    assert consents_record(member=enrolled, choices={}, source="member") == []

    after = (ConsentRecord.objects.count(), MemberSecurityEvent.objects.filter(kind="consent_changed").count())
    assert after == before


def test_granting_again_under_a_new_text_version_is_recorded(enrolled, settings):
    consents_record(member=enrolled, choices={"data_sharing": True, "analytics": False}, source="member")
    _set_version(settings, "2027-01")

    records = consents_record(member=enrolled, choices={"data_sharing": True, "analytics": False}, source="member")

    # the grant is re-confirmed under the new text; a refusal stays a refusal whatever the text
    assert [(r.purpose, r.granted, r.version) for r in records] == [("data_sharing", True, "2027-01")]
    assert Consent.objects.get(member=enrolled, purpose="data_sharing").version == "2027-01"
    assert Consent.objects.get(member=enrolled, purpose="analytics").version == "2026-11"


def test_essential_processing_cannot_be_withdrawn_through_consents(enrolled):
    consents_record(member=enrolled, choices={"personalisation": True}, source="member")
    before = _history(enrolled)

    with pytest.raises(ConsentRefused) as refused:
        consents_record(member=enrolled, choices={"essential": False, "personalisation": False}, source="member")

    assert refused.value.code == "essential_consent_required"
    assert _history(enrolled) == before  # not even the personalisation withdrawal
    assert member_consents(enrolled)["essential"].granted
    assert member_consents(enrolled)["personalisation"].granted


def test_staff_may_record_a_withdrawal_on_request_but_never_a_grant(enrolled):
    consents_record(member=enrolled, choices={"email_marketing": True}, source="member")

    with pytest.raises(ConsentRefused) as refused:
        consents_record(member=enrolled, choices={"sms_marketing": True}, source="staff")
    assert refused.value.code == "consent_grant_by_staff" and refused.value.purposes == ["sms_marketing"]
    assert not member_consents(enrolled)["sms_marketing"].granted

    consents_record(member=enrolled, choices={"email_marketing": False}, source="staff")
    assert _history(enrolled)[-1] == ("email_marketing", False, "2026-11", "staff")


def test_a_remember_me_session_may_withdraw_but_not_grant(enrolled):
    tokens = session_start(member=enrolled, channel="web", device_fingerprint="fp-web", remember_me=True)
    session = MemberSession.objects.get(pk=tokens.session_id)
    consents_record(member=enrolled, choices={"analytics": True}, source="member")

    with pytest.raises(ConsentRefused) as refused:
        consents_record(member=enrolled, choices={"sms_marketing": True}, source="member", session=session)
    assert refused.value.code == "change_details_not_allowed"

    consents_record(member=enrolled, choices={"analytics": False}, source="member", session=session)
    record = ConsentRecord.objects.filter(member=enrolled).first()  # newest
    assert (record.purpose, record.granted, record.session_id) == ("analytics", False, session.pk)
    event = MemberSecurityEvent.objects.filter(member=enrolled, kind="consent_changed").order_by("-id").first()
    assert event.detail == {"purposes": ["analytics"], "source": "member", "session_id": str(session.pk)}


@pytest.mark.parametrize(
    ("choices", "source"),
    [
        ({"newsletter": True}, "member"),
        ({"sms_marketing": "yes"}, "member"),
        ({"sms_marketing": 1}, "member"),
        ({"sms_marketing": True}, "partner"),
    ],
)
def test_unknown_purposes_sources_and_non_booleans_are_programming_errors(enrolled, choices, source):
    with pytest.raises(ValueError):
        consents_record(member=enrolled, choices=choices, source=source)
    assert ConsentRecord.objects.count() == 1


# --- the record is append-only -------------------------------------------------------------------


def test_consent_records_refuse_update_and_delete_in_python_and_in_the_database(enrolled, owner_role):
    record = ConsentRecord.objects.get(member=enrolled)

    with pytest.raises(TypeError):
        record.save()
    with pytest.raises(TypeError):
        record.delete()
    with pytest.raises(TypeError):
        ConsentRecord.objects.filter(pk=record.pk).update(granted=False)
    with pytest.raises(TypeError):
        ConsentRecord.objects.all().delete()
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE members_consentrecord SET granted = false")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM members_consentrecord")

    record.refresh_from_db()
    assert record.granted is True and ConsentRecord.objects.count() == 1


# --- concurrency ---------------------------------------------------------------------------------


def _assert_history_matches_current(member: Member) -> None:
    """Per purpose: the history alternates (only changes are recorded) and its newest row
    is the current choice."""
    for purpose in PURPOSES:
        values = list(
            ConsentRecord.objects.filter(member=member, purpose=purpose)
            .order_by("id")
            .values_list("granted", flat=True)
        )
        assert all(a != b for a, b in zip(values, values[1:], strict=False)), (purpose, values)
        current = Consent.objects.filter(member=member, purpose=purpose).first()
        assert (current.granted if current else None) == (values[-1] if values else None), purpose


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_leave_history_and_current_state_consistent(store_a):
    member = member_create(home_store=store_a, phone="+60 12-555 0101")
    consents_record(member=member, choices={"essential": True}, source="enrolment")
    choices = [
        {"sms_marketing": True, "analytics": True},
        {"sms_marketing": False, "analytics": True},
        {"sms_marketing": True, "personalisation": True},
        {"sms_marketing": False},
        {"sms_marketing": True, "analytics": False},
        {"sms_marketing": True, "personalisation": False},
    ]

    race(*[lambda c=c: consents_record(member=member, choices=c, source="member") for c in choices])

    _assert_history_matches_current(member)
    # one consent_changed event per call that changed something, one record per change
    events = MemberSecurityEvent.objects.filter(member=member, kind="consent_changed").exclude(
        detail__source="enrolment"
    )
    assert sum(len(e.detail["purposes"]) for e in events) == ConsentRecord.objects.filter(source="member").count()


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_grants_record_one_change(store_a):
    member = member_create(home_store=store_a, phone="+60 12-555 0101")
    consents_record(member=member, choices={"essential": True}, source="enrolment")

    results = race(*[lambda: consents_record(member=member, choices={"data_sharing": True}, source="member")] * 8)

    assert sorted(len(r) for r in results) == [0] * 7 + [1]
    assert ConsentRecord.objects.filter(member=member, purpose="data_sharing").count() == 1
    assert Consent.objects.get(member=member, purpose="data_sharing").granted


# --- marketing ---------------------------------------------------------------------------------


def test_marketing_needs_the_channels_own_opt_in(enrolled):
    assert not member_may_receive_marketing(enrolled, "sms")
    assert not member_may_receive_marketing(enrolled, "email")

    consents_record(member=enrolled, choices={"sms_marketing": True, "analytics": True}, source="member")
    assert member_may_receive_marketing(enrolled, "sms")
    assert not member_may_receive_marketing(enrolled, "email")  # SMS marketing is not email marketing

    consents_record(member=enrolled, choices={"email_marketing": True, "sms_marketing": False}, source="member")
    assert not member_may_receive_marketing(enrolled, "sms")
    assert member_may_receive_marketing(enrolled, "email")


def test_the_audience_query_holds_only_opted_in_active_members(enrolled, store_a):
    other = member_create(home_store=store_a, phone="+60 13-555 0202")
    consents_record(member=other, choices={"essential": True, "email_marketing": True}, source="enrolment")
    consents_record(member=enrolled, choices={"sms_marketing": True}, source="member")

    assert list(members_may_receive_marketing("sms")) == [enrolled]
    assert list(members_may_receive_marketing("email")) == [other]


@pytest.mark.parametrize("status", ["locked", "suspended", "closed"])
def test_no_marketing_to_a_member_who_is_not_active(enrolled, status):
    consents_record(member=enrolled, choices={"sms_marketing": True}, source="member")
    Member.objects.filter(pk=enrolled.pk).update(status=status)

    assert not member_may_receive_marketing(enrolled, "sms")


def test_no_marketing_to_an_erased_member(enrolled):
    consents_record(member=enrolled, choices={"email_marketing": True}, source="member")
    member_pii_shred(member=enrolled)

    assert not member_may_receive_marketing(enrolled, "email")


@pytest.mark.parametrize("channel", ["push", "post", ""])
def test_marketing_by_an_unknown_channel_is_a_programming_error(enrolled, channel):
    with pytest.raises(ValueError):
        member_may_receive_marketing(enrolled, channel)
