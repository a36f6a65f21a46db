"""Look-ups of encrypted phone numbers and emails through the blind indexes."""

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from members.models import Member
from members.selectors import member_by_email, member_by_phone
from members.services.membership import member_create
from members.services.pii import InvalidMemberData, blind_index, email_normalise, phone_normalise

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "written", ["+60123456789", "+60 12-345 6789", "012-345 6789", "0123456789", " 012 345 6789 ", "60123456789"]
)
def test_a_malaysian_number_is_found_however_it_is_written(seeded_members, written):
    assert member_by_phone(written) == seeded_members[0]


@pytest.mark.parametrize(
    "written", ["siti.nurhaliza@example.com", "  SITI.NURHALIZA@EXAMPLE.COM ", "Siti.Nurhaliza@Example.Com"]
)
def test_an_email_is_found_whatever_its_case_and_spaces(seeded_members, written):
    assert member_by_email(written) == seeded_members[0]


def test_unknown_or_invalid_values_find_nobody(seeded_members):
    assert member_by_phone("+60 12-999 9999") is None
    assert member_by_phone("not a phone") is None
    assert member_by_email("nobody@example.com") is None
    assert member_by_email("not an email") is None


def test_a_phone_or_email_belongs_to_one_member_only(seeded_members, store_a):
    with pytest.raises(InvalidMemberData) as refused:
        member_create(home_store=store_a, phone="0123456789", email="SITI.nurhaliza@example.com")
    assert refused.value.errors == {
        "phone": ("taken", "Another member already has this phone."),
        "email": ("taken", "Another member already has this email."),
    }


def test_the_database_enforces_uniqueness_too(seeded_members, store_a):
    taken = Member.objects.get(pk=seeded_members[0].pk).phone_index
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.create(home_store=store_a, phone_index=taken)
    # Any number of members without a phone.
    Member.objects.create(home_store=store_a)
    Member.objects.create(home_store=store_a)


def test_the_index_is_keyed_per_field_and_by_the_blind_index_key():
    assert blind_index("phone", "x@example.com") != blind_index("email", "x@example.com")
    before = blind_index("phone", "+60123456789")
    with override_settings(BLIND_INDEX_KEY="another-blind-index-key-0000000000"):
        assert blind_index("phone", "+60123456789") != before
    assert len(before) == 64 and int(before, 16) >= 0


def test_the_index_is_never_the_value_or_its_plain_hash(seeded_members):
    member = Member.objects.get(pk=seeded_members[0].pk)
    assert member.blind_index_version == 1
    assert "6789" not in member.phone_index and "siti" not in member.email_index


_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", min_size=1, max_size=20)
_domain = st.sampled_from(["example.com", "Example.COM", "mail.example.my", "EXAMPLE.org"])


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    local=_local.filter(lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s),
    domain=_domain,
    pad=st.sampled_from(["", " ", "  \t"]),
)
def test_email_index_is_stable_under_case_and_spaces(local, domain, pad):
    email = f"{local}@{domain}"
    variants = [email, email.upper(), email.lower(), f"{pad}{email}{pad}"]
    assert len({blind_index("email", email_normalise(v)) for v in variants}) == 1


@settings(derandomize=True, max_examples=200, deadline=None)
@given(prefix=st.sampled_from(["12", "13", "16", "17", "19"]), rest=st.integers(min_value=1000000, max_value=9999999))
def test_phone_index_is_stable_across_national_and_international_forms(prefix, rest):
    national = f"0{prefix}{rest}"
    forms = [national, f"+60{prefix}{rest}", f"+60 {prefix}-{str(rest)[:3]} {str(rest)[3:]}", f" 0{prefix} {rest} "]
    assert len({blind_index("phone", phone_normalise(f)) for f in forms}) == 1
