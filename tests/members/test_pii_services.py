"""Members' personal data through the services: normalised, encrypted, readable, erasable."""

from datetime import date

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from loyalty.kernel.crypto import decrypt_str
from members.models import Member
from members.services.membership import member_create, member_pii_set, member_pii_shred
from members.services.pii import InvalidMemberData, MemberPiiErased, member_pii_read, member_pii_value
from tests.members.conftest import NORMALISED, SEEDED

pytestmark = pytest.mark.django_db


def test_a_member_without_personal_data_still_works(store_a):
    member = Member.objects.create(home_store=store_a)

    pii = member_pii_read(member)

    assert str(member) == member.loyalty_number
    assert member.member_id is not None and member.data_key_wrapped == ""
    assert pii.erased is False and pii.name is None and pii.phone is None and pii.birth_date is None


def test_member_ids_are_distinct_uuids(store_a):
    ids = {Member.objects.create(home_store=store_a).member_id for _ in range(5)}
    assert len(ids) == 5


def test_values_are_normalised_and_read_back(seeded_members):
    for member, data, phone, email in zip(
        seeded_members, SEEDED, NORMALISED["phone"], NORMALISED["email"], strict=True
    ):
        member = Member.objects.get(pk=member.pk)
        pii = member_pii_read(member)
        assert (pii.name, pii.address, pii.birth_date) == (data["name"], data["address"], data["birth_date"])
        assert (pii.phone, pii.email) == (phone, email)
        assert member.preferred_channel == data["preferred_channel"]


def test_each_member_has_their_own_data_key_wrapped_by_the_programme_key(seeded_members):
    keys = {decrypt_str(Member.objects.get(pk=m.pk).data_key_wrapped) for m in seeded_members}
    assert len(keys) == 3
    programme = Fernet(settings.FIELD_ENCRYPTION_KEYS[0])
    member = Member.objects.get(pk=seeded_members[0].pk)
    # The fields are encrypted under the data key, not the programme key.
    with pytest.raises(InvalidToken):
        programme.decrypt(member.phone_encrypted.encode())


def test_str_and_repr_hold_no_personal_data(seeded_members):
    member = Member.objects.get(pk=seeded_members[0].pk)
    shown = f"{member} {member!r} {member_pii_read(member)!r}"
    assert "Siti" not in shown and "6789" not in shown and "Ampang" not in shown


def test_clearing_a_field_with_none(seeded_members):
    member = member_pii_set(member=seeded_members[0], email=None, address="")
    assert member_pii_value(member, "email") is None and member.email_index is None
    assert member_pii_value(member, "address") is None
    assert member_pii_value(member, "phone") == NORMALISED["phone"][0]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("phone", "12345", "invalid_phone"),
        ("phone", "not a number", "invalid_phone"),
        ("phone", "+60 12", "invalid_phone"),
        ("email", "no-at-sign.example.com", "invalid_email"),
        ("email", "a@b@c", "invalid_email"),
        ("email", "x" * 250 + "@example.com", "too_long"),
        ("birth_date", "1990-02-30", "invalid_date"),
        ("birth_date", "23/07/1990", "invalid_date"),
        ("birth_date", date(1899, 12, 31), "out_of_range"),
        ("birth_date", date(2999, 1, 1), "out_of_range"),
        ("name", "x" * 201, "too_long"),
        ("address", "x" * 501, "too_long"),
        ("name", "Evil\r\nInjected", "invalid_characters"),
        ("preferred_channel", "pigeon", "invalid_choice"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_error_and_nothing_is_saved(store_a, field, value, code):
    before = Member.objects.count()

    with pytest.raises(InvalidMemberData) as refused:
        member_create(home_store=store_a, **{"name": "Valid Name", field: value})

    assert refused.value.errors[field][0] == code
    assert field in str(refused.value)
    assert Member.objects.count() == before


def test_all_refusals_come_at_once_and_the_member_keeps_their_data(seeded_members):
    member = seeded_members[0]

    with pytest.raises(InvalidMemberData) as refused:
        member_pii_set(member=member, name="New Name", phone="123", email="bad", birth_date="tomorrow")

    assert set(refused.value.errors) == {"phone", "email", "birth_date"}
    assert member_pii_value(Member.objects.get(pk=member.pk), "name") == SEEDED[0]["name"]


def test_shredding_one_member_erases_their_data_and_leaves_the_others_intact(seeded_members):
    target, *others = seeded_members
    ciphertext = Member.objects.get(pk=target.pk).phone_encrypted

    member_pii_shred(member=target)
    member_pii_shred(member=target)  # idempotent

    erased = Member.objects.get(pk=target.pk)
    pii = member_pii_read(erased)
    assert pii.erased is True and pii.name is None and pii.phone is None and pii.birth_date is None
    assert member_pii_value(erased, "email") is None
    assert erased.data_key_wrapped == "" and erased.phone_index is None and erased.email_index is None
    # The ciphertext (as any backup holds it) is still there and nothing can open it.
    assert erased.phone_encrypted == ciphertext
    for key in settings.FIELD_ENCRYPTION_KEYS:
        with pytest.raises(InvalidToken):
            Fernet(key).decrypt(ciphertext.encode())
    for member, data in zip(others, SEEDED[1:], strict=True):
        assert member_pii_read(Member.objects.get(pk=member.pk)).name == data["name"]


def test_an_erased_member_gets_no_new_personal_data(seeded_members):
    member_pii_shred(member=seeded_members[0])
    with pytest.raises(MemberPiiErased):
        member_pii_set(member=seeded_members[0], name="Someone Else")


def test_an_erased_members_phone_and_email_are_free_again(seeded_members, store_a):
    member_pii_shred(member=seeded_members[0])
    again = member_create(home_store=store_a, phone=SEEDED[0]["phone"], email=SEEDED[0]["email"])
    assert member_pii_value(again, "phone") == NORMALISED["phone"][0]


def test_shredding_also_erases_pending_addresses_and_password_hashes(seeded_members):
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from members.models import ContactVerification, MemberPasswordHistory
    from members.services.pii import blind_index

    member = seeded_members[0]
    pending = ContactVerification.objects.create(
        member=member, kind="email", value_encrypted="token", value_index=blind_index("email", "new@example.com"),
        token_hash="a" * 64, expires_at=timezone.now() + timezone.timedelta(hours=24),
    )  # fmt: skip
    Member.objects.filter(pk=member.pk).update(password_hash=make_password("Secret-pass-1"))
    MemberPasswordHistory.objects.create(member=member, password_hash=make_password("Older-pass-1"))

    member_pii_shred(member=member)

    pending.refresh_from_db()
    assert pending.value_index == "" and pending.value_encrypted == "" and pending.token_hash is None
    assert pending.cancelled_at is not None
    assert Member.objects.get(pk=member.pk).password_hash == ""
    assert not MemberPasswordHistory.objects.filter(member=member).exists()
