"""Consumer protection: terms and conditions, and complaints and disputes (spec,
"Retail/Consumer Protection": clear terms, a complaint handling process, member dispute
resolution). One function per operation; callers (member API, admin, tasks) stay thin.

Terms: a programme administrator drafts a version and publishes it (once; a published
version never changes, in the database too). The current version is the highest
published one whose ``effective_from`` has passed. A member who has not accepted it is
asked to at their next sign-in and the member API answers ``terms_acceptance_required``
(403) on the endpoints that change things until they do (``terms_acceptance_required``).

Complaints: filed by the member (API) or by staff on their behalf; deadlines in business
days (Monday to Friday, programme time zone) from settings.COMPLAINTS; every step is an
append-only event; responses reach the member through the outbox. A points dispute
resolved in the member's favour becomes an adjustment request (maker-checker), never a
ledger write.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from compliance.models import Complaint, ComplaintEvent, TermsAcceptance, TermsVersion
from loyalty import notifications
from loyalty.adjustments.models import AdjustmentReason
from loyalty.adjustments.services import Evidence, adjustment_request
from loyalty.kernel.freetext import MESSAGES, free_text_refusal
from loyalty.kernel.models import Store
from loyalty.kernel.refusals import Refusal
from loyalty.kernel.scoping import scope_to_stores, sees_all_stores
from loyalty.ledger.selectors import member_operations
from members.models import Member
from vouchers.models import Voucher

State, Event = Complaint.State, ComplaintEvent.Kind
SUBJECT_MAX, BODY_MAX, TITLE_MAX = 200, 5000, 200


class ConsumerRefused(Refusal):
    """A terms or complaint operation refused: stable ``code``, message for people."""

    family = "consumer"


def _refuse(code: str, message: str, **facts) -> NoReturn:
    raise ConsumerRefused(code, message, **facts)


def _free_text(value: str, *, field: str, maximum: int, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        _refuse(f"{field}_required", f"The {field} is required.", field=field)
    if len(text) > maximum:
        _refuse(f"{field}_too_long", f"The {field} is longer than {maximum:,} characters.", field=field, limit=maximum)
    refused = free_text_refusal(text)  # a card number, a bidi control, an invisible character
    if refused is not None:
        _refuse(refused.code, MESSAGES[refused.code], field=field)
    return text


# --- Business days -----------------------------------------------------------------------------


def add_business_days(start: datetime, days: int) -> datetime:
    """``start`` plus ``days`` business days (Monday to Friday) in the programme's time
    zone, at the same local time; a start on a weekend counts from the next Monday."""
    local = timezone.localtime(start)
    while local.weekday() >= 5:
        local = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    remaining = days
    while remaining > 0:
        local += timedelta(days=1)
        if local.weekday() < 5:
            remaining -= 1
    return local


# --- Terms and conditions ----------------------------------------------------------------------


def terms_current(*, at: datetime | None = None) -> TermsVersion | None:
    at = at or timezone.now()
    return TermsVersion.objects.filter(published_at__isnull=False, effective_from__lte=at).order_by("-version").first()


def terms_draft_save(
    *, actor, title: str, body: str, effective_from: datetime, version: TermsVersion | None = None
) -> TermsVersion:
    """Create a draft (the next version number) or change one still unpublished."""
    title = _free_text(title, field="title", maximum=TITLE_MAX)
    body = _free_text(body, field="body", maximum=100_000)
    with transaction.atomic():
        if version is None:
            last = TermsVersion.objects.select_for_update().order_by("-version").first()
            return TermsVersion.objects.create(
                version=(last.version + 1) if last else 1,
                title=title,
                body=body,
                effective_from=effective_from,
                created_by=actor,
            )
        version = TermsVersion.objects.select_for_update().get(pk=version.pk)
        if version.is_published:
            _refuse("terms_published", "A published version cannot be edited: draft a new version.")
        version.title, version.body, version.effective_from = title, body, effective_from
        version.save(update_fields=["title", "body", "effective_from"])
        return version


def terms_publish(*, actor, version: TermsVersion) -> TermsVersion:
    """Publish a draft: from ``effective_from`` (not before now) members must accept it."""
    if not actor.has_perm("compliance.publish_termsversion"):
        _refuse("not_allowed", "Only a programme administrator publishes terms.")
    with transaction.atomic():
        version = TermsVersion.objects.select_for_update().get(pk=version.pk)
        if version.is_published:
            _refuse("terms_published", "This version is already published.")
        if TermsVersion.objects.filter(published_at__isnull=False, version__gt=version.version).exists():
            _refuse("terms_superseded", "A later version is already published: draft a new version.")
        now = timezone.now()
        version.published_at, version.published_by = now, actor
        if version.effective_from < now:
            version.effective_from = now
        version.save(update_fields=["published_at", "published_by", "effective_from"])
        return version


def terms_accepted(member: Member) -> TermsAcceptance | None:
    return member.terms_acceptances.select_related("version").order_by("-version__version").first()


def terms_acceptance_required(member: Member, *, at: datetime | None = None) -> bool:
    current = terms_current(at=at)
    return current is not None and not member.terms_acceptances.filter(version=current).exists()


def terms_gate(member: Member) -> None:
    """Refuse (403 ``terms_acceptance_required``) a member who has not accepted the terms
    in force; nothing when none are in force. Installed into the member API's base
    (``members.services.terms``) by ``compliance.apps``."""
    current = terms_current()
    if current is not None and not member.terms_acceptances.filter(version=current).exists():
        _refuse(
            "terms_acceptance_required",
            f"Accept the current terms and conditions (version {current.version}) first: "
            "read them at GET /api/v1/terms and accept them at POST /api/v1/me/terms/accept.",
            current_version=current.version,
        )


def terms_accept_at_enrolment(member: Member, version: int, channel: str) -> bool:
    """At enrolment (``channel`` enrolment or staff): record the acceptance of ``version``
    if it is the version in force (True); otherwise nothing (False), and the member is
    asked at their next sign-in. Inside the enrolment's transaction."""
    current = terms_current()
    if current is None or current.version != version:
        return False
    terms_accept(member=member, version=version, channel=channel)
    return True


def terms_accept(*, member: Member, version: int, channel: str = TermsAcceptance.Channel.API) -> TermsAcceptance:
    """Record ``member``'s acceptance of the current version (named, so a member never
    accepts text they were not shown). Accepting it again answers the first acceptance."""
    current = terms_current()
    if current is None:
        _refuse("terms_not_found", "No terms are in force.")
    if version != current.version:
        _refuse("terms_not_current", "Accept the current version of the terms.", current_version=current.version)
    existing = member.terms_acceptances.filter(version=current).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return TermsAcceptance.objects.create(
                member=member, version=current, accepted_at=timezone.now(), channel=channel
            )
    except IntegrityError:  # a concurrent double tap: the first one stands
        return member.terms_acceptances.get(version=current)


# --- Complaints --------------------------------------------------------------------------------


def _event(complaint: Complaint, kind: str, *, actor=None, text: str = "", state_from: str = "", state_to: str = ""):
    return ComplaintEvent.objects.create(
        complaint=complaint,
        kind=kind,
        at=timezone.now(),
        actor=actor,
        text=text,
        state_from=state_from,
        state_to=state_to,
    )


def complaint_file(
    *,
    member: Member,
    kind: str,
    subject: str,
    body: str,
    ledger_operation_id: int | None = None,
    voucher_id: int | None = None,
    store_id: int | None = None,
    actor=None,
) -> Complaint:
    """File a complaint: by the member (``actor`` None, channel api) or by staff on the
    member's behalf (channel staff; store staff only for one of their stores). Related
    records must be the member's own."""
    if kind not in Complaint.Kind.values:
        _refuse("kind_invalid", "Choose a kind of complaint.", allowed=list(Complaint.Kind.values))
    subject = _free_text(subject, field="subject", maximum=SUBJECT_MAX)
    body = _free_text(body, field="body", maximum=BODY_MAX)
    operation = voucher = store = None
    if ledger_operation_id is not None:
        operation = member_operations(member=member).filter(pk=ledger_operation_id).first()
        if operation is None:
            _refuse("related_not_found", "That transaction is not one of the member's.", field="ledger_operation")
    if voucher_id is not None:
        voucher = Voucher.objects.filter(pk=voucher_id, member=member).first()
        if voucher is None:
            _refuse("related_not_found", "That voucher is not one of the member's.", field="voucher")
    if store_id is not None:
        store = Store.objects.filter(pk=store_id).first()
        if store is None:
            _refuse("related_not_found", "No such store.", field="store")
    if actor is not None:
        if not actor.has_perm("compliance.add_complaint"):
            _refuse("not_allowed", "Your role may not file complaints.")
        if not sees_all_stores(actor) and (store is None or not actor.stores.filter(pk=store.pk).exists()):
            _refuse("store_required", "Choose one of your stores for the complaint.")
    now = timezone.now()
    rules = settings.COMPLAINTS
    with transaction.atomic():
        if actor is None:  # the member's own channel: a daily cap (staff intake is not capped)
            Member.objects.select_for_update().filter(pk=member.pk).first()
            day_ago = now - timedelta(days=1)
            recent = list(
                member.complaints.filter(channel=Complaint.Channel.API, received_at__gt=day_ago)
                .order_by("received_at")
                .values_list("received_at", flat=True)
            )
            if len(recent) >= rules["member_daily_limit"]:
                wait = recent[len(recent) - rules["member_daily_limit"]] + timedelta(days=1) - now
                raise ConsumerRefused(
                    "complaint_rate_limited",
                    "You have filed many complaints today: please wait, or call us.",
                    retry_after=max(1, int(wait.total_seconds()) + 1),
                )
        complaint = Complaint.objects.create(
            member=member,
            kind=kind,
            subject=subject,
            body=body,
            ledger_operation=operation,
            voucher=voucher,
            store=store,
            channel=Complaint.Channel.STAFF if actor else Complaint.Channel.API,
            filed_by=actor,
            received_at=now,
            respond_by=add_business_days(now, rules["respond_business_days"]),
            resolve_by=add_business_days(now, rules["resolve_business_days"]),
        )
        _event(complaint, Event.FILED, actor=actor, state_to=State.OPEN)
        transaction.on_commit(
            lambda: notifications.notify_member(
                member=member,
                channel="preferred",
                subject="We received your complaint",
                body=(
                    f"Thank you for contacting us about: {subject}. Reference C-{complaint.pk}. We will respond "
                    f"by {timezone.localtime(complaint.respond_by):%d %b %Y}."
                ),
                topic="complaint",
            )
        )
    return complaint


def complaints_visible_to(user) -> QuerySet[Complaint]:
    """Complaints a staff user may see: every one for headquarters roles, their stores'
    complaints for store staff (those without a store are headquarters')."""
    if not user.has_perm("compliance.view_complaint"):
        return Complaint.objects.none()
    return scope_to_stores(Complaint.objects.all(), user)


def _locked(actor, complaint: Complaint) -> Complaint:
    if not actor.has_perm("compliance.respond_complaint"):
        _refuse("not_allowed", "Your role may not handle complaints.")
    found = complaints_visible_to(actor).select_for_update().filter(pk=complaint.pk).first()
    if found is None:
        _refuse("not_found", "No such complaint.")
    return found


def _move(complaint: Complaint, to: str, *, actor, text: str = "") -> None:
    if complaint.state in Complaint.CLOSED:
        _refuse("complaint_closed", "This complaint is closed.", state=complaint.state)
    before = complaint.state
    complaint.state = to
    fields = ["state"]
    if to in Complaint.CLOSED:
        complaint.closed_at = timezone.now()
        fields.append("closed_at")
    complaint.save(update_fields=fields)
    _event(complaint, Event.STATE, actor=actor, text=text, state_from=before, state_to=to)


def _tell_member(complaint: Complaint, subject: str, text: str) -> None:
    member, ref = complaint.member, complaint.pk
    transaction.on_commit(
        lambda: notifications.notify_member(
            member=member, channel="preferred", subject=f"{subject} (C-{ref})", body=text, topic="complaint"
        )
    )


def complaint_note(*, actor, complaint: Complaint, text: str) -> ComplaintEvent:
    """An internal note (never sent to the member)."""
    text = _free_text(text, field="note", maximum=BODY_MAX)
    with transaction.atomic():
        complaint = _locked(actor, complaint)
        return _event(complaint, Event.NOTE, actor=actor, text=text)


def _open_locked(actor, complaint: Complaint) -> Complaint:
    """The complaint, locked, refused once it is closed."""
    complaint = _locked(actor, complaint)
    if complaint.state in Complaint.CLOSED:
        _refuse("complaint_closed", "This complaint is closed.")
    return complaint


def _answer(complaint: Complaint, *, actor, text: str, state: str, subject: str) -> None:
    """The answer the member is told: the response event, the first-response time, the
    state it moves to (if it changes) and the message through the outbox."""
    _event(complaint, Event.RESPONSE, actor=actor, text=text)
    if complaint.first_responded_at is None:
        complaint.first_responded_at = timezone.now()
        complaint.save(update_fields=["first_responded_at"])
    if complaint.state != state:
        _move(complaint, state, actor=actor)
    _tell_member(complaint, subject, text)


def complaint_assign(*, actor, complaint: Complaint, assignee) -> Complaint:
    with transaction.atomic():
        complaint = _open_locked(actor, complaint)
        if assignee is not None and not assignee.has_perm("compliance.respond_complaint"):
            _refuse("assignee_not_allowed", "That person may not handle complaints.")
        complaint.assignee = assignee
        complaint.save(update_fields=["assignee"])
        _event(complaint, Event.ASSIGNED, actor=actor, text=assignee.get_full_name() if assignee else "")
        return complaint


def complaint_respond(*, actor, complaint: Complaint, text: str) -> Complaint:
    """A response to the member (sent through the outbox); the first one meets the
    first-response deadline."""
    text = _free_text(text, field="response", maximum=BODY_MAX)
    with transaction.atomic():
        complaint = _open_locked(actor, complaint)
        _answer(complaint, actor=actor, text=text, state=State.RESPONDED, subject="A response to your complaint")
        return complaint


def complaint_resolve(
    *,
    actor,
    complaint: Complaint,
    text: str,
    points: int | None = None,
    reason_code: str = "",
    evidence: Evidence | None = None,
) -> Complaint:
    """Resolve in the member's favour (or as answered), telling them why. A points
    dispute resolved with ``points`` raises an adjustment request (its own approvals
    and refusals apply; a refusal leaves the complaint as it was)."""
    text = _free_text(text, field="response", maximum=BODY_MAX)
    with transaction.atomic():
        complaint = _open_locked(actor, complaint)
        if points is not None:
            if complaint.kind != Complaint.Kind.POINTS_DISPUTE:
                _refuse("not_points_dispute", "Only a points dispute resolves with an adjustment.")
            reason = AdjustmentReason.objects.filter(
                code=reason_code or settings.COMPLAINTS["adjustment_reason"], active=True
            ).first()
            if reason is None:
                _refuse("reason_invalid", "Choose an active adjustment reason.")
            request = adjustment_request(
                actor=actor,
                member=complaint.member,
                points=points,
                reason=reason,
                store=complaint.store,
                evidence=evidence or Evidence(),
                comment=f"Points dispute C-{complaint.pk}",
            )
            complaint.adjustment = request
            complaint.save(update_fields=["adjustment"])
            _event(complaint, Event.ADJUSTMENT, actor=actor, text=f"{points:+,} points requested")
        _answer(complaint, actor=actor, text=text, state=State.RESOLVED, subject="Your complaint is resolved")
        return complaint


def complaint_reject(*, actor, complaint: Complaint, text: str) -> Complaint:
    """Close without upholding, with the reasons the member is told."""
    text = _free_text(text, field="response", maximum=BODY_MAX)
    with transaction.atomic():
        complaint = _open_locked(actor, complaint)
        _answer(complaint, actor=actor, text=text, state=State.REJECTED, subject="Our answer to your complaint")
        return complaint


def complaints_deadline_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Remind the assignee (or the complaints desk) of complaints due within
    ``remind_hours``, once; escalate those past a deadline not met (first response or
    resolution), once. Safe to run concurrently (row locks, skip locked)."""
    now = now or timezone.now()
    rules = settings.COMPLAINTS
    reminded = escalated = 0
    open_states = [State.OPEN, State.RESPONDED]
    with transaction.atomic():
        due = (
            Complaint.objects.select_for_update(skip_locked=True)
            .filter(state__in=open_states, escalated_at__isnull=True)
            .filter(
                # first response missed, or resolution missed
                models_q_overdue(now)
            )
        )
        for complaint in due:
            complaint.escalated_at = now
            complaint.save(update_fields=["escalated_at"])
            _event(complaint, Event.ESCALATED)
            _move(complaint, State.ESCALATED, actor=None, text="deadline passed")
            if rules["desk_email"]:
                notifications.notify_address(
                    to=rules["desk_email"],
                    subject=f"Complaint C-{complaint.pk} escalated",
                    body="A complaint passed its deadline without a response or resolution.",
                    topic="complaint",
                )
            escalated += 1
        soon = now + timedelta(hours=rules["remind_hours"])
        remind = Complaint.objects.select_for_update(skip_locked=True).filter(
            state__in=open_states, reminded_at__isnull=True, escalated_at__isnull=True
        )
        for complaint in remind.filter(models_q_due_before(soon)):
            complaint.reminded_at = now
            complaint.save(update_fields=["reminded_at"])
            _event(complaint, Event.REMINDER)
            to = (complaint.assignee.email if complaint.assignee else "") or rules["desk_email"]
            if to:
                notifications.notify_address(
                    to=to,
                    subject=f"Complaint C-{complaint.pk} due soon",
                    body=f"Due {timezone.localtime(complaint.respond_by if complaint.first_responded_at is None else complaint.resolve_by):%d %b %Y %H:%M}.",
                    topic="complaint",
                )
            reminded += 1
    return {"reminded": reminded, "escalated": escalated}


def models_q_overdue(now: datetime):
    return Q(first_responded_at__isnull=True, respond_by__lt=now) | Q(resolve_by__lt=now)


def models_q_due_before(moment: datetime):
    return Q(first_responded_at__isnull=True, respond_by__lt=moment) | Q(resolve_by__lt=moment)
