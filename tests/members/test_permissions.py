"""Who may do what with members (``members.permissions``), and the kernel's
``restrict(queryset, user, action)`` on members' querysets: the model permission first,
then the store scope of a store-scoped model."""

import pytest

from loyalty.kernel.scoping import restrict
from members.models import Member
from members.permissions import (
    colleagues,
    home_stores_listed,
    may_open_store,
    may_reveal_personal_data,
    members_visible,
    sees_programme_wide_panels,
)
from members.services.membership import member_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def members_ab(store_a, store_b):
    return member_create(home_store=store_a), member_create(home_store=store_b)


@pytest.fixture
def home_store_scoped(monkeypatch):
    """Members as if store-scoped by their home store: restrict's store rule on members' rows."""
    monkeypatch.setattr(Member, "store_scope_field", "home_store", raising=False)


def test_restrict_without_the_model_permission_keeps_nothing(members_ab, make_staff, store_a, home_store_scoped):
    nobody = make_staff("nobody", stores=[store_a])  # a store, but no role
    assert list(restrict(Member.objects.all(), nobody, "view")) == []
    assert list(restrict(Member.objects.all(), None, "view")) == []
    assert list(members_visible(nobody)) == []


def test_restrict_gives_a_headquarters_role_every_store(members_ab, staff_by_role, home_store_scoped):
    for role in ("program_admin", "fraud_analyst"):
        assert set(restrict(Member.objects.all(), staff_by_role[role], "view")) == set(members_ab)


def test_restrict_gives_a_store_scoped_role_its_own_stores_only(members_ab, staff_by_role, home_store_scoped):
    at_a, _at_b = members_ab
    for role in ("cashier", "store_manager"):
        assert list(restrict(Member.objects.all(), staff_by_role[role], "view")) == [at_a]


def test_restrict_checks_the_permission_of_the_action(members_ab, staff_by_role, home_store_scoped):
    # Viewing members is the cashier's; changing them is nobody's role.
    assert list(restrict(Member.objects.all(), staff_by_role["cashier"], "change")) == []


def test_members_are_programme_wide_for_anyone_who_may_view_them(members_ab, staff_by_role):
    assert set(members_visible(staff_by_role["cashier"])) == set(members_ab)
    assert set(members_visible(staff_by_role["program_admin"])) == set(members_ab)
    assert list(members_visible(staff_by_role["system_admin"])) == []  # no members.view_member


def test_store_pages_home_stores_and_colleagues_follow_the_store_scope(staff_by_role, make_staff, store_a, store_b):
    cashier, admin = staff_by_role["cashier"], staff_by_role["program_admin"]
    colleague_b = make_staff("colleague.b", "cashier", stores=[store_b])
    assert (may_open_store(cashier, store_a), may_open_store(cashier, store_b)) == (True, False)
    assert (may_open_store(admin, store_a), may_open_store(admin, store_b)) == (True, True)
    assert not may_open_store(None, store_a)
    assert list(home_stores_listed(cashier)) == [store_a]
    assert set(home_stores_listed(admin)) == {store_a, store_b}
    assert cashier in colleagues(cashier) and colleague_b not in colleagues(cashier)


def test_personal_data_and_the_programme_wide_panels_are_for_headquarters(staff_by_role):
    assert [role for role, user in staff_by_role.items() if may_reveal_personal_data(user)] == ["program_admin"]
    assert not sees_programme_wide_panels(staff_by_role["store_manager"])
    assert sees_programme_wide_panels(staff_by_role["program_admin"])
