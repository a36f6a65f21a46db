"""Who may do what with manual adjustments: the one place that says so.

The Django permissions are on ``loyalty.AdjustmentRequest`` (the roles in
``staffauth.roles`` grant them by name); the programme's policy
(``settings.ADJUSTMENT_POLICY``) says which roles may raise a request of each band and
which approvals the band needs. Store managers approve only their own stores' requests;
nobody acts on their own request or on their own member account (the services check
that, and the database refuses a self-approval).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q

from loyalty.adjustments.models import AdjustmentRequest
from staffauth.roles import ROLE_BY_NAME

if TYPE_CHECKING:
    from staffauth.models import StaffUser

REQUEST = "loyalty.add_adjustmentrequest"
APPROVE = "loyalty.approve_adjustmentrequest"
REVIEW = "loyalty.review_adjustmentrequest"

Band = AdjustmentRequest.Band


def roles_of(user: StaffUser) -> set[str]:
    """The product roles ``user`` holds (their keys: cashier, store_manager...)."""
    return {ROLE_BY_NAME[name].key for name in user.groups.values_list("name", flat=True) if name in ROLE_BY_NAME}


def own_account(user: StaffUser, member_id: int) -> bool:
    """True when ``member_id`` is the staff member's own member account."""
    return user.member_account_id is not None and user.member_account_id == member_id


def may_request(user: StaffUser, band: dict[str, Any]) -> bool:
    """May ``user`` raise a request of this policy band?"""
    return bool(roles_of(user) & set(band["requesters"])) and user.has_perm(REQUEST)


def may_take(user: StaffUser, request: AdjustmentRequest, step: str) -> bool:
    """May ``user`` give ``request`` this approval step (supervisor, program_admin,
    fraud_review)? Store managers approve their own stores' requests only."""
    roles = roles_of(user)
    if step == "supervisor":
        if not user.has_perm(APPROVE):
            return False
        if "program_admin" in roles:
            return True
        return (
            "store_manager" in roles
            and request.store_id is not None
            and user.stores.filter(pk=request.store_id).exists()
        )
    if step == "program_admin":
        return "program_admin" in roles and user.has_perm(APPROVE)
    if step == "fraud_review":
        return "fraud_analyst" in roles and user.has_perm(REVIEW)
    return False


def steps_open_to(user: StaffUser) -> Q:
    """The pending requests whose next step ``user`` may take, as a filter (the approval
    queue); the caller leaves out the user's own requests and member account."""
    roles = roles_of(user)
    can = Q(pk__in=[])
    if user.has_perm(APPROVE):
        if "program_admin" in roles:
            can |= Q(approved_by__isnull=True, band__in=[Band.SUPERVISOR, Band.HEADQUARTERS])
        elif "store_manager" in roles:
            can |= Q(approved_by__isnull=True, band=Band.SUPERVISOR, store__in=user.stores.all())
    if "fraud_analyst" in roles and user.has_perm(REVIEW):
        can |= Q(reviewed_by__isnull=True, band=Band.HEADQUARTERS)
    return can
