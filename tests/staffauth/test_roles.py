"""The roles table and its application to groups."""

import pytest
from django.contrib.auth.models import Group, Permission

from staffauth.roles import ROLES, apply_roles

pytestmark = pytest.mark.django_db


def test_migrations_created_the_five_roles_with_exactly_their_permissions():
    for role in ROLES.values():
        group = Group.objects.get(name=role.name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert granted == set(role.permissions), role.name


def test_store_scope_follows_the_spec():
    scoped = {key for key, role in ROLES.items() if role.store_scoped}
    assert scoped == {"cashier", "store_manager"}


def test_store_manager_has_every_cashier_permission():
    assert ROLES["cashier"].permissions <= ROLES["store_manager"].permissions


def test_no_role_may_change_roles_or_hand_out_permissions():
    forbidden = {"auth.add_group", "auth.change_group", "auth.delete_group", "auth.change_permission"}
    for role in ROLES.values():
        assert not role.permissions & forbidden, role.name


def test_apply_roles_is_idempotent_and_reports_unknown_permissions():
    first = apply_roles(Group=Group, Permission=Permission)
    second = apply_roles(Group=Group, Permission=Permission)
    assert first == second and Group.objects.count() == 5
    Permission.objects.filter(codename="end_sessions").delete()
    with pytest.raises(LookupError, match="staffauth.end_sessions"):
        apply_roles(Group=Group, Permission=Permission)
