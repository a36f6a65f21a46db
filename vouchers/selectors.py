"""Reads of vouchers and the reward catalogue for the member's side (issue 6).

A voucher's effective state is ``expired`` once ``expires_at <= now`` while its status
column still says ``active`` (no job has to run for a voucher to expire); otherwise it
is the status column (``active``, ``redeemed``, ``revoked``, ``reported``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When
from django.utils import timezone

from loyalty.kernel.scoping import sees_all_stores, stores_visible_to
from loyalty.ledger.selectors import member_balance
from members.models import Member
from vouchers.models import Reward, Voucher

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _State(TypedDict):
    state: str  # the voucher's effective state (see the module docstring)


EXPIRED = "expired"
STATES = [*Voucher.Status.values, EXPIRED]


def vouchers_visible_to(user: Any, queryset: QuerySet[Voucher]) -> QuerySet[Voucher]:
    """The vouchers of ``queryset`` a staff user sees: every one for a user who sees every
    store; otherwise those of members at their stores, redeemed at their stores, or
    issued by them (one row per voucher: a voucher has at most one redemption)."""
    if sees_all_stores(user):
        return queryset
    stores = stores_visible_to(user).values("pk")
    return queryset.filter(Q(member__home_store__in=stores) | Q(redemption__store__in=stores) | Q(issued_by=user.pk))


def voucher_state(voucher: Voucher, *, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if voucher.status == Voucher.Status.ACTIVE and voucher.expires_at <= now:
        return EXPIRED
    return voucher.status


def _with_state(queryset: QuerySet[Voucher], now: datetime) -> QuerySet[WithAnnotations[Voucher, _State]]:
    return queryset.annotate(
        state=Case(
            When(status=Voucher.Status.ACTIVE, expires_at__lte=now, then=Value(EXPIRED)),
            default="status",
            output_field=CharField(),
        )
    )


def member_vouchers(
    *, member: Member, now: datetime | None = None, state: str | None = None
) -> QuerySet[WithAnnotations[Voucher, _State]]:
    """The member's vouchers, newest first, each annotated with ``state`` (effective);
    only those in ``state`` when given."""
    vouchers = _with_state(Voucher.objects.filter(member=member).select_related("reward"), now or timezone.now())
    if state is not None:
        vouchers = vouchers.filter(state=state)
    return vouchers.order_by("-issued_at", "-id")


def member_voucher_get(*, member: Member, voucher_id: object, now: datetime | None = None) -> Voucher | None:
    """One of the member's vouchers (annotated with ``state``); None for an id that is
    not a UUID, does not exist or is another member's."""
    try:
        pk = voucher_id if isinstance(voucher_id, uuid.UUID) else uuid.UUID(str(voucher_id))
    except ValueError:
        return None
    return member_vouchers(member=member, now=now).filter(pk=pk).first()


@dataclass
class CatalogueEntry:
    reward: Reward
    held: int  # vouchers of this reward the member was issued ("in all")
    reasons: list[str] = field(default_factory=list)  # why the member may not buy it now
    step_up_required: bool = False  # buying it needs a step-up for "redeem"

    @property
    def eligible(self) -> bool:
        return not self.reasons


def reward_catalogue(*, member: Member, now: datetime | None = None) -> list[CatalogueEntry]:
    """The active rewards whose availability has not ended, cheapest first, each with
    what stops this member from buying it now (the purchase's own refusal codes:
    ``reward_not_yet_available``, ``tier_too_low``, ``per_member_limit_reached``,
    ``out_of_stock``, ``insufficient_points``). The purchase checks again."""
    now = now or timezone.now()
    rewards = (
        Reward.objects.filter(active=True)
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
        .annotate(held=Count("vouchers", filter=Q(vouchers__member=member)))
        .order_by("points_price", "name", "pk")
    )
    balance = member_balance(member)
    available = balance.available if balance is not None else 0
    threshold = settings.VOUCHERS.get("step_up_above_points", 5000)
    entries = []
    for reward in rewards:
        reasons = []
        if reward.available_from is not None and now < reward.available_from:
            reasons.append("reward_not_yet_available")
        if member.tier < reward.min_tier:
            reasons.append("tier_too_low")
        if reward.per_member_limit is not None and reward.held >= reward.per_member_limit:
            reasons.append("per_member_limit_reached")
        if reward.stock_remaining == 0:
            reasons.append("out_of_stock")
        if available < reward.points_price:
            reasons.append("insufficient_points")
        entries.append(
            CatalogueEntry(
                reward=reward, held=reward.held, reasons=reasons, step_up_required=reward.points_price > threshold
            )
        )
    return entries
