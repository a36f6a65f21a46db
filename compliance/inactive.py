"""Long-inactive members (COMPLIANCE.md §2, "closed/inactive PII").

A member is inactive when, for ``RETENTION_INACTIVE_MONTHS`` (24) months, they have had no
ledger operation, no session activity and nothing on their balance, and they are active
(not suspended: a suspended account is a case's business) and under no legal hold. The
nightly retention run first warns them (a message through the outbox, and an
``InactivityNotice``); ``RETENTION_INACTIVE_WARNING_DAYS`` (30) days later, if they are still
idle, their account is closed (an audited status change, sessions ended). Their personal
data then waits the closed members' period (``compliance.pii``) before it is crypto-shredded,
while the ledger stays under the pseudonymous member id. Coming back cancels the notice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from compliance.models import InactivityNotice, LegalHold
from loyalty.ledger.selectors import members_without_points_or_operations
from members.models import Member, MemberSession

WARNING_SUBJECT = "Your loyalty account will be closed"


def months_before(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 - months, 12)
    target_year, target_month = moment.year + year, month + 1
    day = moment.day
    while True:
        try:
            return moment.replace(year=target_year, month=target_month, day=day)
        except ValueError:  # 31 April -> 30 April
            day -= 1


def idle_since(now: datetime) -> datetime:
    return months_before(now, settings.RETENTION_INACTIVE_MONTHS)


def _idle(since: datetime) -> QuerySet[Member]:
    """Active members, under no hold, idle since ``since`` (ledger, sessions) with nothing
    on their balance, who joined before it."""
    seen = MemberSession.objects.filter(member=OuterRef("pk"), last_seen_at__gte=since)
    held = LegalHold.objects.filter(scope=LegalHold.Scope.MEMBER, member=OuterRef("pk"), released_at__isnull=True)
    return (
        members_without_points_or_operations(since=since)
        .filter(status=Member.Status.ACTIVE, pii_erased_at__isnull=True, created_at__lt=since)
        .exclude(Exists(seen))
        .exclude(Exists(held))
    )


def _open_notices() -> QuerySet[InactivityNotice]:
    return InactivityNotice.objects.filter(closed_at__isnull=True, cancelled_at__isnull=True)


def inactive_to_warn(now: datetime) -> QuerySet[Member]:
    open_notice = _open_notices().filter(member=OuterRef("pk"))
    return _idle(idle_since(now)).exclude(Exists(open_notice))


def notices_lapsed(now: datetime) -> QuerySet[InactivityNotice]:
    return _open_notices().filter(close_after__lte=now)


def inactive_warn(now: datetime, *, batch: int = 500) -> int:
    """Warn every inactive member not warned yet (one transaction per batch)."""
    from loyalty.notifications import notify_member

    days = settings.RETENTION_INACTIVE_WARNING_DAYS
    warned = 0
    while True:
        members = list(inactive_to_warn(now).order_by("pk")[:batch])
        if not members:
            return warned
        with transaction.atomic():
            for member in members:
                notice = InactivityNotice.objects.create(
                    member=member, warned_at=now, close_after=now + timedelta(days=days)
                )
                notify_member(
                    member=member,
                    channel=member.preferred_channel or "sms",
                    subject=WARNING_SUBJECT,
                    body=(
                        f"Your loyalty account has not been used for {settings.RETENTION_INACTIVE_MONTHS} months. "
                        f"It will be closed on {notice.close_after:%d %B %Y} unless you sign in or use it before then."
                    ),
                    topic="account",
                )
        warned += len(members)


def inactive_close(now: datetime) -> tuple[int, int]:
    """Close the accounts whose warning lapsed with the member still idle; cancel the
    notices of members who came back. Returns (closed, cancelled)."""
    from members.services.sessions import sessions_end_all

    closed = cancelled = 0
    for notice in notices_lapsed(now).select_related("member").order_by("pk"):
        with transaction.atomic():
            member = Member.objects.select_for_update().get(pk=notice.member_id)
            still_idle = _idle(notice.warned_at).filter(pk=member.pk).exists()
            if not still_idle:
                notice.cancelled_at = now
                notice.save(update_fields=["cancelled_at"])
                cancelled += 1
                continue
            member.status = Member.Status.CLOSED
            member.save(update_fields=["status"])  # audited: the closure date the PII period counts from
            sessions_end_all(member=member, reason="account_closed", now=now)
            notice.closed_at = now
            notice.save(update_fields=["closed_at"])
            closed += 1
    return closed, cancelled
