"""Reads of members: equality look-ups of personal data through the blind indexes, and
tier upgrades from the audit log (for the return detectors)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from members.models import Member, MemberDevice, MemberSecurityEvent
from members.services.pii import DEFAULT_PHONE_REGION, InvalidMemberData, blind_index, email_normalise, phone_normalise


def member_by_phone(phone: str, *, region: str = DEFAULT_PHONE_REGION) -> Member | None:
    """The member with this phone number in any common writing (spaces, national or
    international form), or None, also for a number that is not valid."""
    try:
        normalised = phone_normalise(phone, region=region)
    except InvalidMemberData:
        return None
    return Member.objects.filter(phone_index=blind_index("phone", normalised)).first()


def member_by_email(email: str) -> Member | None:
    """The member with this email address (case-insensitive, trimmed), or None."""
    try:
        normalised = email_normalise(email)
    except InvalidMemberData:
        return None
    return Member.objects.filter(email_index=blind_index("email", normalised)).first()


# Security events that make a redemption soon after them suspicious (account takeover).
ACCOUNT_CHANGE_EVENTS = ("contact_changed",)


def members_account_changes(*, member_ids: Iterable[int], start: datetime, end: datetime) -> dict[int, list[datetime]]:
    """For each of ``member_ids`` changed in the window, the times (oldest first) their
    contact details changed (``contact_changed`` security events) or a new device first
    logged in (``MemberDevice.first_seen_at``): ``{member_id: [time, ...]}``. Two
    queries, whatever the number of members."""
    ids = sorted(set(member_ids))
    changes: dict[int, list[datetime]] = {}
    if not ids:
        return changes
    events = MemberSecurityEvent.objects.filter(
        member_id__in=ids, kind__in=ACCOUNT_CHANGE_EVENTS, created_at__gte=start, created_at__lt=end
    ).values_list("member_id", "created_at")
    devices = MemberDevice.objects.filter(
        member_id__in=ids, first_seen_at__gte=start, first_seen_at__lt=end
    ).values_list("member_id", "first_seen_at")
    for member_id, at in [*events.order_by(), *devices.order_by()]:
        changes.setdefault(member_id, []).append(at)
    for times in changes.values():
        times.sort()
    return changes


def member_tier_upgrades(*, member_ids: Iterable[int], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Tier upgrades of these members in [start, end), from the audit log of ``Member``
    (``loyalty.ledger.policy.tier_apply`` saves the tier; auditlog records the change):
    rows ``{member_id, at, old_tier, new_tier}`` with ``new_tier > old_tier``, oldest
    first. One query."""
    ids = sorted({int(pk) for pk in member_ids})
    if not ids:
        return []
    entries = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Member),
            object_id__in=ids,
            timestamp__gte=start,
            timestamp__lt=end,
            changes__has_key="tier",
        )
        .order_by("timestamp", "pk")
        .values_list("object_id", "timestamp", "changes")
    )
    upgrades = []
    for member_id, at, changes in entries:
        try:
            old, new = (int(value) for value in changes["tier"])
        except (TypeError, ValueError):
            continue  # a creation ("None" before) or a malformed entry: not an upgrade
        if new > old:
            upgrades.append({"member_id": member_id, "at": at, "old_tier": old, "new_tier": new})
    return upgrades
