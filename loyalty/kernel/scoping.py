"""Store scoping: which stores' objects a staff user may see.

One rule, used by every admin, selector and export: a user holding
``loyalty.view_all_stores`` (programme-wide roles, superusers) sees every store;
anyone else sees only the stores they are assigned to. Membership is the direct
``StaffUser.stores`` relation, so scoping a table is a single ``store__in`` subquery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model, QuerySet

from loyalty.kernel.models import Store

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from staffauth.models import StaffUser

    # Who is asking: a staff user, the anonymous user of a request, or nobody (a task).
    User = StaffUser | AnonymousUser | None

_M = TypeVar("_M", bound=Model)

ALL_STORES_PERM = "loyalty.view_all_stores"


def sees_all_stores(user: User) -> bool:
    return bool(user and user.is_active and user.has_perm(ALL_STORES_PERM))


def stores_visible_to(user: User) -> QuerySet[Store]:
    """The stores ``user`` may see; empty for anonymous or inactive users."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Store.objects.none()
    if sees_all_stores(user):
        return Store.objects.all()
    return Store.objects.filter(staff=user)


def scope_to_stores(queryset: QuerySet[_M, Any], user: User, *, store_field: str = "store") -> QuerySet[_M, Any]:
    """Restrict ``queryset`` to rows whose ``store_field`` is a store ``user`` may see."""
    if sees_all_stores(user):
        return queryset
    if store_field == "pk":
        return queryset.filter(pk__in=stores_visible_to(user).values("pk"))
    return queryset.filter(**{f"{store_field}__in": stores_visible_to(user).values("pk")})


def restrict(queryset: QuerySet[_M, Any], user: User, action: str = "view") -> QuerySet[_M, Any]:
    """``queryset`` cut to the rows ``user`` may ``action`` (view, change, delete...), in
    the style of NetBox's ``RestrictedQuerySet.restrict()``: nothing unless the user holds
    the model's Django permission for the action (``<app>.<action>_<model>``), then only
    the rows of the stores the user may see when the model is store-scoped (it names its
    store in ``store_scope_field``, a lookup path such as ``"store"``); a model without it
    is programme-wide."""
    opts = queryset.model._meta
    if user is None or not user.is_active or not user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}"):
        return queryset.none()
    store_field = getattr(queryset.model, "store_scope_field", None)
    return scope_to_stores(queryset, user, store_field=store_field) if store_field else queryset
