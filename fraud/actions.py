"""What an analyst does from a case (FRAUD.md §3 "Actions"): each a service that checks
who may do it, is idempotent, and records a ``CaseEvent`` on the case.

The analyst *recommends* and *cannot modify balances*:

- member: freeze spending, lock and revoke every session, block a device (the members
  services of issue 14), recommend a suspension (a Program Administrator confirms it);
- voucher: report it (the analyst: it stops validating), revoke it (a Program
  Administrator, ``vouchers.revoke_voucher``);
- reversal: the analyst drafts it (points, reason); a Program Administrator raises the
  ``AdjustmentRequest`` (reason ``FRAUD_REVERSAL``) from the case page;
- staff: ask a system administrator to deactivate the account (an outbox message to
  the system administrators' address and a case event);
- evidence: a private file, type-checked by its first bytes.

Each action locks the case row (``SELECT … FOR UPDATE``) before it looks for an earlier
event of the same kind about the same target: a repeat (or a concurrent double click)
changes nothing and records nothing. Closed cases take no action (``already_closed``).
Refusals are ``CaseRefused`` with stable codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fraud.cases import CaseRefused, case_event_record, case_mark_contained
from fraud.models import CaseEvent, CaseFile, FraudCase
from fraud.permissions import may_view_cases, may_work_cases
from members.services import restrictions

REASON_MAX = 500
NOTE_MAX = 2000
FILE_DESCRIPTION_MAX = 200


class CaseActionRefused(CaseRefused):
    MESSAGES = {
        **CaseRefused.MESSAGES,
        "no_member": "This case is not about a member.",
        "no_staff": "This case is not about a staff member.",
        "not_the_subjects": "That record does not belong to the case's subject.",
        "unavailable": "This action is not available yet.",
        "points_invalid": "A reversal removes points: give a whole number of points above zero.",
        "file_required": "Choose a file.",
        "file_type": "Only PDF, PNG or JPEG files are accepted (checked by their content).",
        "file_too_large": "The file is too large.",
        "text_too_long": "The text is too long.",
    }


@dataclass(frozen=True)
class ActionDone:
    case: FraudCase
    done: bool  # False: an earlier identical action stands; nothing was recorded


def _reason(reason: str, limit: int = REASON_MAX) -> str:
    text = (reason or "").strip()
    if not text:
        raise CaseActionRefused("reason_required")
    if len(text) > limit:
        raise CaseActionRefused("text_too_long")
    return text


def _act(
    *,
    case_id: int,
    actor: Any,
    may: Callable[[Any], bool],
    kind: str,
    target: str,
    reason: str,
    do: Callable[[FraudCase], None] | None = None,
    contained: bool = False,
    now: datetime | None,
) -> ActionDone:
    """The shape of every action: authorise, lock the case, skip a repeat, act, record."""
    if not may(actor):
        raise CaseActionRefused("permission_denied")
    now = now or timezone.now()
    with transaction.atomic():
        case = FraudCase.objects.select_for_update().filter(pk=case_id).first()
        if case is None:
            raise CaseActionRefused("not_found")
        if case.status == FraudCase.Status.CLOSED:
            raise CaseActionRefused("already_closed")
        if CaseEvent.objects.filter(case=case, kind=kind, new_value=target[:64]).exists():
            return ActionDone(case, False)
        if do is not None:
            do(case)
        case_event_record(case.pk, kind, now, actor=actor, new=target, note=reason)
    if contained and may_work_cases(actor):
        case = case_mark_contained(case_id=case.pk, actor=actor, now=now)
    return ActionDone(FraudCase.objects.get(pk=case.pk), True)


def _member_id(case: FraudCase) -> int:
    if case.member_id is None:
        raise CaseActionRefused("no_member")
    return case.member_id


def _restrict(name: str, **kwargs: Any) -> None:
    """Call a restriction service; its refusal becomes the case action's, code kept."""
    try:
        getattr(restrictions, name)(**kwargs)
    except restrictions.RestrictionRefused as refusal:
        raise CaseActionRefused(refusal.code, str(refusal)) from None


def _member(case: FraudCase) -> Any:
    from members.models import Member

    return Member.objects.get(pk=_member_id(case))


# --- member ----------------------------------------------------------------------------------


def case_member_spend_freeze(*, case_id: int, actor: Any, reason: str, now: datetime | None = None) -> ActionDone:
    """Freeze the member's spending (earning goes on; an analyst's freeze lapses unless a
    Program Administrator confirms it); contains the case."""
    text = _reason(reason)

    def do(case: FraudCase) -> None:
        _restrict(
            "member_spend_freeze", member=_member(case), actor=actor, reason=text, case_ref=case.reference, now=now
        )

    return _act(
        case_id=case_id, actor=actor, may=may_work_cases, kind="spend_frozen", target="member",
        reason=text, do=do, contained=True, now=now,
    )  # fmt: skip


def case_member_lock(*, case_id: int, actor: Any, reason: str, now: datetime | None = None) -> ActionDone:
    """Lock the member's account and revoke every session; contains the case."""
    text = _reason(reason)

    def do(case: FraudCase) -> None:
        _restrict(
            "member_lock_and_revoke", member=_member(case), actor=actor, reason=text, case_ref=case.reference, now=now
        )

    return _act(
        case_id=case_id, actor=actor, may=may_work_cases, kind="member_locked", target="member",
        reason=text, do=do, contained=True, now=now,
    )  # fmt: skip


def case_device_block(
    *, case_id: int, device_id: int, actor: Any, reason: str, now: datetime | None = None
) -> ActionDone:
    """Block one of the member's devices (``device_id``: a device of the case's member)."""
    text = _reason(reason)

    def do(case: FraudCase) -> None:
        from members.models import MemberDevice

        device = MemberDevice.objects.filter(pk=device_id, member_id=_member_id(case)).first()
        if device is None:
            raise CaseActionRefused("not_the_subjects")
        _restrict("member_device_block", device=device, actor=actor, reason=text, case_ref=case.reference, now=now)

    return _act(
        case_id=case_id, actor=actor, may=may_work_cases, kind="device_blocked", target=f"device:{device_id}",
        reason=text, do=do, contained=True, now=now,
    )  # fmt: skip


def case_suspension_recommend(*, case_id: int, actor: Any, reason: str, now: datetime | None = None) -> ActionDone:
    """Recommend that a Program Administrator suspend the member."""
    text = _reason(reason)

    def do(case: FraudCase) -> None:
        _member_id(case)

    return _act(
        case_id=case_id, actor=actor, may=may_work_cases, kind="suspension_recommended", target="member",
        reason=text, do=do, now=now,
    )  # fmt: skip


def may_suspend_from_case(user: Any) -> bool:
    return may_view_cases(user) and bool(user.has_perm("members.suspend_member"))


def case_member_suspend(*, case_id: int, actor: Any, reason: str, now: datetime | None = None) -> ActionDone:
    """A Program Administrator confirms the recommended suspension (``members.suspend_member``)."""
    text = _reason(reason)

    def do(case: FraudCase) -> None:
        _restrict("member_suspend", member=_member(case), actor=actor, reason=text, case_ref=case.reference, now=now)

    return _act(
        case_id=case_id, actor=actor, may=may_suspend_from_case, kind="member_suspended", target="member",
        reason=text, do=do, now=now,
    )  # fmt: skip


# --- vouchers --------------------------------------------------------------------------------


def _subjects_voucher(case: FraudCase, voucher_id: str) -> None:
    from vouchers.models import Voucher

    if case.member_id is None or not Voucher.objects.filter(pk=voucher_id, member_id=case.member_id).exists():
        raise CaseActionRefused("not_the_subjects")


def case_voucher_report(
    *, case_id: int, voucher_id: str, actor: Any, reason: str, now: datetime | None = None
) -> ActionDone:
    """Report the member's voucher (the analyst): it stops validating at once."""
    from vouchers.services.issuing import VoucherRefused, voucher_report_suspected

    text = _reason(reason)

    def do(case: FraudCase) -> None:
        _subjects_voucher(case, voucher_id)
        try:
            voucher_report_suspected(staff=actor, voucher_id=voucher_id, reason=f"{case.reference}: {text}", now=now)
        except VoucherRefused as refusal:
            raise CaseActionRefused(refusal.code, str(refusal)) from None

    return _act(
        case_id=case_id, actor=actor, may=may_work_cases, kind="voucher_reported", target=f"voucher:{voucher_id}",
        reason=text, do=do, now=now,
    )  # fmt: skip


def may_revoke_from_case(user: Any) -> bool:
    return may_view_cases(user) and bool(user.has_perm("vouchers.revoke_voucher"))


def case_voucher_revoke(
    *, case_id: int, voucher_id: str, actor: Any, reason: str, now: datetime | None = None
) -> ActionDone:
    """Revoke the member's voucher (a Program Administrator: ``vouchers.revoke_voucher``)."""
    from vouchers.services.issuing import VoucherRefused, voucher_revoke

    text = _reason(reason)

    def do(case: FraudCase) -> None:
        _subjects_voucher(case, voucher_id)
        try:
            voucher_revoke(staff=actor, voucher_id=voucher_id, reason=f"{case.reference}: {text}"[:200], now=now)
        except VoucherRefused as refusal:
            raise CaseActionRefused(refusal.code, str(refusal)) from None

    return _act(
        case_id=case_id, actor=actor, may=may_revoke_from_case, kind="voucher_revoked",
        target=f"voucher:{voucher_id}", reason=text, do=do, now=now,
    )  # fmt: skip


# --- reversal --------------------------------------------------------------------------------


def case_reversal_draft(
    *, case_id: int, points: int, actor: Any, reason: str, now: datetime | None = None
) -> ActionDone:
    """The analyst drafts a reversal of ``points`` (removed from the member): a Program
    Administrator raises it as an adjustment request. Moves no points. The same amount
    drafted twice is one draft."""
    text = _reason(reason)
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise CaseActionRefused("points_invalid")

    def do(case: FraudCase) -> None:
        _member_id(case)

    return _act(
        case_id=case_id, actor=actor, may=may_work_cases, kind="reversal_drafted", target=str(points),
        reason=text, do=do, now=now,
    )  # fmt: skip


def case_reversal_draft_latest(case: FraudCase) -> CaseEvent | None:
    return case.events.filter(kind="reversal_drafted").order_by("-at", "-id").first()


# --- staff -----------------------------------------------------------------------------------


def case_staff_deactivation_request(
    *, case_id: int, actor: Any, reason: str, now: datetime | None = None
) -> ActionDone:
    """Ask a system administrator to deactivate the staff account the case is about: an
    outbox message to ``FRAUD_SYSADMIN_EMAIL`` (no personal data: the case reference and
    the staff account's id) and a case event."""
    from loyalty.notifications import notify_address

    text = _reason(reason)

    def do(case: FraudCase) -> None:
        if case.staff_id is None:
            raise CaseActionRefused("no_staff")
        notify_address(
            to=settings.FRAUD_SYSADMIN_EMAIL,
            subject=f"Deactivation requested: fraud case {case.reference}",
            body=(
                f"The fraud team asks that staff account #{case.staff_id} be deactivated "
                f"(fraud case {case.reference}). Open the case in the back-office for the reasons."
            ),
            topic="fraud_staff_deactivation",
        )

    return _act(
        case_id=case_id, actor=actor, may=may_work_cases, kind="staff_deactivation_asked", target="staff",
        reason=text, do=do, contained=False, now=now,
    )  # fmt: skip


# --- evidence --------------------------------------------------------------------------------


def case_file_add(
    *, case_id: int, upload: Any, actor: Any, description: str = "", now: datetime | None = None
) -> CaseFile:
    """Attach a private evidence file to a case (open or closed): PDF, PNG or JPEG by its
    first bytes, at most the adjustments' document size."""
    from loyalty.adjustments.services import document_type, policy

    if not may_work_cases(actor):
        raise CaseActionRefused("permission_denied")
    if not upload:
        raise CaseActionRefused("file_required")
    description = (description or "").strip()
    if len(description) > FILE_DESCRIPTION_MAX:
        raise CaseActionRefused("text_too_long")
    if upload.size > policy()["document_max_bytes"]:
        raise CaseActionRefused("file_too_large")
    kind = document_type(upload)
    if kind is None:
        raise CaseActionRefused("file_type")
    now = now or timezone.now()
    with transaction.atomic():
        case = FraudCase.objects.select_for_update().filter(pk=case_id).first()
        if case is None:
            raise CaseActionRefused("not_found")
        stored = CaseFile(
            case=case, content_type=kind, size=upload.size, description=description, uploaded_by=actor,
            uploaded_at=now,
        )  # fmt: skip
        stored.file.save(f"case-{case.pk}", upload, save=False)
        stored.save()
        case_event_record(case.pk, "file_added", now, actor=actor, new=f"file:{stored.pk}", note=description)
    return stored
