"""Who may do what with vouchers, till redemptions, shifts' records and offline reviews:
the one place that says so.

The codenames are Django's model permissions on the vouchers models (the roles in
``staffauth.roles`` grant them by name). Which rows a user may act on is a store
question: the store-scoped records (``RedemptionAudit``, ``PendingRedemption``) name
their store in ``store_scope_field`` and ``loyalty.kernel.scoping.restrict`` cuts a queryset to
the permission and the user's stores. Vouchers belong to members, not stores: their
admin list has its own scope (``vouchers.admin.rewards``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from loyalty.kernel.scoping import restrict
from staffauth.roles import ROLE_BY_NAME
from vouchers.models import PendingRedemption, RedemptionAudit

REVOKE_VOUCHER = "vouchers.revoke_voucher"
ISSUE_GOODWILL = "vouchers.issue_goodwill_voucher"
# The audit queue's review and the offline queue's decision are custom permissions:
# ``restrict(queryset, user, "review" | "decide")`` reads them by these names.
REVIEW_AUDIT = "vouchers.review_redemptionaudit"
DECIDE_OFFLINE = "vouchers.decide_pendingredemption"


def _holds(user: Any, permission: str) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(permission))


def may_revoke_vouchers(user: Any) -> bool:
    """True when ``user`` may revoke members' vouchers (with a reason)."""
    return _holds(user, REVOKE_VOUCHER)


def may_review_audits(user: Any) -> bool:
    """True when ``user`` may confirm or mark irregular sampled till redemptions (of
    the stores they see)."""
    return _holds(user, REVIEW_AUDIT)


def may_decide_offline(user: Any) -> bool:
    """True when ``user`` may approve or reject offline redemptions (of the stores they see)."""
    return _holds(user, DECIDE_OFFLINE)


def goodwill_limit(user: Any) -> int | None:
    """The largest points price of a reward ``user`` may give as goodwill: the highest
    limit among their roles (``VOUCHERS["goodwill_max_points"]``); None when they may
    not give any (no permission, or no role with a limit)."""
    if not _holds(user, ISSUE_GOODWILL):
        return None
    limits = settings.VOUCHERS.get("goodwill_max_points", {})
    roles = {ROLE_BY_NAME[name].key for name in user.groups.values_list("name", flat=True) if name in ROLE_BY_NAME}
    allowed = [limits[role] for role in roles if role in limits]
    return max(allowed) if allowed else None


def audits_reviewable_by(user: Any) -> QuerySet[RedemptionAudit]:
    """The sampled redemptions ``user`` may review: none without the permission, else
    those of the stores they see."""
    return restrict(RedemptionAudit.objects.all(), user, "review")


def pending_decidable_by(user: Any) -> QuerySet[PendingRedemption]:
    """The offline redemptions ``user`` may approve or reject: none without the
    permission, else those of the stores they see."""
    return restrict(PendingRedemption.objects.all(), user, "decide")
