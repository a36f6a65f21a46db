"""The till's redemption controls before the ledger is asked (``till_points``' steps 1,
2 and 4 to 6): its refusal, the manager's typed override, and the checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from loyalty.kernel.models import Till
from loyalty.kernel.refusals import Refusal
from members.models import Member
from members.services.otp import OtpRefused
from vouchers.models import StaffShift
from vouchers.services import shifts
from vouchers.services.limits import StoreDailyLimitReached, store_daily_limit_check


class TillPointsRefused(Refusal):
    """A refusal of the till's redemption controls: stable ``code``, optional facts in
    ``detail`` (ids, limits, reasons; never a credential or personal data) and
    ``retry_after`` (seconds) where waiting helps. Family ``till``: a wrong one-time code
    the member reads to the cashier is the till's unprocessable request, not a failed
    sign-in (the status table's "till:otp_*" rows)."""

    message = "The redemption was refused."
    family = "till"

    MESSAGES = {
        "no_shift": "Clock in first: send the shift token in X-Staff-Shift (an open shift of this till).",
        "member_not_active": "The member's account is not active.",
        "self_redemption_refused": "Staff may not redeem to their own member account during their shift.",
        "member_staff_on_shift": "This member is a member of staff on shift; they may not redeem now.",
        "limit_exceeded": "This redemption is above your limit: a manager override is required.",
        "below_minimum_redemption": "This is below the smallest redemption allowed at the till (see detail.minimum).",
        "above_maximum_redemption": "This is above the largest redemption allowed at the till (see detail.maximum).",
        "store_daily_limit_reached": "This store has reached its daily redemption limit.",
        "override_invalid": "The manager override was refused (see detail.reason).",
        "override_locked_out": "Too many failed attempts for this manager; try again later.",
        "hold_not_found": "No such redemption hold.",
        "not_found": "Not found.",
        "hold_not_open": "The redemption hold was already captured, voided or has lapsed.",
        "member_authorisation_required": (
            "The member has not authorised this redemption yet: enter the code they received by SMS, "
            "or ask them to confirm it in the app."
        ),
        "no_phone_on_file": "There is no phone number on this account to send a code to; use the app.",
        "redeem_not_allowed": "This session (web, remember me) may not redeem. Sign in again without remember me.",
        "step_up_required": "Verify an SMS code for this redemption first (step-up), then retry within five minutes.",
    }

    @classmethod
    def from_otp(cls, refusal: OtpRefused) -> TillPointsRefused:
        return cls(refusal.code, str(refusal), retry_after=refusal.retry_after)


@dataclass(frozen=True)
class OverrideCredentials:
    """A manager's credentials typed at the till (never stored, logged or hashed into a key)."""

    username: str
    password: str
    otp: str

    @classmethod
    def of(cls, value) -> OverrideCredentials | None:
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls(username=value.get("username", ""), password=value.get("password", ""), otp=value.get("otp", ""))
        raise TypeError("override: OverrideCredentials or a mapping of username, password and otp")


# --- checks --------------------------------------------------------------------------------------


STAFF_CONFLICT_CODES = {"own_account": "self_redemption_refused", "member_on_shift": "member_staff_on_shift"}


def shift_check(*, till: Till, shift: StaffShift | None, now: datetime) -> StaffShift:
    if shift is None or not shifts.shift_current_at(shift, till, now) or not shifts.shift_still_open(shift):
        raise TillPointsRefused("no_shift")
    return shift


def staff_check(*, shift: StaffShift, member: Member, now: datetime) -> None:
    if conflict := shifts.staff_member_conflict(shift, member, now=now):
        raise TillPointsRefused(STAFF_CONFLICT_CODES[conflict])


def limit_check(*, till: Till, shift: StaffShift, points: int, override, request, now: datetime):
    """The staff user approving beyond the cashier's limit, or None when within it."""
    limit = shifts.staff_redeem_limit(shift.staff)
    if shifts.within_limit(points, limit):
        return None
    credentials = OverrideCredentials.of(override)
    if credentials is None:
        raise TillPointsRefused("limit_exceeded", points=points, limit=limit, override_required=True)
    try:
        granted = shifts.override_verify(
            store=till.store,
            username=credentials.username,
            password=credentials.password,
            otp_token=credentials.otp,
            points=points,
            shift=shift,
            request=request,
            now=now,
        )
    except shifts.ShiftRefused as refusal:
        if refusal.code == "override_locked_out":
            raise TillPointsRefused("override_locked_out") from None
        raise TillPointsRefused("override_invalid", reason=refusal.code) from None
    return granted.staff


def points_limits_check(points: int) -> None:
    minimum = int(settings.VOUCHERS.get("redeem_min_points", 1))
    maximum = settings.VOUCHERS.get("redeem_max_points")
    if points < minimum:
        raise TillPointsRefused("below_minimum_redemption", points=points, minimum=minimum)
    if maximum is not None and points > int(maximum):
        raise TillPointsRefused("above_maximum_redemption", points=points, maximum=int(maximum))


def store_cap_check(*, store_id: int, points: int, now: datetime, lock: bool = False) -> None:
    try:
        store_daily_limit_check(store_id=store_id, points=points, now=now, lock=lock)
    except StoreDailyLimitReached as reached:
        raise TillPointsRefused("store_daily_limit_reached", **reached.detail) from None
