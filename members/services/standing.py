"""A member's standing as the fraud team's restrictions leave it, and what a restricted
member is told (FRAUD.md §3 "Proving identity"): the kind of restriction, the case
reference if any and what to do, never the reason.

Read by the ledger (a spend refused under a freeze), the session service (a locked or
suspended member signing in) and the member API. Writes are
``members.services.restrictions``'.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from loyalty.kernel.refusals import Refusal
from members.models import Member, MemberRestriction, MemberSecurityEvent

Kind = MemberRestriction.Kind
# A confirmed freeze runs until lifted: ``spend_frozen_until`` holds this far date (the
# ledger's check stays one comparison).
FREEZE_INDEFINITE = datetime(9999, 12, 31, tzinfo=UTC)
# The step-up action an SMS code lifting a freeze is requested for.
STEP_UP_ACTION = "restriction_lift"

# What the member is told to do, per restriction (FRAUD.md §3 "Proving identity"). No reasons.
NEXT_STEPS = {
    "in_store_id": (
        "Visit any of our stores with an identity document: a manager checks it and restores your account."
    ),
    "sms_code_or_in_store_id": (
        "Confirm it is you with a code sent by SMS to the phone number on your account "
        "(POST /api/v1/me/restriction/lift after a step-up code for 'restriction_lift'), "
        "or visit any of our stores with an identity document."
    ),
}


class AccountRestricted(Refusal):
    """A restricted member tried what their restriction forbids (the member API, a
    spend): ``account_restricted`` with the case reference and what to do, never why."""

    code = "account_restricted"
    message = "Your account is restricted. See detail for what to do."


# --- what the member is told ------------------------------------------------------------


def restriction_notice(member: Member, *, now: datetime | None = None) -> dict[str, Any]:
    """What a restricted member is told (``AccountRestricted``'s detail): the kind of
    restriction, the case reference if any, and what to do; never the reason. One
    query (the live restrictions)."""
    now = now or timezone.now()
    live = [
        row
        for row in MemberRestriction.objects.filter(member=member, lifted_at__isnull=True).exclude(
            kind=Kind.DEVICE_BLOCK
        )
        if row.ends_at is None or row.ends_at > now
    ]
    order: dict[str, int] = {Kind.SUSPEND: 0, Kind.LOCK: 1, Kind.SPEND_FREEZE: 2}
    live.sort(key=lambda row: (order.get(row.kind, 9), -row.starts_at.timestamp()))
    if member.status == Member.Status.SUSPENDED:
        restriction = "suspended"
    elif member.status == Member.Status.LOCKED:
        restriction = "locked"
    else:
        restriction = "spending_frozen"
    detail: dict[str, Any] = {"restriction": restriction}
    if case_ref := next((row.case_ref for row in live if row.case_ref), ""):
        detail["case_reference"] = case_ref
    if restriction == "spending_frozen" and otp_lift_allowed(member, now=now):
        detail["next_step"] = "sms_code_or_in_store_id"
    else:
        detail["next_step"] = "in_store_id"
    detail["next_step_message"] = NEXT_STEPS[detail["next_step"]]
    return detail


def account_restricted(member: Member, *, now: datetime | None = None) -> AccountRestricted:
    """The refusal a restricted member gets, with ``restriction_notice``'s detail."""
    return AccountRestricted(**restriction_notice(member, now=now))


# --- proving identity by SMS code (low risk) ----------------------------------------------


def otp_lift_allowed(member: Member, *, now: datetime | None = None) -> bool:
    """May the member lift their spending freeze with an SMS code (FRAUD.md §3 "Proving
    identity", low risk)? Only an unconfirmed freeze, not while locked or suspended, not
    with a balance or tier that needs an in-store check, and only to a phone number
    that was already theirs ``otp_lift_phone_age_days`` before the freeze began (no
    phone change since then: a taken-over account's new number proves nothing)."""
    now = now or timezone.now()
    if member.status != Member.Status.ACTIVE or not member.phone_index:
        return False
    live = MemberRestriction.objects.filter(member=member, kind=Kind.SPEND_FREEZE, lifted_at__isnull=True).first()
    if live is None or live.confirmed or (live.ends_at is not None and live.ends_at <= now):
        return False
    if member.tier >= settings.MEMBER_AUTH["mfa_tier"]:
        return False
    since = live.starts_at - timedelta(days=settings.FRAUD_ENFORCEMENT["otp_lift_phone_age_days"])
    if member.created_at > since:
        return False
    phone_changed = MemberSecurityEvent.objects.filter(
        member=member, kind="contact_changed", detail__fields__contains=["phone"], created_at__gt=since
    ).exists()
    return not phone_changed
