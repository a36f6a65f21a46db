"""Demo members get made-up personal data, encrypted, once."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from members.models import Member
from members.selectors import member_by_email
from members.services.pii import member_pii_read

pytestmark = pytest.mark.django_db(transaction=False)


@override_settings(DEBUG=True)
def test_seed_demo_gives_demo_members_encrypted_personal_data_once():
    call_command("seed_demo", stdout=StringIO())
    first = dict(Member.objects.values_list("pk", "data_key_wrapped"))
    call_command("seed_demo", stdout=StringIO())

    assert dict(Member.objects.values_list("pk", "data_key_wrapped")) == first
    members = list(Member.objects.order_by("pk"))
    assert all(member_pii_read(m).phone.startswith("+6012555") for m in members)
    assert member_by_email("DEMO.member1@example.com") == members[0]
