"""Reads of fraud alerts, restricted before they leave this module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from fraud.models import FraudAlert
from loyalty.kernel.scoping import scope_to_stores

if TYPE_CHECKING:
    from loyalty.kernel.scoping import User


def fraud_alerts_visible_to(*, user: User, queryset: QuerySet[FraudAlert] | None = None) -> QuerySet[FraudAlert]:
    """The alerts of the stores ``user`` may see (``loyalty.kernel.scoping``): every alert for
    headquarters roles, only their stores' alerts (never an alert without a store) for
    store-scoped roles, none for anonymous or inactive users. ``queryset`` narrows a
    caller's own queryset (the admin's, with its ordering); permission to see alerts
    at all (``fraud.permissions.VIEW_ALERT``) is checked at the edge."""
    if queryset is None:
        queryset = FraudAlert.objects.all()
    return scope_to_stores(queryset, user)
