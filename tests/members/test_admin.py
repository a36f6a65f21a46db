"""The member admin: masked personal data; revealing a value needs a permission and is recorded."""

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.db.utils import IntegrityError
from django.test import Client
from django.urls import reverse

from members.models import Consent, ConsentRecord, Member, MemberPiiAccess
from members.services.consents import consents_record
from members.services.membership import member_pii_shred
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db


def _page(member) -> str:
    return reverse("admin:members_member_change", args=[member.pk])


def _reveal(member) -> str:
    return reverse("admin:members_member_reveal", args=[member.pk])


def test_the_member_page_shows_masked_values_only(staff_by_role, seeded_members):
    member = seeded_members[0]
    for role in ("cashier", "program_admin"):
        client = login_verified(Client(), staff_by_role[role])
        body = client.get(_page(member)).content.decode()
        assert "+60 ••• ••• 89" in body
        assert "S•••@example.com" in body
        assert "S••• N••• b••• T•••" in body
        assert "Siti" not in body and "6789" not in body and "Ampang" not in body and "1979" not in body
        assert str(member.member_id) in body


def test_the_changelist_shows_no_personal_data(staff_by_role, seeded_members):
    client = login_verified(Client(), staff_by_role["program_admin"])
    body = client.get(reverse("admin:members_member_changelist")).content.decode()
    assert seeded_members[0].loyalty_number in body
    assert "Siti" not in body and "6789" not in body and "•••" not in body


def test_search_by_phone_or_email_uses_the_blind_index(staff_by_role, seeded_members):
    # The search box posts the term (tests/members/test_admin_search.py: never in a URL).
    client = login_verified(Client(), staff_by_role["cashier"])
    for term in ("012-345 6789", "SITI.nurhaliza@example.com"):
        body = client.post(reverse("admin:members_member_search"), {"q": term}, follow=True).content.decode()
        assert seeded_members[0].loyalty_number in body and seeded_members[1].loyalty_number not in body


def test_only_holders_of_the_permission_see_reveal_buttons(staff_by_role, seeded_members):
    member = seeded_members[0]
    admin_body = login_verified(Client(), staff_by_role["program_admin"]).get(_page(member)).content.decode()
    cashier_body = login_verified(Client(), staff_by_role["cashier"]).get(_page(member)).content.decode()
    assert 'id="reveal-phone"' in admin_body
    assert "reveal" not in cashier_body.lower().replace("members_member_reveal", "")


def test_reveal_shows_the_value_once_and_records_the_access(staff_by_role, seeded_members):
    member = seeded_members[0]
    admin = staff_by_role["program_admin"]
    client = login_verified(Client(), admin)

    response = client.post(_reveal(member), {"field": "phone"})

    assert response.status_code == 200
    assert "+60123456789" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    access = MemberPiiAccess.objects.get()
    assert (access.member, access.staff, access.field) == (member, admin, "phone")
    assert access.accessed_at is not None


@pytest.mark.parametrize("role", ["cashier", "store_manager", "fraud_analyst", "system_admin"])
def test_reveal_without_the_permission_is_refused_and_records_nothing(staff_by_role, seeded_members, role):
    client = login_verified(Client(), staff_by_role[role])

    response = client.post(_reveal(seeded_members[0]), {"field": "phone"})

    assert response.status_code == 403
    assert "6789" not in response.content.decode()
    assert not MemberPiiAccess.objects.exists()


def test_reveal_is_post_only_and_needs_a_csrf_token(staff_by_role, seeded_members):
    admin = staff_by_role["program_admin"]
    assert login_verified(Client(), admin).get(_reveal(seeded_members[0]), {"field": "phone"}).status_code == 405
    strict = login_verified(Client(enforce_csrf_checks=True), admin)
    assert strict.post(_reveal(seeded_members[0]), {"field": "phone"}).status_code == 403
    assert not MemberPiiAccess.objects.exists()


def test_reveal_of_an_unknown_member_or_field_is_404(staff_by_role, seeded_members):
    client = login_verified(Client(), staff_by_role["program_admin"])
    assert client.post(reverse("admin:members_member_reveal", args=[999999]), {"field": "phone"}).status_code == 404
    assert client.post(_reveal(seeded_members[0]), {"field": "phone_encrypted"}).status_code == 404
    assert not MemberPiiAccess.objects.exists()


def test_reveal_needs_an_otp_verified_session(client, staff_by_role, seeded_members):
    client.force_login(staff_by_role["program_admin"])
    response = client.post(_reveal(seeded_members[0]), {"field": "phone"})
    assert response.status_code == 302 and "6789" not in response.content.decode()


def test_an_erased_member_shows_erased_and_never_fails(staff_by_role, seeded_members):
    member_pii_shred(member=seeded_members[0])
    client = login_verified(Client(), staff_by_role["program_admin"])

    page = client.get(_page(seeded_members[0]))
    revealed = client.post(_reveal(seeded_members[0]), {"field": "email"})

    assert page.status_code == 200 and "erased" in page.content.decode()
    assert revealed.status_code == 200 and "erased" in revealed.content.decode()


def test_access_events_are_append_only(staff_by_role, seeded_members, owner_role):
    access = MemberPiiAccess.objects.create(
        member=seeded_members[0], staff=staff_by_role["program_admin"], field="name"
    )
    with pytest.raises(TypeError):
        access.save()
    with pytest.raises(TypeError):
        MemberPiiAccess.objects.all().delete()
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE members_memberpiiaccess SET field = 'phone'")
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM members_memberpiiaccess")
    assert MemberPiiAccess.objects.get().field == "name"


def test_only_the_programme_administrator_role_may_reveal(staff_by_role):
    allowed = {role for role, user in staff_by_role.items() if user.has_perm("members.reveal_member_pii")}
    assert allowed == {"program_admin"}
    assert Member._meta.permissions[0][0] == "reveal_member_pii"


# --- consents ------------------------------------------------------------------------------------


def test_the_member_page_shows_current_consents_and_their_history_read_only(staff_by_role, seeded_members):
    member = seeded_members[0]
    consents_record(member=member, choices={"essential": True, "sms_marketing": True}, source="enrolment")
    consents_record(member=member, choices={"sms_marketing": False}, source="member")
    client = login_verified(Client(), staff_by_role["program_admin"])

    body = client.get(_page(member)).content.decode()

    current = body[body.index('id="member-consents"') :].split("</table>")[0]
    assert "Essential processing (running the membership)</td><td>Granted" in current
    assert "Marketing by SMS</td><td>Not granted</td>" in current
    assert "Analytics</td><td>Not granted (never recorded)" in current
    history = body[body.index('id="member-consent-history"') :].split("</table>")[0]
    assert history.index("Withdrawn / not given") < history.index("Granted")  # newest first
    assert history.count("<tr>") == 1 + 3  # header and three records
    assert "The member (app or web)" in history and "Enrolment" in history
    assert not any(tag in current + history for tag in ("<input", "<select", "<button", "<textarea"))


def test_store_staff_see_the_current_consents_but_not_their_history(staff_by_role, seeded_members):
    # The consent history is the compliance record (and tells when staff somewhere acted
    # for the member): headquarters only (issue 11, D3). The current choices are member
    # information a cashier may need.
    member = seeded_members[0]
    consents_record(member=member, choices={"essential": True, "sms_marketing": True}, source="enrolment")
    for role in ("cashier", "store_manager"):
        body = login_verified(Client(), staff_by_role[role]).get(_page(member)).content.decode()
        assert "Marketing by SMS</td><td>Granted" in body
        assert 'id="member-consent-history"' not in body and "Consent history" not in body


def test_staff_cannot_grant_consent_through_the_admin(staff_by_role, seeded_members):
    member = seeded_members[0]
    consents_record(member=member, choices={"essential": True}, source="enrolment")
    client = login_verified(Client(), staff_by_role["program_admin"])
    before = list(ConsentRecord.objects.values_list("id", "granted"))

    # no admin exists for the consent tables, and the member page cannot be saved
    assert Consent not in admin.site._registry and ConsentRecord not in admin.site._registry
    response = client.post(_page(member), {"consents": "sms_marketing", "sms_marketing": "on"})

    assert response.status_code == 403
    assert list(ConsentRecord.objects.values_list("id", "granted")) == before
    assert not Consent.objects.filter(member=member, granted=True).exclude(purpose="essential").exists()
