"""How much personal data one staff member reveals (FRAUD.md §1 row 28): a harvest looks
like many members revealed in a short time.

Every reveal (``members.services.membership.member_pii_reveal``) first passes
``pii_reveal_watch``: a staff member who would reveal more than
``pii_reveal_members_per_hour`` distinct members in the last hour, or more than
``pii_reveals_per_day`` reveals in the last 24 hours, is refused and throttled for
``pii_reveal_throttle_seconds`` (``settings.FRAUD_ENFORCEMENT``); the throttle is
recorded as a staff security event, and the caller raises the fraud alert
(``pii_reveal_volume``: fraud sits above members, so members reports, the entry point
raises). A reveal of a member outside the staff member's stores is a violation the
caller alerts on too (``reveal_outside_stores``).

Counts come from ``MemberPiiAccess`` (index ``staff, accessed_at``), under a lock on
the staff member's row, so two reveals at once cannot both slip under the limit. The
throttle is kept in the cache (Redis) and, as a fallback, re-derived from the counts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from loyalty.kernel.refusals import Refusal
from loyalty.kernel.scoping import sees_all_stores, stores_visible_to
from members.models import Member, MemberPiiAccess
from staffauth.models import SecurityEvent, StaffUser
from staffauth.services import security_event_record

if TYPE_CHECKING:
    from loyalty.kernel.scoping import User

THROTTLE_KEY = "loyalty:pii-reveal-throttle:{staff_id}"


class PiiRevealThrottled(Refusal):
    """``pii_reveal_throttled``: the staff member revealed too much personal data lately.
    Facts: the counts and limits, ``newly`` (True on the reveal that tripped it)."""

    code = "pii_reveal_throttled"
    message = (
        "You have revealed personal data of unusually many members recently, so revealing is paused "
        "for you for a while. The fraud team has been told; ask them if you need it sooner."
    )


@dataclass(frozen=True)
class RevealCounts:
    members_hour: int  # distinct members in the last hour, this reveal included
    reveals_day: int  # reveals in the last 24 hours, this reveal included


def _conf(name: str) -> int:
    return int(settings.FRAUD_ENFORCEMENT[name])


def _throttle_key(staff: StaffUser) -> str:
    return THROTTLE_KEY.format(staff_id=staff.pk)


def pii_reveal_throttled_for(staff: StaffUser) -> int | None:
    """Seconds the staff member's reveals stay throttled, or None."""
    until = cache.get(_throttle_key(staff))
    if until is None:
        return None
    left = int(until - timezone.now().timestamp())
    return left if left > 0 else None


def _counts(staff: StaffUser, member: Member, now: datetime) -> RevealCounts:
    recent = MemberPiiAccess.objects.filter(staff=staff, accessed_at__gt=now - timedelta(hours=1))
    members = set(recent.values_list("member_id", flat=True).distinct())
    members.add(member.pk)
    day = MemberPiiAccess.objects.filter(staff=staff, accessed_at__gt=now - timedelta(days=1)).count()
    return RevealCounts(members_hour=len(members), reveals_day=day + 1)


def pii_reveal_watch(*, member: Member, staff: StaffUser, now: datetime | None = None) -> RevealCounts:
    """Check one reveal about to be recorded (call inside its transaction). Returns the
    counts with it; raises ``PiiRevealThrottled`` when the staff member is throttled or
    this reveal goes over a limit (then throttling them; the caller records it with
    ``pii_reveal_throttle_record`` once its transaction is over)."""
    now = now or timezone.now()
    seconds = _conf("pii_reveal_throttle_seconds")
    if (left := pii_reveal_throttled_for(staff)) is not None:
        raise PiiRevealThrottled(retry_after=left, newly=False)
    StaffUser.objects.select_for_update().filter(pk=staff.pk).first()
    counts = _counts(staff, member, now)
    limits = {
        "members_hour_limit": _conf("pii_reveal_members_per_hour"),
        "reveals_day_limit": _conf("pii_reveals_per_day"),
    }
    if counts.members_hour > limits["members_hour_limit"] or counts.reveals_day > limits["reveals_day_limit"]:
        cache.set(_throttle_key(staff), now.timestamp() + seconds, seconds)
        _touched.set()
        raise PiiRevealThrottled(
            retry_after=seconds,
            newly=True,
            members_hour=counts.members_hour,
            reveals_day=counts.reveals_day,
            members_hour_limit=limits["members_hour_limit"],
            reveals_day_limit=limits["reveals_day_limit"],
        )
    return counts


def pii_reveal_throttle_record(*, staff: StaffUser, refusal: PiiRevealThrottled) -> None:
    """Record the throttle that ``refusal`` began (a staff security event), after the
    refused reveal's transaction rolled back."""
    if refusal.facts.get("newly"):
        security_event_record(
            kind=SecurityEvent.Kind.ACCESS_DENIED,
            actor=staff,
            detail={"reason": "pii_reveal_throttled", "throttle_seconds": refusal.retry_after, **refusal.facts},
        )


def reveal_outside_stores(user: User, member: Member) -> bool:
    """A store-scoped staff member revealing a member whose home store is not one of
    theirs (or who has none): a data-access violation to alert on."""
    if sees_all_stores(user):
        return False
    return member.home_store_id is None or not stores_visible_to(user).filter(pk=member.home_store_id).exists()


_touched = threading.Event()


def pii_throttles_touched() -> bool:
    """True when this process throttled anyone since the last ``pii_throttles_clear``."""
    return _touched.is_set()


def pii_throttles_clear() -> None:
    """Tests, an operator: forget every throttle (they live in the cache)."""
    cache.clear()
    _touched.clear()
