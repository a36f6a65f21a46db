"""The member's own profile change (members.services.profile): fields at once, contact changes
verified first, all or nothing. The HTTP side is tests/members/api/test_me_api.py."""

from __future__ import annotations

import pytest

from members.models import ContactVerification, MemberSecurityEvent
from members.services.contact import ContactRefused
from members.services.membership import member_create, member_pii_shred
from members.services.pii import InvalidMemberData, MemberPiiErased, member_pii_read
from members.services.profile import ProfileRefused, member_profile_update
from members.services.sessions import session_start

pytestmark = pytest.mark.django_db

PHONE = "+60125550101"
EMAIL = "aminah@example.com"
NEW_EMAIL = "aminah.new@example.com"


@pytest.fixture
def member(store_a):
    return member_create(home_store=store_a, name="Aminah", phone=PHONE, email=EMAIL)


@pytest.fixture
def session(member):
    tokens = session_start(member=member, channel="app", device_fingerprint="fp-profile")
    return member.sessions.get(pk=tokens.session_id)


def update(member, session, **values):
    return member_profile_update(member=member, session=session, ip="10.0.0.1", **values)


def test_plain_fields_change_at_once_with_a_security_event(member, session):
    result = update(member, session, name="Aminah Binti Ali", preferred_channel="email")
    assert member_pii_read(result.member).name == "Aminah Binti Ali"
    assert result.member.preferred_channel == "email" and result.started == []
    event = MemberSecurityEvent.objects.get(member=member, kind="profile_changed")
    assert event.detail == {"fields": ["name", "preferred_channel"], "session_id": str(session.id)}


def test_every_invalid_field_is_refused_at_once_and_nothing_changes(member, session):
    with pytest.raises(InvalidMemberData) as caught:
        update(member, session, name="x" * 5000, phone="", birth_date="not a date")
    assert set(caught.value.errors) == {"name", "phone", "birth_date"}
    assert caught.value.errors["phone"][0] == "required"
    assert member_pii_read(member).name == "Aminah"


def test_the_phone_or_email_on_file_is_no_change(member, session):
    result = update(member, session, email="aminah@EXAMPLE.com", phone="+60 12-555 0101")
    assert result.member is member and result.started == []
    assert not MemberSecurityEvent.objects.filter(kind="profile_changed").exists()


def test_a_new_email_needs_a_step_up_and_nothing_changes_without_it(member, session):
    with pytest.raises(ProfileRefused) as caught:
        update(member, session, name="Other", email=NEW_EMAIL)
    assert caught.value.code == "step_up_required" and caught.value.actions == ["change_email"]
    assert member_pii_read(member).name == "Aminah"


def test_a_new_email_with_a_step_up_starts_a_verification_and_keeps_the_old_one(member, session, step_up):
    step_up(member, "change_email")
    result = update(member, session, email=NEW_EMAIL)
    assert [s.verification.kind for s in result.started] == ["email"]
    assert member_pii_read(result.member).email == EMAIL
    assert ContactVerification.objects.filter(member=member, kind="email").count() == 1


def test_a_remember_me_web_session_may_not_change_details(member):
    tokens = session_start(member=member, channel="web", device_fingerprint="fp-web", remember_me=True)
    with pytest.raises(ProfileRefused) as caught:
        update(member, member.sessions.get(pk=tokens.session_id), name="Other")
    assert caught.value.code == "change_details_not_allowed"


def test_an_email_another_member_has_is_refused_after_the_step_up(member, session, step_up, store_a):
    member_create(home_store=store_a, phone="+60135550202", email=NEW_EMAIL)
    step_up(member, "change_email")
    with pytest.raises(ContactRefused) as caught:
        update(member, session, name="Other", email=NEW_EMAIL)
    assert caught.value.code == "taken" and caught.value.field == "email"
    assert member_pii_read(member).name == "Aminah"  # all or nothing


def test_an_erased_member_cannot_set_data_again(member, session):
    member_pii_shred(member=member)
    member.refresh_from_db()
    with pytest.raises(MemberPiiErased):
        update(member, session, name="Again")
