"""The fraud team's actions on a member (FRAUD.md §3 "Actions"): freeze spending while
earning continues, suspend, lock and revoke every session, block a device, restore,
require an SMS step-up before the next redemption or contact change (the fraud score's
``step_up`` outcome; passed by the member, see the section at the end).

Each service is keyword-only, checks who may act (``members.permissions``), takes the
member's row lock (so two actions on one member serialise, and the ledger, which reads
``status`` and ``spend_frozen_until`` in its own member lock, sees either the state
before the action or after it, never half), is idempotent (a second call finds the live
restriction and changes nothing) and is recorded: a ``MemberRestriction`` row (the
history; a lift sets its lift columns once) and a ``MemberSecurityEvent``. Reasons are
staff free text, checked like all free text (``loyalty.kernel.freetext``) and never
shown to the member; the member is told the case reference and what to do
(``restriction_notice``).

Who may act: fraud analysts freeze, lock, block devices and require or lift a step-up
(``members.restrict_member``);
a suspension, a restore from one, and confirming a freeze so that it does not lapse are
a Program Administrator's (``members.suspend_member``). An analyst's freeze lapses after
``FRAUD_ENFORCEMENT["freeze_unconfirmed_hours"]``: the ledger compares
``spend_frozen_until`` with now, so a lapse needs no job.

Automatic actions (the fraud pipeline's forced outcomes) pass ``actor=None`` with
``automatic=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from loyalty.kernel import freetext
from loyalty.kernel.refusals import Refusal
from members.models import Member, MemberDevice, MemberRestriction, MemberSecurityEvent, MemberSession, OtpChallenge
from members.permissions import may_restrict_members, may_suspend_members
from members.services.otp import OtpRefused, otp_step_up_consume, otp_verify
from members.services.sessions import sessions_end_all, sessions_end_among
from members.services.standing import (
    FREEZE_INDEFINITE,
    STEP_UP_ACTION,
    AccountRestricted,
    StepUpDemand,
    account_restricted,
    otp_lift_allowed,
    restriction_notice,
    step_up_demand,
)

if TYPE_CHECKING:
    from staffauth.models import StaffUser

Kind = MemberRestriction.Kind
REASON_MAX_LENGTH = 2000
CASE_REF_MAX_LENGTH = 40


class RestrictionRefused(Refusal):
    """A refused restriction action: ``permission_denied``, ``reason_required``,
    ``case_ref_invalid``, a free-text code, ``not_restricted``, ``lift_not_allowed``,
    ``step_up_required``."""

    MESSAGES = {
        "permission_denied": "You may not do this.",
        "reason_required": "Give a reason.",
        "case_ref_invalid": "The case reference is too long.",
        "not_restricted": "The member has no such restriction.",
        "lift_not_allowed": "This restriction cannot be lifted this way: the member proves who they are in store.",
        "step_up_required": "Verify a code sent by SMS for 'restriction_lift' first.",
        **freetext.MESSAGES,
    }


@dataclass(frozen=True)
class RestrictionResult:
    """What an action did: the live restriction row and whether this call created (or
    lifted) it; False on an idempotent repeat."""

    restriction: MemberRestriction | None
    changed: bool


# --- checks -------------------------------------------------------------------------------


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise RestrictionRefused("reason_required")
    if refusal := freetext.free_text_refusal(text):
        raise RestrictionRefused(refusal.code, field="reason")
    return text[:REASON_MAX_LENGTH]


def _case_ref(case_ref: str | None) -> str:
    text = (case_ref or "").strip()
    if len(text) > CASE_REF_MAX_LENGTH:
        raise RestrictionRefused("case_ref_invalid")
    if refusal := freetext.free_text_refusal(text):
        raise RestrictionRefused(refusal.code, field="case_ref")
    return text


def _authorise(actor: StaffUser | None, *, automatic: bool, suspend: bool = False) -> None:
    if actor is None:
        if not automatic:
            raise RestrictionRefused("permission_denied")
        return
    allowed = may_suspend_members(actor) if suspend else may_restrict_members(actor)
    if not allowed:
        raise RestrictionRefused("permission_denied")


def _locked(member: Member) -> Member:
    """The member's row, locked: actions on one member serialise, and the ledger's member
    lock (which joins this row, not locking it) sees the committed state."""
    return Member.objects.select_for_update().get(pk=member.pk)


def _live(member: Member, kind: str, *, device_id: int | None = None) -> MemberRestriction | None:
    rows = MemberRestriction.objects.filter(member=member, kind=kind, lifted_at__isnull=True)
    if device_id is not None:
        rows = rows.filter(device_id=device_id)
    return rows.first()


def _lift(row: MemberRestriction, *, actor: StaffUser | None, reason: str, now: datetime) -> bool:
    """Set the row's lift columns once (a conditional UPDATE: a concurrent lift changes nothing)."""
    changed = MemberRestriction.objects.filter(pk=row.pk, lifted_at__isnull=True).update(
        lifted_at=now, lifted_by=actor, lift_reason=reason[:200]
    )
    if changed:
        row.lifted_at, row.lifted_by, row.lift_reason = now, actor, reason[:200]
    return bool(changed)


def _event(member: Member, kind: str, **detail: Any) -> None:
    MemberSecurityEvent.objects.create(member=member, kind=kind, detail=detail)


def _new(
    member: Member,
    kind: str,
    *,
    actor: StaffUser | None,
    reason: str,
    case_ref: str,
    now: datetime,
    ends_at: datetime | None = None,
    confirmed: bool = False,
    device_id: int | None = None,
) -> MemberRestriction:
    return MemberRestriction.objects.create(
        member=member, kind=kind, device_id=device_id, reason=reason, case_ref=case_ref, created_by=actor,
        starts_at=now, ends_at=ends_at, confirmed=confirmed,
    )  # fmt: skip


def _by(actor: StaffUser | None) -> dict[str, Any]:
    return {"staff_id": actor.pk} if actor is not None else {"automatic": True}


# --- spending freeze ----------------------------------------------------------------------


@transaction.atomic
def member_spend_freeze(
    *,
    member: Member,
    actor: StaffUser | None,
    reason: str,
    case_ref: str | None = None,
    until: datetime | None = None,
    automatic: bool = False,
    now: datetime | None = None,
) -> RestrictionResult:
    """Freeze the member's spending (hold, redeem and capture refused with
    ``account_restricted``); earning continues.

    Lapses at ``until``, or after ``freeze_unconfirmed_hours`` when none is given,
    unless a Program Administrator confirms it (``member_spend_freeze_confirm``). A
    second freeze while one is live changes nothing (``changed`` False); a freeze that
    lapsed is closed (lift reason ``lapsed``) and a new one begins. Raises
    ``RestrictionRefused``.
    """
    _authorise(actor, automatic=automatic)
    reason, case_ref = _reason(reason), _case_ref(case_ref)
    now = now or timezone.now()
    member = _locked(member)
    live = _live(member, Kind.SPEND_FREEZE)
    if live is not None and (live.ends_at is None or live.ends_at > now):
        return RestrictionResult(live, False)
    if live is not None:
        _lift(live, actor=None, reason="lapsed", now=now)
    ends_at = until or now + timedelta(hours=settings.FRAUD_ENFORCEMENT["freeze_unconfirmed_hours"])
    row = _new(member, Kind.SPEND_FREEZE, actor=actor, reason=reason, case_ref=case_ref, now=now, ends_at=ends_at)
    Member.objects.filter(pk=member.pk).update(spend_frozen_until=ends_at)
    member.spend_frozen_until = ends_at
    _event(member, "spend_frozen", restriction_id=row.pk, ends_at=ends_at.isoformat(), **_by(actor))
    return RestrictionResult(row, True)


@transaction.atomic
def member_spend_freeze_confirm(
    *, member: Member, actor: StaffUser, reason: str, now: datetime | None = None
) -> RestrictionResult:
    """A Program Administrator confirms the live freeze: it runs until lifted. The
    freeze row's ``confirmed`` cannot change (history), so the confirmation is a new
    row that replaces it (the old one lifted, ``confirmed``). Idempotent. Raises
    ``RestrictionRefused`` (``not_restricted`` without a live freeze)."""
    _authorise(actor, automatic=False, suspend=True)
    reason = _reason(reason)
    now = now or timezone.now()
    member = _locked(member)
    live = _live(member, Kind.SPEND_FREEZE)
    if live is None or (live.ends_at is not None and live.ends_at <= now):
        raise RestrictionRefused("not_restricted")
    if live.confirmed:
        return RestrictionResult(live, False)
    _lift(live, actor=actor, reason="confirmed", now=now)
    row = _new(member, Kind.SPEND_FREEZE, actor=actor, reason=reason, case_ref=live.case_ref, now=now, confirmed=True)
    Member.objects.filter(pk=member.pk).update(spend_frozen_until=FREEZE_INDEFINITE)
    member.spend_frozen_until = FREEZE_INDEFINITE
    _event(member, "spend_freeze_confirmed", restriction_id=row.pk, staff_id=actor.pk)
    return RestrictionResult(row, True)


@transaction.atomic
def member_spend_unfreeze(
    *, member: Member, actor: StaffUser | None, reason: str, now: datetime | None = None, _by_member: bool = False
) -> RestrictionResult:
    """Lift the member's spending freeze. An analyst lifts an unconfirmed freeze; a
    confirmed one is a Program Administrator's. Idempotent: without a live freeze,
    ``changed`` is False."""
    now = now or timezone.now()
    member = _locked(member)
    live = _live(member, Kind.SPEND_FREEZE)
    if not _by_member:
        _authorise(actor, automatic=False, suspend=bool(live and live.confirmed))
    reason = _reason(reason)
    if live is None:
        if member.spend_frozen_until is not None:
            Member.objects.filter(pk=member.pk).update(spend_frozen_until=None)
            member.spend_frozen_until = None
        return RestrictionResult(None, False)
    _lift(live, actor=actor, reason=reason, now=now)
    Member.objects.filter(pk=member.pk).update(spend_frozen_until=None)
    member.spend_frozen_until = None
    _event(member, "spend_unfrozen", restriction_id=live.pk, **({"by_member": True} if _by_member else _by(actor)))
    return RestrictionResult(live, True)


@transaction.atomic
def member_spend_unfreeze_by_step_up(*, member: Member, now: datetime | None = None) -> RestrictionResult:
    """The member proves who they are with an SMS code (FRAUD.md §3 "Proving identity",
    low risk) and so lifts their own spending freeze: only where
    ``standing.otp_lift_allowed`` (an unconfirmed freeze, an old enough number, a low
    tier), spending a step-up verified for ``restriction_lift``. Raises
    ``RestrictionRefused`` (``not_restricted``, ``lift_not_allowed``,
    ``step_up_required``)."""
    now = now or timezone.now()
    member = _locked(member)
    live = _live(member, Kind.SPEND_FREEZE)
    if live is None or (live.ends_at is not None and live.ends_at <= now):
        raise RestrictionRefused("not_restricted")
    if not otp_lift_allowed(member, now=now):
        raise RestrictionRefused("lift_not_allowed")
    if not otp_step_up_consume(member=member, action=STEP_UP_ACTION, now=now):
        raise RestrictionRefused("step_up_required")
    return member_spend_unfreeze(
        member=member, actor=None, reason="identity proven by SMS code", now=now, _by_member=True
    )


# --- suspension, lock, restore ------------------------------------------------------------


def _status_restrict(
    member: Member, kind: str, status: str, *, actor: StaffUser | None, reason: str, case_ref: str, now: datetime
) -> tuple[Member, RestrictionResult]:
    member = _locked(member)
    live = _live(member, kind)
    if live is not None:
        return member, RestrictionResult(live, False)
    row = _new(member, kind, actor=actor, reason=reason, case_ref=case_ref, now=now)
    # LOCKED and SUSPENDED both stop earning and spending (the ledger's require_active);
    # a suspension outranks a lock.
    if not (status == Member.Status.LOCKED and member.status == Member.Status.SUSPENDED):
        Member.objects.filter(pk=member.pk).update(status=status)
        member.status = status
    return member, RestrictionResult(row, True)


@transaction.atomic
def member_suspend(
    *, member: Member, actor: StaffUser, reason: str, case_ref: str | None = None, now: datetime | None = None
) -> RestrictionResult:
    """Suspend the member (``SUSPENDED``: no earning, no spending, no sign-in), confirmed
    by a Program Administrator (an analyst recommends it in the case). Ends every
    session. Idempotent. Raises ``RestrictionRefused``."""
    _authorise(actor, automatic=False, suspend=True)
    reason, case_ref = _reason(reason), _case_ref(case_ref)
    now = now or timezone.now()
    member, result = _status_restrict(
        member, Kind.SUSPEND, Member.Status.SUSPENDED, actor=actor, reason=reason, case_ref=case_ref, now=now
    )
    if result.changed and result.restriction is not None:
        sessions_end_all(member=member, reason="member_suspended", now=now)
        _event(member, "member_suspended", restriction_id=result.restriction.pk, staff_id=actor.pk)
    return result


@transaction.atomic
def member_lock_and_revoke(
    *,
    member: Member,
    actor: StaffUser | None,
    reason: str,
    case_ref: str | None = None,
    automatic: bool = False,
    now: datetime | None = None,
) -> RestrictionResult:
    """Lock the account (``LOCKED``) and end all its sessions (refresh tokens revoked):
    an account taken over. Idempotent (a repeat still ends any session opened since,
    which a locked member cannot open). Raises ``RestrictionRefused``."""
    _authorise(actor, automatic=automatic)
    reason, case_ref = _reason(reason), _case_ref(case_ref)
    now = now or timezone.now()
    member, result = _status_restrict(
        member, Kind.LOCK, Member.Status.LOCKED, actor=actor, reason=reason, case_ref=case_ref, now=now
    )
    if result.changed and result.restriction is not None:
        ended = sessions_end_all(member=member, reason="member_locked", now=now)
        _event(member, "member_locked", restriction_id=result.restriction.pk, sessions_ended=ended, **_by(actor))
    return result


@transaction.atomic
def member_restore(*, member: Member, actor: StaffUser, reason: str, now: datetime | None = None) -> RestrictionResult:
    """Restore a suspended or locked member to ``ACTIVE`` after a review (identity proven
    in store): lifts the live suspension and lock. A suspension is a Program
    Administrator's to lift; a lock alone, an analyst's too. A closed member is never
    restored. Idempotent: an active member without either gives ``changed`` False.
    The spending freeze and blocked devices are lifted separately."""
    now = now or timezone.now()
    member = _locked(member)
    suspension, lock = _live(member, Kind.SUSPEND), _live(member, Kind.LOCK)
    _authorise(actor, automatic=False, suspend=suspension is not None or member.status == Member.Status.SUSPENDED)
    reason = _reason(reason)
    lifted = [row for row in (suspension, lock) if row is not None and _lift(row, actor=actor, reason=reason, now=now)]
    if member.status in (Member.Status.SUSPENDED, Member.Status.LOCKED):
        Member.objects.filter(pk=member.pk).update(status=Member.Status.ACTIVE)
        member.status = Member.Status.ACTIVE
    elif not lifted:
        return RestrictionResult(None, False)
    _event(member, "member_restored", restrictions=[row.pk for row in lifted], staff_id=actor.pk)
    return RestrictionResult(lifted[0] if lifted else None, True)


# --- devices --------------------------------------------------------------------------------


@transaction.atomic
def member_device_block(
    *,
    device: MemberDevice,
    actor: StaffUser | None,
    reason: str,
    case_ref: str | None = None,
    automatic: bool = False,
    now: datetime | None = None,
) -> RestrictionResult:
    """Block one of a member's devices (``MemberDevice.blocked_at``): it can no longer
    sign in or refresh, and its sessions end. Idempotent. Raises ``RestrictionRefused``."""
    _authorise(actor, automatic=automatic)
    reason, case_ref = _reason(reason), _case_ref(case_ref)
    now = now or timezone.now()
    member = _locked(device.member)
    device = MemberDevice.objects.select_for_update().get(pk=device.pk)
    live = _live(member, Kind.DEVICE_BLOCK, device_id=device.pk)
    if live is not None and device.blocked_at is not None:
        return RestrictionResult(live, False)
    if device.blocked_at is None:
        MemberDevice.objects.filter(pk=device.pk).update(blocked_at=now)
        device.blocked_at = now
    if live is None:
        live = _new(
            member, Kind.DEVICE_BLOCK, actor=actor, reason=reason, case_ref=case_ref, now=now, device_id=device.pk
        )
    ended = sessions_end_among(MemberSession.objects.filter(device=device), reason="device_blocked", now=now)
    _event(member, "device_blocked", device_id=device.pk, sessions_ended=len(ended), **_by(actor))
    return RestrictionResult(live, True)


# --- the fraud score's step-up (FRAUD.md §2 "step_up", §3 "Proving identity") ----------------
#
# ``member_step_up_require`` (the fraud pipeline, or an analyst) puts a ``step_up``
# restriction on the member: their next redemption (a voucher bought with points, points
# redeemed at a till) or contact change asks for an SMS step-up first (``step_up_check``:
# ``step_up_required``, or ``account_restricted`` when an SMS code cannot prove who they
# are). Verifying a step-up code after it began (``member_step_up_verify``, or the code a
# till's redemption texts them) passes it (``member_step_up_pass``); an analyst lifts it
# (``member_step_up_lift``). A step-up verified before it began does not pass it.


@transaction.atomic
def member_step_up_require(
    *,
    member: Member,
    actor: StaffUser | None,
    reason: str,
    case_ref: str | None = None,
    automatic: bool = False,
    now: datetime | None = None,
) -> RestrictionResult:
    """Require an SMS step-up before the member's next redemption or contact change.
    Idempotent: while one is live, ``changed`` is False. Analysts
    (``members.restrict_member``) or the fraud pipeline (``actor=None``,
    ``automatic=True``). Raises ``RestrictionRefused``."""
    _authorise(actor, automatic=automatic)
    reason, case_ref = _reason(reason), _case_ref(case_ref)
    now = now or timezone.now()
    member = _locked(member)
    live = _live(member, Kind.STEP_UP)
    if live is not None:
        return RestrictionResult(live, False)
    row = _new(member, Kind.STEP_UP, actor=actor, reason=reason, case_ref=case_ref, now=now)
    _event(member, "step_up_required", restriction_id=row.pk, **_by(actor))
    return RestrictionResult(row, True)


@transaction.atomic
def member_step_up_lift(
    *, member: Member, actor: StaffUser | None, reason: str, automatic: bool = False, now: datetime | None = None
) -> RestrictionResult:
    """Lift the member's step-up requirement (an analyst: identity proven otherwise; or
    the fraud pipeline lowering its outcome). Idempotent: without a live one, ``changed``
    is False. Raises ``RestrictionRefused``."""
    _authorise(actor, automatic=automatic)
    reason = _reason(reason)
    now = now or timezone.now()
    member = _locked(member)
    live = _live(member, Kind.STEP_UP)
    if live is None or not _lift(live, actor=actor, reason=reason, now=now):
        return RestrictionResult(live, False)
    _event(member, "step_up_lifted", restriction_id=live.pk, **_by(actor))
    return RestrictionResult(live, True)


def member_step_up_pass(*, member: Member, challenge: OtpChallenge, now: datetime | None = None) -> bool:
    """The member verified ``challenge`` (a step-up code, theirs): lift their live
    step-up requirement when the code proves who they are (``StepUpDemand.by_sms``) and
    was verified after the requirement began. Returns True when no requirement stands
    afterwards (none, or lifted now or by a concurrent pass). One conditional UPDATE: two
    passes at once lift it once and record one ``step_up_passed`` event."""
    now = now or timezone.now()
    demand = step_up_demand(member)
    if demand is None:
        return True
    verified_at = challenge.verified_at
    if (
        not demand.by_sms
        or challenge.member_id != member.pk
        or challenge.purpose != OtpChallenge.Purpose.STEP_UP
        or verified_at is None
        or verified_at < demand.restriction.starts_at
    ):
        return False
    if _lift(demand.restriction, actor=None, reason="step_up_passed", now=now):
        _event(
            member, "step_up_passed", restriction_id=demand.restriction.pk, challenge=str(challenge.pk),
            action=challenge.action,
        )  # fmt: skip
    return True


def member_step_up_verify(
    *, member: Member, challenge_id: object, phone: str, code: str, action: str, now: datetime | None = None
) -> OtpChallenge:
    """Verify the member's step-up code for ``action`` (``otp_verify``: single use, its
    guesses and the number's daily cap), then pass their step-up requirement if one
    stands (``member_step_up_pass``). Call outside a transaction (``otp_verify`` commits
    its counters before refusing). Raises ``OtpRefused`` (``otp_invalid`` too when the
    number changed hands meanwhile)."""
    challenge = otp_verify(challenge_id=challenge_id, phone=phone, code=code, purpose="step_up", action=action)
    if challenge.member_id != member.pk:  # the number changed hands meanwhile
        raise OtpRefused("otp_invalid")
    member_step_up_pass(member=member, challenge=challenge, now=now)
    return challenge


def step_up_refusal(member: Member, demand: StepUpDemand, refused: Refusal) -> Refusal:
    """What a gated action raises under ``demand``: ``refused`` (the caller's own
    ``step_up_required``, naming the action to verify) when an SMS step-up lifts it, else
    ``account_restricted`` with what to do (identity in store) and the case reference."""
    return refused if demand.by_sms else account_restricted(member)


def step_up_check(member: Member, refused: Refusal) -> None:
    """Raise ``step_up_refusal`` while the member's step-up requirement is live; nothing
    otherwise (one indexed query)."""
    demand = step_up_demand(member)
    if demand is not None:
        raise step_up_refusal(member, demand, refused)


__all__ = [
    "FREEZE_INDEFINITE",
    "AccountRestricted",
    "RestrictionRefused",
    "RestrictionResult",
    "account_restricted",
    "member_device_block",
    "member_lock_and_revoke",
    "member_restore",
    "member_spend_freeze",
    "member_spend_freeze_confirm",
    "member_spend_unfreeze",
    "member_step_up_lift",
    "member_step_up_pass",
    "member_step_up_require",
    "member_step_up_verify",
    "member_suspend",
    "restriction_notice",
    "step_up_check",
    "step_up_demand",
    "step_up_refusal",
]
