"""Sysadmins manage staff, roles and stores; nobody raises their own privileges."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from staffauth.models import SecurityEvent, StaffUser
from staffauth.services import staff_access_changed

pytestmark = pytest.mark.django_db


def change_form(user, **overrides):
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "groups": [g.pk for g in user.groups.all()],
        "stores": [s.pk for s in user.stores.all()],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


def test_sysadmin_creates_a_cashier_with_store(verified_client, staff_by_role, store_a):
    client = verified_client(staff_by_role["system_admin"])
    cashier_group = Group.objects.get(name="Cashier")
    response = client.post(
        reverse("admin:staffauth_staffuser_add"),
        {
            "username": "New.Cashier",
            "password1": "Brand-new-pass-99!",
            "password2": "Brand-new-pass-99!",
            "groups": [cashier_group.pk],
            "stores": [store_a.pk],
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = StaffUser.objects.get(username="new.cashier")
    assert user.is_staff and not user.is_superuser
    assert user.role_names == ["Cashier"] and list(user.stores.all()) == [store_a]
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ROLES_CHANGED, subject=user).exists()


def test_new_staff_password_must_meet_the_rules(verified_client, staff_by_role):
    client = verified_client(staff_by_role["system_admin"])
    response = client.post(
        reverse("admin:staffauth_staffuser_add"),
        {"username": "weak", "password1": "password", "password2": "password"},
    )
    assert response.status_code == 200
    assert not StaffUser.objects.filter(username="weak").exists()


def test_own_privilege_fields_are_read_only(verified_client, staff_by_role):
    sysadmin = staff_by_role["system_admin"]
    client = verified_client(sysadmin)
    everything = Group.objects.values_list("pk", flat=True)

    response = client.post(
        reverse("admin:staffauth_staffuser_change", args=[sysadmin.pk]),
        change_form(sysadmin, groups=list(everything), is_superuser="on"),
    )

    assert response.status_code == 302  # saved, but the privilege fields were not editable
    sysadmin.refresh_from_db()
    assert sysadmin.role_names == ["System Administrator"] and not sysadmin.is_superuser


def test_is_superuser_and_user_permissions_are_not_editable_by_a_sysadmin(verified_client, staff_by_role):
    client = verified_client(staff_by_role["system_admin"])
    cashier = staff_by_role["cashier"]
    client.post(
        reverse("admin:staffauth_staffuser_change", args=[cashier.pk]),
        change_form(cashier, is_superuser="on", user_permissions=[1, 2, 3]),
    )
    cashier.refresh_from_db()
    assert not cashier.is_superuser and not cashier.user_permissions.exists()


def test_sysadmin_cannot_change_a_superuser(verified_client, staff_by_role, make_staff):
    root = make_staff("root", is_superuser=True)
    client = verified_client(staff_by_role["system_admin"])
    response = client.post(reverse("admin:staffauth_staffuser_change", args=[root.pk]), change_form(root, is_active=""))
    assert response.status_code == 403
    root.refresh_from_db()
    assert root.is_active
    password_page = client.get(reverse("admin:auth_user_password_change", args=[root.pk]))
    assert password_page.status_code == 403
    denied = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ACCESS_DENIED, actor=staff_by_role["system_admin"])
    assert denied.count() == 2
    assert denied.latest("id").detail == {"path": f"/admin/staffauth/staffuser/{root.pk}/password/", "method": "GET"}


def test_service_refuses_a_change_to_ones_own_access(staff_by_role):
    sysadmin = staff_by_role["system_admin"]
    sysadmin.groups.add(Group.objects.get(name="Program Administrator"))
    stamp = sysadmin.security_stamp
    with pytest.raises(PermissionDenied):
        staff_access_changed(
            actor=sysadmin, user=sysadmin, roles_before={"System Administrator"}, stores_before=set(), was_active=True
        )
    sysadmin.refresh_from_db()
    assert sysadmin.security_stamp == stamp
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ROLES_CHANGED).exists()


def test_roles_are_read_only_in_the_admin(verified_client, staff_by_role):
    client = verified_client(staff_by_role["system_admin"])
    group = Group.objects.get(name="Cashier")
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 200
    assert client.post(reverse("admin:auth_group_change", args=[group.pk]), {"name": "Cashier"}).status_code == 403
    assert client.get(reverse("admin:auth_group_add")).status_code == 403


def test_sync_roles_restores_a_tampered_role(staff_by_role):
    from django.core.management import call_command

    group = Group.objects.get(name="Cashier")
    group.permissions.clear()
    call_command("sync_roles", verbosity=0)
    from staffauth.roles import CASHIER

    restored = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert restored == CASHIER.permissions and "loyalty.view_store" in restored


def test_sysadmin_links_staff_to_their_own_membership_by_loyalty_number(verified_client, staff_by_role, store_a):
    from members.models import Member

    client = verified_client(staff_by_role["system_admin"])
    cashier, manager = staff_by_role["cashier"], staff_by_role["store_manager"]
    member = Member.objects.create(home_store=store_a)
    url = reverse("admin:staffauth_staffuser_change", args=[cashier.pk])

    unknown = client.post(url, change_form(cashier, own_loyalty_number="9900000000000000"))
    assert "No member has this loyalty number." in unknown.content.decode()
    assert client.post(url, change_form(cashier, own_loyalty_number=member.loyalty_number)).status_code == 302
    cashier.refresh_from_db()
    assert cashier.member_account == member
    # One membership, one staff account.
    taken = client.post(
        reverse("admin:staffauth_staffuser_change", args=[manager.pk]),
        change_form(manager, own_loyalty_number=member.loyalty_number),
    )
    assert "already linked to another staff account" in taken.content.decode()
    # Unlinking (an empty number) is a change like any other.
    assert client.post(url, change_form(cashier, own_loyalty_number="")).status_code == 302
    cashier.refresh_from_db()
    assert cashier.member_account is None


def test_nobody_changes_the_link_to_their_own_membership(verified_client, staff_by_role, store_a):
    from members.models import Member

    sysadmin = staff_by_role["system_admin"]
    sysadmin.member_account = Member.objects.create(home_store=store_a)
    sysadmin.save(update_fields=["member_account"])
    client = verified_client(sysadmin)
    response = client.post(
        reverse("admin:staffauth_staffuser_change", args=[sysadmin.pk]), change_form(sysadmin, own_loyalty_number="")
    )
    assert "You may not change the link to your own membership." in response.content.decode()
    sysadmin.refresh_from_db()
    assert sysadmin.member_account is not None
