"""Manual point adjustments with maker-checker approval.

Every rule comes from one table, ``settings.ADJUSTMENT_POLICY`` (bands by the absolute
number of points; see the settings for how the spec's two passages are reconciled):
who may request, the evidence a request carries, the approvals it needs, whom it
notifies. The same functions decide for the server and for the admin's buttons
(``adjustment_allowed_steps``), and every decision re-checks the rules at the moment it
is made, under the request's row lock.

A request posts to the ledger exactly once, through ``loyalty.services.points_adjust_post``
keyed by the request, in the same transaction as its "posted" state and event; a
double click or a retry finds the request decided. The database refuses an approval
or review by the requester, and a second posting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import NoReturn

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from loyalty import notifications
from loyalty.adjustments import permissions
from loyalty.adjustments.models import AdjustmentEvent, AdjustmentReason, AdjustmentRequest
from loyalty.kernel.models import Store
from loyalty.kernel.refusals import Refusal
from loyalty.kernel.scoping import sees_all_stores
from loyalty.ledger.operations import Actor, points_adjust_post
from loyalty.ledger.selectors import member_balance
from members.models import Member

Band, State, Event = AdjustmentRequest.Band, AdjustmentRequest.State, AdjustmentEvent.Kind
APPROVE, REVIEW, REJECT = "approve", "review", "reject"
MIN_JUSTIFICATION = 20  # characters: "a detailed justification", not a word


class AdjustmentRefused(Refusal):
    """A request or decision the rules refuse: ``code`` is stable, the message is for staff."""

    family = "adjustments"


class AdjustmentPostingRefused(AdjustmentRefused):
    """The ledger refused the posting of an approved request (its code and message)."""

    family = "adjustment_posting"


def _refuse(code: str, message: str) -> NoReturn:
    raise AdjustmentRefused(code, message)


# --- The policy table ------------------------------------------------------------------------


def policy() -> dict:
    return settings.ADJUSTMENT_POLICY


def band_for(points: int) -> dict:
    """The policy row for an adjustment of ``points`` (credit or debit alike)."""
    size = abs(points)
    for band in policy()["bands"]:
        if band["up_to"] is None or size <= band["up_to"]:
            return band
    raise LookupError("ADJUSTMENT_POLICY has no open-ended last band")


def _band_row(request: AdjustmentRequest) -> dict:
    return next(b for b in policy()["bands"] if b["band"] == request.band)


# --- Requesting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    justification: str = ""
    verification_method: str = ""
    verified_by: str = ""
    verified_at: datetime | None = None
    verification_outcome: str = ""
    document: File | None = None  # an uploaded file


_SNIFF = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def document_type(upload) -> str | None:
    """The document's type by its first bytes (the name and the browser's claim are
    not trusted), or None when it is not an accepted type."""
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    kind = next((t for magic, t in _SNIFF.items() if head.startswith(magic)), None)
    return kind if kind in policy()["document_types"] else None


def _evidence_refusals(band: dict, evidence: Evidence) -> tuple[list[AdjustmentRefused], str]:
    """Every way ``evidence`` falls short of what ``band`` requires, or of an accepted
    document, and the document's type ("" without one, None when refused)."""
    refusals: list[AdjustmentRefused] = []

    def refuse(code: str, message: str) -> None:
        refusals.append(AdjustmentRefused(code, message))

    needs = set(band["evidence"])
    if "justification" in needs and len(evidence.justification.strip()) < MIN_JUSTIFICATION:
        refuse(
            "justification_required", f"A detailed justification (at least {MIN_JUSTIFICATION} characters) is required."
        )
    if needs & {"phone_verification", "identity_verification"}:
        accepted = (
            {AdjustmentRequest.Verification.PHONE}
            if "phone_verification" in needs
            else {AdjustmentRequest.Verification.PHONE, AdjustmentRequest.Verification.IDENTITY_DOCUMENT}
        )
        if evidence.verification_method not in accepted:
            what = "by a phone call" if accepted == {AdjustmentRequest.Verification.PHONE} else "(identity check)"
            refuse("verification_required", f"Record how the member was verified {what}.")
        if not (evidence.verified_by.strip() and evidence.verified_at and evidence.verification_outcome.strip()):
            refuse("verification_required", "Record who verified the member, when, and the outcome.")
        elif evidence.verified_at > timezone.now():
            refuse("verification_in_future", "The verification cannot be in the future.")
    kind: str | None
    kind, upload = "", evidence.document
    if "document" in needs and not upload:
        refuse("document_required", "A written justification document is required for this amount.")
    if upload:  # checked and kept whenever one is given, required or not
        if upload.size > policy()["document_max_bytes"]:
            limit = policy()["document_max_bytes"] // (1024 * 1024)
            refuse("document_too_large", f"The document is larger than {limit} MB.")
        kind = document_type(upload)
        if kind is None:
            refuse("document_type_refused", "The document must be a PDF, PNG or JPEG file.")
    return refusals, kind or ""


def adjustment_request_refusals(
    *,
    actor,
    member: Member | None,
    points: int | None,
    reason: AdjustmentReason | None,
    store: Store | None = None,
    evidence: Evidence = Evidence(),
) -> list[AdjustmentRefused]:
    """Every reason ``adjustment_request`` would refuse these inputs, in its order, so a
    form can report them all at once. An input given as None (the form could not read
    it) is not checked, nor the rules that depend on it. Empty when nothing is refused."""
    refusals: list[AdjustmentRefused] = []

    def refuse(code: str, message: str) -> None:
        refusals.append(AdjustmentRefused(code, message))

    band = None
    if points is not None:
        if not isinstance(points, int) or isinstance(points, bool) or points == 0:
            refuse("points_invalid", "An adjustment credits or debits a whole, non-zero number of points.")
        else:
            band = band_for(points)
            if not permissions.may_request(actor, band):
                refuse("not_allowed", "Your role may not raise manual adjustments.")
    if member is not None and permissions.own_account(actor, member.pk):
        refuse("own_account", "You may not adjust your own member account.")
    if reason is not None and not reason.active:
        refuse("reason_inactive", "That reason code is no longer in use.")
    # Store staff raise requests for one of their own stores.
    own_store = store is not None and actor.stores.filter(pk=store.pk).exists()
    if not sees_all_stores(actor) and not own_store:
        refuse("store_required", "Choose one of your stores for the request.")
    if band is not None:
        refusals += _evidence_refusals(band, evidence)[0]
    if member is not None and points is not None and band is not None and points < 0:
        available = member_available(member)
        if -points > available:
            refuse("insufficient_points", f"The member has {available:,} points; a debit cannot exceed them.")
    return refusals


def adjustment_request(
    *,
    actor,
    member: Member,
    points: int,
    reason: AdjustmentReason,
    store: Store | None = None,
    evidence: Evidence = Evidence(),
    comment: str = "",
) -> AdjustmentRequest:
    """Raise an adjustment. Below the direct threshold it posts at once; otherwise it
    waits for its approvals. Raises AdjustmentRefused (the first of
    ``adjustment_request_refusals``)."""
    refusals = adjustment_request_refusals(
        actor=actor, member=member, points=points, reason=reason, store=store, evidence=evidence
    )
    if refusals:
        raise refusals[0]
    band = band_for(points)
    document_kind = _evidence_refusals(band, evidence)[1]

    with transaction.atomic():
        request = AdjustmentRequest.objects.create(
            member=member,
            store=store,
            points=points,
            band=band["band"],
            reason=reason,
            justification=evidence.justification.strip(),
            verification_method=evidence.verification_method,
            verified_by=evidence.verified_by.strip(),
            verified_at=evidence.verified_at,
            verification_outcome=evidence.verification_outcome.strip(),
            document=evidence.document if document_kind else "",
            document_type=document_kind,
            requested_by=actor,
            expires_at=timezone.now() + timedelta(hours=policy()["request_ttl_hours"]),
        )
        _event(request, Event.REQUESTED, actor, comment)
        if not band["approvals"]:
            _post(request, actor)
        elif band["notify_hq"]:
            _tell_headquarters(request, "requested")
    return request


def member_available(member: Member) -> int:
    balance = member_balance(member)
    return balance.available if balance else 0


# --- Deciding --------------------------------------------------------------------------------


def _steps_needed(request: AdjustmentRequest) -> list[str]:
    """The approvals still missing, in the policy's order."""
    done = {
        "supervisor": request.approved_by_id is not None,
        "program_admin": request.approved_by_id is not None,
        "fraud_review": request.reviewed_by_id is not None,
    }
    return [step for step in _band_row(request)["approvals"] if not done[step]]


def adjustment_allowed_steps(user, request: AdjustmentRequest, *, now: datetime | None = None) -> set[str]:
    """What ``user`` may do with ``request`` right now: approve, review, reject.
    Nobody acts on their own request or on a request for their own member account."""
    now = now or timezone.now()
    if request.state != State.PENDING or request.expires_at <= now:
        return set()
    if request.requested_by_id == user.pk or permissions.own_account(user, request.member_id):
        return set()
    allowed = set()
    for step in _steps_needed(request):
        if permissions.may_take(user, request, step):
            allowed.add(REVIEW if step == "fraud_review" else APPROVE)
    return allowed | ({REJECT} if allowed else set())


def adjustments_awaiting(user) -> QuerySet[AdjustmentRequest]:
    """Pending requests ``user`` may act on now (the approval queue, the index count)."""
    now = timezone.now()
    pending = (
        AdjustmentRequest.objects.filter(state=State.PENDING, expires_at__gt=now)
        .exclude(requested_by=user)
        .select_related("member", "store", "requested_by", "reason")
    )
    if user.member_account_id:
        pending = pending.exclude(member_id=user.member_account_id)
    return pending.filter(permissions.steps_open_to(user))


def adjustment_approve(*, actor, request_id: int, comment: str = "") -> AdjustmentRequest:
    """Approve (supervisor or programme administrator); posts when nothing else is missing."""
    return _decide(actor, request_id, APPROVE, comment)


def adjustment_review(*, actor, request_id: int, comment: str = "") -> AdjustmentRequest:
    """The fraud team's review of a large adjustment; posts when nothing else is missing."""
    return _decide(actor, request_id, REVIEW, comment)


def adjustment_reject(*, actor, request_id: int, reason: str) -> AdjustmentRequest:
    """Reject with a reason (anyone who could approve or review it now)."""
    if not reason.strip():
        _refuse("rejection_reason_required", "Say why the request is rejected.")
    return _decide(actor, request_id, REJECT, reason.strip())


def _decide(actor, request_id: int, action: str, comment: str) -> AdjustmentRequest:
    expired = False
    with transaction.atomic():
        request = (
            AdjustmentRequest.objects.select_for_update(of=("self",))
            .select_related("member", "reason", "store")
            .filter(pk=request_id)
            .first()
        )
        if request is None:
            _refuse("not_found", "No such adjustment request.")
        now = timezone.now()
        if request.state == State.PENDING and request.expires_at <= now:
            _expire(request, job="decision")
            expired = True
        elif request.state != State.PENDING:
            _refuse("not_pending", f"The request is already {request.get_state_display().lower()}.")
        else:
            if request.requested_by_id == actor.pk:
                _refuse("own_request", "Nobody approves, reviews or rejects their own request.")
            if permissions.own_account(actor, request.member_id):
                _refuse("own_account", "You may not decide on a request for your own member account.")
            allowed = adjustment_allowed_steps(actor, request, now=now)
            if action not in allowed:
                _refuse("not_allowed", f"You may not {action} this request.")
            if action == REJECT:
                request.state = State.REJECTED
                request.save(update_fields=["state"])
                _event(request, Event.REJECTED, actor, comment)
            else:
                # The first missing step of this kind the actor may take (allowed above).
                mine = [s for s in _steps_needed(request) if permissions.may_take(actor, request, s)]
                step = next(s for s in mine if (s == "fraud_review") == (action == REVIEW))
                if step == "fraud_review":
                    request.reviewed_by, request.reviewed_at = actor, now
                    request.save(update_fields=["reviewed_by", "reviewed_at"])
                    _event(request, Event.REVIEWED, actor, comment)
                else:
                    request.approved_by, request.approved_at = actor, now
                    request.save(update_fields=["approved_by", "approved_at"])
                    _event(request, Event.APPROVED, actor, comment)
                if not _steps_needed(request):
                    _post(request, actor)
    if expired:
        _refuse("expired", "The request expired before it was decided.")
    return request


def _post(request: AdjustmentRequest, actor) -> None:
    """Post through the ledger, once per request (the ledger's key is the request)."""
    outcome = points_adjust_post(
        member=request.member,
        points=request.points,
        reason=f"{request.reason.code}: adjustment request #{request.pk}",
        adjustment_ref=f"adjustment-request:{request.pk}",
        actor=Actor(staff=actor, store=request.store),
    )
    if not outcome.ok:
        # Raised inside the decision's transaction: the approval rolls back with it.
        detail = outcome.body.get("error", {})
        raise AdjustmentPostingRefused(
            detail.get("code", "ledger_refused"), detail.get("message", "The ledger refused the posting.")
        )
    request.state, request.operation_id = State.POSTED, outcome.body["operation_id"]
    request.save(update_fields=["state", "operation"])
    _event(request, Event.POSTED, actor, f"Ledger operation {request.operation_id}")
    band = _band_row(request)
    verb = "credited to" if request.points > 0 else "debited from"
    notifications.notify_member(
        member=request.member,
        channel="email" if band["notify_member"] == "email" else "preferred",
        subject="Your points balance was adjusted",
        body=f"{abs(request.points):,} points were {verb} your account ({request.reason.label}).",
        topic="adjustment",
    )
    if band["notify_hq"]:
        _tell_headquarters(request, "posted")
    if request.band == AdjustmentRequest.Band.DIRECT and request.points > 0:
        # The salami patterns of the requester (FRAUD.md row 9), after commit.
        from fraud.tasks import adjust_salami_posted_task

        transaction.on_commit(partial(adjust_salami_posted_task.delay, request.requested_by_id))


# --- Expiry ----------------------------------------------------------------------------------


def adjustments_expire(*, now: datetime | None = None) -> int:
    """Expire pending requests past their time. One short transaction each; idempotent."""
    now = now or timezone.now()
    expired = 0
    for pk in AdjustmentRequest.objects.filter(state=State.PENDING, expires_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            request = AdjustmentRequest.objects.select_for_update().filter(pk=pk, state=State.PENDING).first()
            if request is not None and request.expires_at <= now:
                _expire(request, job="adjustments_expire")
                expired += 1
    return expired


def _expire(request: AdjustmentRequest, *, job: str) -> None:
    request.state = State.EXPIRED
    request.save(update_fields=["state"])
    AdjustmentEvent.objects.create(request=request, kind=Event.EXPIRED, actor_job=job, comment="Not decided in time.")


# --- Helpers ---------------------------------------------------------------------------------


def _event(request: AdjustmentRequest, kind: str, actor, comment: str = "") -> None:
    AdjustmentEvent.objects.create(request=request, kind=kind, actor=actor, comment=comment)


def _tell_headquarters(request: AdjustmentRequest, what: str) -> None:
    notifications.notify_address(
        to=policy()["hq_email"],
        subject=f"Adjustment #{request.pk} {what}: {request.points:+,} points",
        body=_summary(request),
        topic="adjustment",
    )


def _summary(request: AdjustmentRequest) -> str:
    """For headquarters: the facts, with the member by loyalty number only (no PII)."""
    store = request.store.code if request.store is not None else "headquarters"
    return (
        f"Request #{request.pk}: {request.points:+,} points for member {request.member.loyalty_number}, "
        f"raised by {request.requested_by.get_username()} ({store}), reason {request.reason.code}. "
        f"State: {request.get_state_display()}."
    )
