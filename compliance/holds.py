"""Legal holds (COMPLIANCE.md §2): placed and released with a reason, by compliance staff,
system or programme administrators. While one stands the purge skips what it covers
(``loyalty_purge_batch`` checks, in the delete itself)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compliance.models import LegalHold
from staffauth.models import StaffUser


class HoldRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def legal_hold_place(*, actor: StaffUser, hold: LegalHold) -> LegalHold:
    """Place ``hold`` (unsaved, scope and target and reason filled in) as ``actor``."""
    if not hold.reason.strip():
        raise HoldRefused("legal_hold_reason_required", "A legal hold needs a reason.")
    hold.placed_by = actor
    hold.full_clean(exclude=["placed_by"])
    hold.save()
    return hold


def legal_hold_release(*, actor: StaffUser, hold_id: int, reason: str) -> LegalHold:
    """Release a standing hold, with a reason; the purge may then take what it covered."""
    if not reason.strip():
        raise HoldRefused("legal_hold_reason_required", "Releasing a legal hold needs a reason.")
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold_id)
        if hold.released_at is not None:
            raise HoldRefused("legal_hold_already_released", "This legal hold was already released.")
        hold.released_at, hold.released_by, hold.release_reason = timezone.now(), actor, reason.strip()
        hold.save(update_fields=["released_at", "released_by", "release_reason"])
    return hold
