"""Who may do what with members: the one place the admin (and any other staff surface)
asks.

Members are a programme-wide record: anyone holding ``members.view_member`` finds and
opens any member (they shop in any store); ``Member`` names no ``store_scope_field``, so
``loyalty.kernel.scoping.restrict`` cuts a member queryset by the model permission only. What
hangs off a member is store-scoped for store staff: the ledger rows (``loyalty.ledger.selectors``),
the home store's page, the change history's authors; and the consent history is for
programme-wide roles only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from loyalty.kernel.scoping import restrict, sees_all_stores, stores_visible_to
from members.models import Member
from staffauth.models import StaffUser

if TYPE_CHECKING:
    from loyalty.kernel.models import Store
    from loyalty.kernel.scoping import User

REVEAL_PERMISSION = "members.reveal_member_pii"
END_SESSIONS_PERMISSION = "members.end_member_sessions"
RESTRICT_PERMISSION = "members.restrict_member"
SUSPEND_PERMISSION = "members.suspend_member"


def members_visible(user: User, action: str = "view") -> QuerySet[Member, Any]:
    """The members ``user`` may ``action``: every member with the model permission, else none."""
    return restrict(Member.objects.all(), user, action)


def may_reveal_personal_data(user: User) -> bool:
    """May ``user`` reveal a member's personal data (each access is recorded)?"""
    return bool(user and user.is_active and user.has_perm(REVEAL_PERMISSION))


def may_end_member_sessions(user: User) -> bool:
    """May ``user`` end all of a member's sessions (spec, "Session Invalidation":
    suspicious activity)? Headquarters roles that look into accounts: programme
    administrators and fraud analysts; never store staff (a member's sessions are
    programme-wide, not their store's)."""
    return bool(user and user.is_active and user.has_perm(END_SESSIONS_PERMISSION))


def may_restrict_members(user: User) -> bool:
    """May ``user`` freeze a member's spending, lock a member (sessions revoked) or block
    a member's device (FRAUD.md §3 "Actions": fraud analysts; Program Administrators)?"""
    return bool(user and user.is_active and user.has_perm(RESTRICT_PERMISSION))


def may_suspend_members(user: User) -> bool:
    """May ``user`` suspend a member, restore a suspended one, or confirm a spending
    freeze so that it does not lapse (Program Administrators: an analyst recommends)?"""
    return bool(user and user.is_active and user.has_perm(SUSPEND_PERMISSION))


def sees_programme_wide_panels(user: User) -> bool:
    """The consent history and everyone's change history: programme-wide roles only."""
    return sees_all_stores(user)


def home_stores_listed(user: User) -> QuerySet[Store, Any]:
    """The home stores ``user`` may filter members by (their own, or all)."""
    return stores_visible_to(user)


def may_open_store(user: User, store: Store) -> bool:
    """May ``user`` open ``store``'s page: the store permission, and one of their stores."""
    return restrict(stores_visible_to(user).filter(pk=store.pk), user, "view").exists()


def colleagues(user: User) -> QuerySet[StaffUser, Any]:
    """The staff of ``user``'s stores: whose changes to a member a store-scoped user sees
    in its history (programme-wide roles see everyone's)."""
    return StaffUser.objects.filter(stores__in=stores_visible_to(user).values("pk"))
