"""Rotation of the programme key: data keys re-wrapped, in batches, idempotently."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from loyalty.kernel.crypto import rotate_str
from members.models import Member
from members.services.membership import member_pii_shred
from members.services.pii import member_pii_read
from tests.members.conftest import SEEDED

pytestmark = pytest.mark.django_db

K2 = "T0h7y1bq8p3X0lbI1lNG6b7s1dY1p0bJfQ7dC8vO3mI="


def _rotate(**kwargs) -> str:
    out = StringIO()
    call_command("rotate_keys", stdout=out, **kwargs)
    return out.getvalue()


def test_rotation_leaves_nothing_readable_by_the_old_key_alone(seeded_members, store_a):
    k1 = settings.FIELD_ENCRYPTION_KEYS[0]
    Member.objects.create(home_store=store_a)  # no personal data: nothing to re-wrap
    # Deploy 1: [K1, K2] everywhere (still writing under K1).
    with override_settings(FIELD_ENCRYPTION_KEYS=[k1, K2]):
        assert all(member_pii_read(m).name for m in Member.objects.exclude(data_key_wrapped=""))
    # Deploy 2: [K2, K1], then rotate.
    with override_settings(FIELD_ENCRYPTION_KEYS=[K2, k1]):
        output = _rotate(batch=2)
    assert "100%" in output and "Re-wrapped 3 data key(s)" in output

    keyed = list(Member.objects.exclude(data_key_wrapped="").order_by("pk"))
    assert len(keyed) == 3
    for member in keyed:
        with pytest.raises(InvalidToken):
            Fernet(k1).decrypt(member.data_key_wrapped.encode())
    # Drop K1: every member is still readable under K2 alone.
    with override_settings(FIELD_ENCRYPTION_KEYS=[K2]):
        names = [member_pii_read(Member.objects.get(pk=m.pk)).name for m in seeded_members]
    assert names == [data["name"] for data in SEEDED]


def test_rotation_touches_only_the_data_keys(seeded_members):
    before = {m.pk: (m.phone_encrypted, m.email_encrypted, m.phone_index) for m in Member.objects.all()}
    with override_settings(FIELD_ENCRYPTION_KEYS=[K2, settings.FIELD_ENCRYPTION_KEYS[0]]):
        _rotate()
    after = {m.pk: (m.phone_encrypted, m.email_encrypted, m.phone_index) for m in Member.objects.all()}
    assert after == before


def test_rotate_keys_is_idempotent_and_prints_progress(seeded_members):
    with override_settings(FIELD_ENCRYPTION_KEYS=[K2, settings.FIELD_ENCRYPTION_KEYS[0]]):
        first = _rotate(batch=1)
        wrapped = sorted(Member.objects.values_list("data_key_wrapped", flat=True))
        second = _rotate(batch=1)

    assert "[" in first and "33%" in first and "66%" in first and "100% (3/3)" in first
    assert "Re-wrapped 3 data key(s); 0 already under the newest key." in first
    assert "Re-wrapped 0 data key(s); 3 already under the newest key." in second
    assert sorted(Member.objects.values_list("data_key_wrapped", flat=True)) == wrapped


def test_an_interrupted_rotation_resumes(seeded_members):
    k1 = settings.FIELD_ENCRYPTION_KEYS[0]
    with override_settings(FIELD_ENCRYPTION_KEYS=[K2, k1]):
        # As if a previous run had done the first member before stopping.
        first = Member.objects.order_by("pk").first()
        Member.objects.filter(pk=first.pk).update(data_key_wrapped=rotate_str(first.data_key_wrapped))
        output = _rotate()
    assert "Re-wrapped 2 data key(s); 1 already under the newest key." in output


def test_rotation_with_no_members_says_so(db):
    assert "Re-wrapped 0 data key(s)" in _rotate()


def test_shredded_members_are_skipped(seeded_members):
    member_pii_shred(member=seeded_members[0])
    with override_settings(FIELD_ENCRYPTION_KEYS=[K2, settings.FIELD_ENCRYPTION_KEYS[0]]):
        assert "Re-wrapped 2 data key(s)" in _rotate()
