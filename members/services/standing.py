"""A member's standing as the fraud team's restrictions leave it, and what a restricted
member is told (FRAUD.md §3 "Proving identity"): the kind of restriction, the case
reference if any and what to do, never the reason.

Read by the ledger (a spend refused under a freeze), the session service (a locked or
suspended member signing in) and the member API. Writes are
``members.services.restrictions``'.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    "sms_code": (
        "Before your next redemption or contact change, confirm it is you with a code sent by SMS "
        "to the phone number on your account (POST /api/v1/me/step-up for 'redeem', then verify it)."
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
    restriction (``suspended``, ``locked``, ``spending_frozen``, ``step_up_required``),
    the case reference if any, and what to do; never the reason. Two queries at most
    (the live restrictions; for a step-up, the phone's history)."""
    now = now or timezone.now()
    live = [
        row
        for row in MemberRestriction.objects.filter(member=member, lifted_at__isnull=True).exclude(
            kind=Kind.DEVICE_BLOCK
        )
        if row.ends_at is None or row.ends_at > now
    ]
    order: dict[str, int] = {Kind.SUSPEND: 0, Kind.LOCK: 1, Kind.SPEND_FREEZE: 2, Kind.STEP_UP: 3}
    live.sort(key=lambda row: (order.get(row.kind, 9), -row.starts_at.timestamp()))
    frozen = member.spend_frozen_until is not None and member.spend_frozen_until > now
    step_up = next((row for row in live if row.kind == Kind.STEP_UP), None)
    if member.status == Member.Status.SUSPENDED:
        restriction = "suspended"
    elif member.status == Member.Status.LOCKED:
        restriction = "locked"
    elif step_up is not None and not frozen:
        restriction = "step_up_required"
    else:
        restriction = "spending_frozen"
    detail: dict[str, Any] = {"restriction": restriction}
    if case_ref := next((row.case_ref for row in live if row.case_ref), ""):
        detail["case_reference"] = case_ref
    if restriction == "spending_frozen" and otp_lift_allowed(member, now=now):
        detail["next_step"] = "sms_code_or_in_store_id"
    elif restriction == "step_up_required" and step_up is not None and _phone_settled(member, step_up.starts_at):
        detail["next_step"] = "sms_code"
    else:
        detail["next_step"] = "in_store_id"
    detail["next_step_message"] = NEXT_STEPS[detail["next_step"]]
    return detail


def account_restricted(member: Member, *, now: datetime | None = None) -> AccountRestricted:
    """The refusal a restricted member gets, with ``restriction_notice``'s detail."""
    return AccountRestricted(**restriction_notice(member, now=now))


# --- proving identity by SMS code (low risk) ----------------------------------------------


def _phone_settled(member: Member, started_at: datetime) -> bool:
    """Does an SMS code prove who the member is for a restriction that began at
    ``started_at``? Only to a number on file that was already theirs
    ``otp_lift_phone_age_days`` before it (no phone change since then: a taken-over
    account's new number proves nothing; a member enrolled since then has had no number
    that long)."""
    if member.status != Member.Status.ACTIVE or not member.phone_index:
        return False
    since = started_at - timedelta(days=settings.FRAUD_ENFORCEMENT["otp_lift_phone_age_days"])
    if member.created_at > since:
        return False
    phone_changed = MemberSecurityEvent.objects.filter(
        member=member, kind="contact_changed", detail__fields__contains=["phone"], created_at__gt=since
    ).exists()
    return not phone_changed


def otp_lift_allowed(member: Member, *, now: datetime | None = None) -> bool:
    """May the member lift their spending freeze with an SMS code (FRAUD.md §3 "Proving
    identity", low risk)? Only an unconfirmed freeze an analyst made (an automatic one is
    the fraud score's ``block_and_review``: a score of 80 or more, and an SMS code lifts
    a freeze only below 60), not while locked or suspended, not with a balance or tier
    that needs an in-store check, and only to a phone number that was already theirs
    ``otp_lift_phone_age_days`` before the freeze began (``_phone_settled``)."""
    now = now or timezone.now()
    if member.status != Member.Status.ACTIVE or not member.phone_index:
        return False
    live = MemberRestriction.objects.filter(member=member, kind=Kind.SPEND_FREEZE, lifted_at__isnull=True).first()
    if live is None or live.confirmed or (live.ends_at is not None and live.ends_at <= now):
        return False
    if live.created_by_id is None:
        return False
    if member.tier >= settings.MEMBER_AUTH["mfa_tier"]:
        return False
    return _phone_settled(member, live.starts_at)


# --- the fraud score's step-up (FRAUD.md §2 "step_up") --------------------------------------


@dataclass(frozen=True)
class StepUpDemand:
    """A live step-up requirement: the restriction row and whether an SMS step-up lifts
    it (``by_sms``: the member's number is settled, ``_phone_settled``), else only an
    identity document in store (an analyst then lifts it)."""

    restriction: MemberRestriction
    by_sms: bool


def step_up_demand(member: Member) -> StepUpDemand | None:
    """The member's live step-up requirement, or None (one indexed query; a second, the
    phone's history, only when there is one). Redemptions (a voucher bought with points,
    points redeemed at a till) and contact changes check it and answer
    ``step_up_required`` (``by_sms``) or ``account_restricted`` (identity in store)."""
    row = MemberRestriction.objects.filter(member=member, kind=Kind.STEP_UP, lifted_at__isnull=True).first()
    if row is None:
        return None
    return StepUpDemand(row, _phone_settled(member, row.starts_at))
