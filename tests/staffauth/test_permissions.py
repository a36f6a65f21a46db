"""The rules on staff accounts that hold on top of the roles (``staffauth.permissions``)."""

import pytest

from staffauth.permissions import (
    may_delete_staff,
    may_grant_superuser,
    may_manage_account,
    may_reset_mfa,
    privilege_change_refused,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_staff):
    return (
        make_staff("rules.admin", "system_admin"),
        make_staff("rules.other", "cashier"),
        make_staff("rules.root", is_superuser=True),
    )


def test_nobody_changes_their_own_privileges_and_only_a_superuser_a_superusers(people):
    admin, other, root = people
    assert privilege_change_refused(admin, admin) == "own account"
    assert privilege_change_refused(admin, root) == "superuser account"
    assert privilege_change_refused(admin, other) is None
    assert privilege_change_refused(root, admin) is None
    assert (may_manage_account(admin, root), may_manage_account(root, root), may_manage_account(admin, other)) == (
        False,
        True,
        True,
    )


def test_mfa_resets_superuser_status_and_deletions(people):
    admin, other, root = people
    assert (may_reset_mfa(admin, other), may_reset_mfa(admin, admin), may_reset_mfa(admin, root)) == (
        True,
        False,
        False,
    )
    assert may_reset_mfa(root, admin) and not may_reset_mfa(root, root)
    assert (may_grant_superuser(admin), may_grant_superuser(root)) == (False, True)
    assert (may_delete_staff(admin), may_delete_staff(root)) == (False, True)
