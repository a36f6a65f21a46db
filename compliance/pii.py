"""Retention of closed members' personal data (COMPLIANCE.md §2): crypto-shredded
(``members.services.membership.member_pii_shred``) ``RETENTION_CLOSED_PII_DAYS`` after
closure; the member row, the ledger and the pseudonymous aggregates stay.

The closure time is the audit log's record of the status change to closed (Member is
audited); a closed member without one is left alone (its closure date is unproven).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast

from compliance.models import LegalHold
from members.models import Member
from members.services.membership import member_pii_shred


def closed_pii_cutoff(now: datetime) -> datetime:
    return now - timedelta(days=settings.RETENTION_CLOSED_PII_DAYS)


def closed_members_due(now: datetime) -> QuerySet[Member]:
    """Closed members, not yet erased, closed before the cutoff, under no standing hold."""
    closure = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Member),
            object_pk=Cast(OuterRef("pk"), CharField()),
            changes__status__1=Member.Status.CLOSED,
        )
        .order_by("-timestamp")
        .values("timestamp")[:1]
    )
    held = LegalHold.objects.filter(scope=LegalHold.Scope.MEMBER, member=OuterRef("pk"), released_at__isnull=True)
    return (
        Member.objects.filter(status=Member.Status.CLOSED, pii_erased_at__isnull=True)
        .annotate(closed_at=Subquery(closure))
        .filter(closed_at__lt=closed_pii_cutoff(now))
        .exclude(Exists(held))
    )


def closed_members_held(now: datetime) -> int:
    held = LegalHold.objects.filter(scope=LegalHold.Scope.MEMBER, member=OuterRef("pk"), released_at__isnull=True)
    return Member.objects.filter(status=Member.Status.CLOSED, pii_erased_at__isnull=True).filter(Exists(held)).count()


def closed_members_shred(now: datetime, *, batch: int = 1000) -> int:
    """Shred the due members' personal data in batches (one transaction each); returns the count."""
    done = 0
    while True:
        pks = list(closed_members_due(now).order_by("pk").values_list("pk", flat=True)[:batch])
        if not pks:
            return done
        with transaction.atomic():
            for member in Member.objects.filter(pk__in=pks):
                member_pii_shred(member=member)
        done += len(pks)
