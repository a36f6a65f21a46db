"""Data-subject requests (PDPA; COMPLIANCE.md §4): one service per operation.

Every change locks the request, checks the transition, writes the request and one
``DataSubjectRequestEvent`` (append-only) in one transaction. Refusals carry stable
codes (``RequestRefused``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import zipfile
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance.export import ENCRYPTED_SUFFIX, MEMBER_PATHS, STAFF_COLUMNS, export_fields
from compliance.models import (
    AccessEvent,
    DataExport,
    DataSubjectRequest,
    DataSubjectRequestEvent,
    ErasureCertificate,
)
from loyalty.kernel.refusals import Refusal
from members.models import Member

State = DataSubjectRequest.State
Kind = DataSubjectRequest.Kind

DUE_DAYS = 21
LAPSE_DAYS = 14
REMINDER_DAYS = (7, 14, 18)
GRACE_DAYS = 7
EXPORT_LINK_HOURS = 24
MANAGE_PERMISSION = "compliance.manage_datasubjectrequest"
STEP_UP_ACTION = "data_request"
EXPORT_SUBJECT = "Your data is ready"


class RequestRefused(Refusal):
    family = "data_request"
    MESSAGES = {  # noqa: RUF012
        "permission_denied": "You may not act on data-subject requests.",
        "reason_required": "A reason is required.",
        "bad_transition": "The request is not in a state that allows this.",
        "identity_not_verified": "The requester's identity has not been verified.",
        "identity_check_required": "Say how the identity was checked.",
        "wrong_code": "The confirmation code is wrong.",
        "open_request": "An open request of this kind exists already.",
        "step_up_required": "Verify a step-up code for this action first.",
        "export_not_found": "The download link is unknown, used or expired.",
        "grace_period": "The erasure grace period has not ended.",
        "correction_field": (
            "Staff correct the name and the birth date only: a phone number or email address is corrected by the "
            "member through their verified-contact change (a code or a link to the new one)."
        ),
        "correction_not_asked": "The request does not ask to correct this field.",
        "invalid_value": "The new value is not valid.",
        "pii_erased": "This member's personal data was erased: nothing can be corrected.",
    }


# Correction requests (PDPA s.22): what may be asked, and who does it.
CORRECTION_FIELDS = ("name", "birth_date", "phone", "email")
CONTACT_FIELDS = ("phone", "email")  # the member's own verified-contact change (members.services.contact)
STAFF_FIELDS = ("name", "birth_date")  # staff from the request page (members.services.membership.member_pii_set)
FIELD_LABELS = {"name": "name", "birth_date": "date of birth", "phone": "phone number", "email": "email address"}

TRANSITIONS: dict[str, set[str]] = {
    "verify": {State.RECEIVED, State.IDENTITY_PENDING},
    "start": {State.VERIFIED},
    "complete": {State.IN_PROGRESS},
    "partial": {State.IN_PROGRESS},
    "refuse": {State.RECEIVED, State.IDENTITY_PENDING, State.VERIFIED, State.IN_PROGRESS},
    "cancel": {State.RECEIVED, State.IDENTITY_PENDING, State.VERIFIED, State.IN_PROGRESS},
}


def _tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def due_at_for(received_at: datetime) -> datetime:
    """The end (last instant) of the programme-local day 21 after receipt."""
    local_day = received_at.astimezone(_tz()).date() + timedelta(days=DUE_DAYS)
    return datetime.combine(local_day, time.max, tzinfo=_tz())


def request_day(request: DataSubjectRequest, now: datetime) -> int:
    """Days since receipt by the programme's calendar (the receipt day is day 0)."""
    return (now.astimezone(_tz()).date() - request.received_at.astimezone(_tz()).date()).days


def _may_manage(staff: Any) -> bool:
    return bool(staff and staff.is_active and staff.has_perm(MANAGE_PERMISSION))


def _event(request: DataSubjectRequest, kind: str, before: str, *, reason: str = "", actor=None, **detail):
    return DataSubjectRequestEvent.objects.create(
        request=request, kind=kind, state_before=before, state_after=request.state, reason=reason[:500],
        actor=actor, detail=detail,
    )  # fmt: skip


def _locked(request_id: int) -> DataSubjectRequest:
    return DataSubjectRequest.objects.select_for_update().select_related("member").get(pk=request_id)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise RequestRefused("reason_required")
    return reason


def _notify(member: Member, subject: str, body: str) -> None:
    from loyalty.notifications import notify_member

    notify_member(member=member, channel=member.preferred_channel or "sms", subject=subject, body=body, topic="account")


# --- intake ------------------------------------------------------------------------------


@transaction.atomic
def request_submit_by_member(*, member: Member, kind: str, detail: dict | None = None, now=None) -> DataSubjectRequest:
    """The member's own request (member API: the caller holds their session). Spends a
    step-up for ``data_request``: the identity is verified at once (session + OTP)."""
    from members.services.otp import otp_step_up_consume

    now = now or timezone.now()
    if kind not in Kind.values:
        raise ValueError(kind)
    if not otp_step_up_consume(member=member, action=STEP_UP_ACTION, now=now):
        raise RequestRefused("step_up_required")
    request = DataSubjectRequest.objects.create(
        kind=kind, member=member, channel=DataSubjectRequest.Channel.API, received_at=now,
        due_at=due_at_for(now), state=State.VERIFIED, identity_check=DataSubjectRequest.IdentityCheck.STEP_UP_OTP,
        identity_verified_at=now, detail=detail or {},
    )  # fmt: skip
    _event(request, "received", "", detail_kind=kind)
    _notify(
        member,
        "We received your data request",
        f"Your request {request.reference} is due by {request.due_at:%Y-%m-%d}.{_correction_guide(request)}",
    )
    if kind == Kind.CONSENT_WITHDRAWAL:
        _consent_withdraw(request, now=now)
    return request


@transaction.atomic
def request_submit_by_staff(
    *, staff, member: Member, kind: str, identity_check: str, detail: dict | None = None, now=None
) -> tuple[DataSubjectRequest, str]:
    """Staff take a request on the member's behalf, recording how they checked the
    identity (the kind of check, never the document number). The member confirms
    through their registered contact: a code goes there (returned for tests, never
    shown to staff by the admin). State ``identity_pending`` until confirmed."""
    now = now or timezone.now()
    if not _may_manage(staff):
        raise RequestRefused("permission_denied")
    if identity_check not in DataSubjectRequest.IdentityCheck.values or identity_check == "step_up_otp":
        raise RequestRefused("identity_check_required")
    code = f"{secrets.randbelow(10**8):08d}"
    request = DataSubjectRequest.objects.create(
        kind=kind, member=member, channel=DataSubjectRequest.Channel.STAFF, received_at=now,
        due_at=due_at_for(now), state=State.IDENTITY_PENDING, received_by=staff,
        confirmation_code_hash=hashlib.sha256(code.encode()).hexdigest(), detail=detail or {},
    )  # fmt: skip
    _event(request, "received", "", actor=staff, identity_check=identity_check)
    request.detail = {**request.detail, "staff_identity_check": identity_check}
    request.save(update_fields=["detail"])
    _notify(
        member,
        "Confirm your data request",
        f"A {request.get_kind_display().lower()} request was made for your account ({request.reference}). "
        f"If it was you, confirm it with code {code}. If not, ignore this message and contact us.",
    )
    return request, code


@transaction.atomic
def request_confirm_by_member(*, request_id: int, code: str, now=None) -> DataSubjectRequest:
    """The member confirms a staff-taken request with the code sent to their contact."""
    now = now or timezone.now()
    request = _locked(request_id)
    if request.state not in TRANSITIONS["verify"]:
        raise RequestRefused("bad_transition")
    digest = hashlib.sha256((code or "").strip().encode()).hexdigest()
    if not request.confirmation_code_hash or not secrets.compare_digest(digest, request.confirmation_code_hash):
        raise RequestRefused("wrong_code")
    before = request.state
    request.state, request.identity_verified_at = State.VERIFIED, now
    request.identity_check = request.detail.get("staff_identity_check", "contact_confirmed")
    request.confirmation_code_hash = ""
    request.save(update_fields=["state", "identity_verified_at", "identity_check", "confirmation_code_hash"])
    _event(request, "identity_verified", before, via="registered_contact")
    return request


@transaction.atomic
def request_verify_identity(*, request_id: int, staff, identity_check: str, reason: str, now=None):
    """Staff record the identity as verified (a check done in person or by call-back)."""
    now = now or timezone.now()
    if not _may_manage(staff):
        raise RequestRefused("permission_denied")
    reason = _reason(reason)
    if identity_check not in DataSubjectRequest.IdentityCheck.values or identity_check == "step_up_otp":
        raise RequestRefused("identity_check_required")
    request = _locked(request_id)
    if request.state not in TRANSITIONS["verify"]:
        raise RequestRefused("bad_transition")
    before = request.state
    request.state, request.identity_verified_at, request.identity_check = State.VERIFIED, now, identity_check
    request.save(update_fields=["state", "identity_verified_at", "identity_check"])
    _event(request, "identity_verified", before, reason=reason, actor=staff, identity_check=identity_check)
    return request


# --- staff actions -------------------------------------------------------------------------


def _transition(request_id: int, staff, action: str, target: str, reason: str, now=None, **extra) -> DataSubjectRequest:
    now = now or timezone.now()
    if not _may_manage(staff):
        raise RequestRefused("permission_denied")
    reason = _reason(reason)
    request = _locked(request_id)
    if request.state not in TRANSITIONS[action]:
        raise RequestRefused("bad_transition")
    if target == State.IN_PROGRESS and request.identity_verified_at is None:
        raise RequestRefused("identity_not_verified")
    before = request.state
    request.state = target
    fields = ["state"]
    if target in (State.COMPLETED, State.PARTIAL, State.REFUSED, State.CANCELLED):
        request.completed_at = now
        fields.append("completed_at")
    for key, value in extra.items():
        setattr(request, key, value)
        fields.append(key)
    request.save(update_fields=fields)
    _event(request, action, before, reason=reason, actor=staff)
    return request


@transaction.atomic
def request_start(*, request_id: int, staff, reason: str, now=None) -> DataSubjectRequest:
    """Work begins. An access request queues its export; an erasure request is checked
    for refusal grounds and, if none, enters its cancellable grace period."""
    now = now or timezone.now()
    request = _transition(request_id, staff, "start", State.IN_PROGRESS, reason, now)
    if request.kind == Kind.ACCESS:
        from compliance.tasks import dsr_export_build_task

        transaction.on_commit(lambda: dsr_export_build_task.delay(request.pk))
    elif request.kind == Kind.ERASURE:
        grounds = erasure_refusals(request.member)
        if grounds:
            code, why, basis = grounds[0]
            request.state = State.REFUSED
            request.refusal_code, request.refusal_reason, request.refusal_basis = code, why, basis
            request.completed_at = now
            request.save(update_fields=["state", "refusal_code", "refusal_reason", "refusal_basis", "completed_at"])
            _event(request, "refused", State.IN_PROGRESS, reason=why, grounds=[g[0] for g in grounds])
            _notify(request.member, "Your erasure request", f"Request {request.reference} was refused: {why}")
        else:
            request.grace_ends_at = now + timedelta(days=GRACE_DAYS)
            request.save(update_fields=["grace_ends_at"])
            _event(request, "grace_started", State.IN_PROGRESS, grace_ends_at=request.grace_ends_at.isoformat())
            _notify(
                request.member,
                "Your account will be erased",
                f"Your account will be erased after {request.grace_ends_at:%Y-%m-%d %H:%M} UTC ({request.reference}). "
                "Reply or contact us before then to cancel. Unspent points will be forfeited.",
            )
    elif request.kind == Kind.CONSENT_WITHDRAWAL:
        _consent_withdraw(request, now=now)
    return request


@transaction.atomic
def request_complete(*, request_id: int, staff, reason: str, partial: bool = False, now=None):
    return _transition(
        request_id,
        staff,
        "partial" if partial else "complete",
        State.PARTIAL if partial else State.COMPLETED,
        reason,
        now,
    )


@transaction.atomic
def request_refuse(*, request_id: int, staff, code: str, reason: str, basis: str, now=None):
    code = (code or "").strip()
    if not code:
        raise RequestRefused("reason_required")
    request = _transition(
        request_id, staff, "refuse", State.REFUSED, reason, now,
        refusal_code=code[:40], refusal_reason=reason.strip()[:500], refusal_basis=(basis or "").strip()[:200],
    )  # fmt: skip
    _notify(request.member, "Your data request", f"Request {request.reference} was refused: {request.refusal_reason}")
    return request


@transaction.atomic
def request_cancel(*, request_id: int, staff=None, reason: str, by_member: Member | None = None, now=None):
    """Staff, or the member themselves (``by_member``), cancel an open request (an
    erasure only until its grace period ends)."""
    now = now or timezone.now()
    if by_member is None and not _may_manage(staff):
        raise RequestRefused("permission_denied")
    reason = _reason(reason)
    request = _locked(request_id)
    if by_member is not None and request.member_id != by_member.pk:
        raise RequestRefused("bad_transition")
    if request.state not in TRANSITIONS["cancel"] or request.steps_done:
        raise RequestRefused("bad_transition")
    before = request.state
    request.state, request.completed_at = State.CANCELLED, now
    request.save(update_fields=["state", "completed_at"])
    _event(request, "cancelled", before, reason=reason, actor=staff, by_member=by_member is not None)
    return request


# --- correction -------------------------------------------------------------------------------


def correction_fields(request: DataSubjectRequest) -> list[str]:
    """The fields a correction request asks to correct (none named: the note says)."""
    return [f for f in request.detail.get("fields") or [] if f in CORRECTION_FIELDS]


def _correction_guide(request: DataSubjectRequest) -> str:
    if request.kind != Kind.CORRECTION or not set(correction_fields(request)) & set(CONTACT_FIELDS):
        return ""
    return (
        " To correct your phone number or email address, change it in the app (Profile): we send a code or a link "
        "to the new one, and this request is completed when you confirm it."
    )


def _corrected(request: DataSubjectRequest) -> set[str]:
    return set(request.detail.get("corrected") or [])


def _all_corrected(request: DataSubjectRequest) -> bool:
    asked = set(correction_fields(request))
    return bool(asked) and asked <= _corrected(request)


@transaction.atomic
def correction_contact_changed(*, member_id: int, field: str, verification_id: str | None, now=None) -> list[int]:
    """A verified phone or email change of the member landed (their ``contact_changed``
    security event, in the change's own transaction): every open, verified correction
    request of theirs that asks for that field links to the change (its id, never the
    value) and, once every field it asks for is corrected, completes. Returns the ids of
    the requests linked."""
    now = now or timezone.now()
    if field not in CONTACT_FIELDS:
        return []
    linked = []
    candidates = DataSubjectRequest.objects.filter(
        member_id=member_id, kind=Kind.CORRECTION, state__in=(State.VERIFIED, State.IN_PROGRESS),
        received_at__lte=now,
    ).order_by("pk")  # fmt: skip
    for pk in candidates.values_list("pk", flat=True):
        request = _locked(pk)
        if request.state not in (State.VERIFIED, State.IN_PROGRESS) or field not in correction_fields(request):
            continue
        change = {"field": field, "verification_id": verification_id or "", "at": now.isoformat()}
        request.detail = {
            **request.detail,
            "corrected": sorted(_corrected(request) | {field}),
            "contact_changes": [*request.detail.get("contact_changes", []), change],
        }
        request.save(update_fields=["detail"])
        ref = f"the member's verified change CV-{verification_id[:8]}" if verification_id else "removed by the member"
        _event(
            request, "contact_corrected", request.state, reason=f"{FIELD_LABELS[field].capitalize()}: {ref}.",
            field=field, verification_id=verification_id or "",
        )  # fmt: skip
        if _all_corrected(request):
            if request.state == State.VERIFIED:
                request.state = State.IN_PROGRESS
                request.save(update_fields=["state"])
                _event(request, "start", State.VERIFIED, reason="The member's verified contact change landed.")
            request.state, request.completed_at = State.COMPLETED, now
            request.save(update_fields=["state", "completed_at"])
            _event(request, "complete", State.IN_PROGRESS, reason="Corrected through the member's verified change.")
            _notify(request.member, "Your correction request", f"Request {request.reference} is complete.")
        linked.append(request.pk)
    return linked


def correction_apply(*, request_id: int, staff, field: str, value: str, reason: str, now=None) -> DataSubjectRequest:
    """Staff correct the member's name or birth date for a correction request in
    progress, through ``members.services.membership.member_pii_correct_by_staff``
    (``member_pii_set``: validated, encrypted; and a ``profile_changed`` security event
    naming the field, the staff member and the request). The request's event names the field,
    never the value. Phone and email are refused (``correction_field``): the member
    corrects those through their verified-contact change."""
    from members.services.membership import member_pii_correct_by_staff
    from members.services.pii import InvalidMemberData, MemberPiiErased

    now = now or timezone.now()
    if not _may_manage(staff):
        raise RequestRefused("permission_denied")
    if field not in STAFF_FIELDS:
        raise RequestRefused("correction_field", field=field if field in CORRECTION_FIELDS else "")
    reason = _reason(reason)
    with transaction.atomic():
        member_id = DataSubjectRequest.objects.filter(pk=request_id).values_list("member_id", flat=True).first()
        if member_id is None:
            raise RequestRefused("bad_transition")
        Member.objects.select_for_update().filter(pk=member_id).first()  # the contact flows' lock order
        request = _locked(request_id)
        if request.kind != Kind.CORRECTION or request.state != State.IN_PROGRESS:
            raise RequestRefused("bad_transition")
        asked = correction_fields(request)
        if asked and field not in asked:
            raise RequestRefused("correction_not_asked", field=field)
        try:
            with transaction.atomic():
                member_pii_correct_by_staff(
                    member=request.member, actor=staff, reference=request.reference, **{field: value}
                )
        except InvalidMemberData as refusal:
            code, message = refusal.errors.get(field, ("invalid", "The new value is not valid."))
            raise RequestRefused("invalid_value", message, field=field, reason=code) from None
        except MemberPiiErased:
            raise RequestRefused("pii_erased") from None
        request.detail = {**request.detail, "corrected": sorted(_corrected(request) | {field})}
        request.save(update_fields=["detail"])
        _event(request, "corrected", request.state, reason=reason, actor=staff, field=field)
        _notify(
            request.member,
            "Your details were corrected",
            f"Your {FIELD_LABELS[field]} on file was corrected (request {request.reference}). "
            "If you did not ask for this, contact us at once.",
        )
    return request


# --- consent withdrawal --------------------------------------------------------------------


def _consent_withdraw(request: DataSubjectRequest, *, now) -> None:
    """Immediate, through the consents service: every purpose named (or all marketing)."""
    from members.models import Consent
    from members.services.consents import consents_record

    purposes = request.detail.get("purposes") or [p for p in Consent.Purpose.values if p != Consent.Purpose.ESSENTIAL]
    consents_record(
        member=request.member,
        choices=dict.fromkeys(purposes, False),
        source="staff" if request.channel == "staff" else "member",
    )
    before = request.state
    request.state, request.completed_at = State.COMPLETED, now
    request.save(update_fields=["state", "completed_at"])
    _event(request, "consent_withdrawn", before, purposes=purposes)


# --- the clock --------------------------------------------------------------------------------


def requests_clock(*, now=None) -> dict[str, int]:
    """Hourly: lapse unverified requests after 14 days; reminders on days 7, 14, 18;
    escalation once overdue; erasures past their grace period carried out."""
    from loyalty.notifications import notify_address

    now = now or timezone.now()
    counts = {"lapsed": 0, "reminders": 0, "escalated": 0, "erased": 0}
    open_ = DataSubjectRequest.objects.filter(state__in=DataSubjectRequest.OPEN_STATES)
    for pk in open_.filter(
        identity_verified_at__isnull=True, received_at__lte=now - timedelta(days=LAPSE_DAYS)
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = _locked(pk)
            if request.is_open and request.identity_verified_at is None:
                before = request.state
                request.state, request.completed_at = State.CANCELLED, now
                request.save(update_fields=["state", "completed_at"])
                _event(request, "lapsed", before, reason="Identity not verified within 14 days.")
                counts["lapsed"] += 1
    for pk in open_.values_list("pk", flat=True):
        with transaction.atomic():
            request = _locked(pk)
            if not request.is_open:
                continue
            day = request_day(request, now)
            due = [d for d in REMINDER_DAYS if d <= day and d not in request.reminders_sent]
            if due:
                request.reminders_sent = sorted({*request.reminders_sent, *due})
                request.save(update_fields=["reminders_sent"])
                _event(request, "reminder", request.state, day=max(due))
                notify_address(
                    to=settings.DSR_NOTIFY_EMAIL, subject=f"{request.reference}: day {max(due)} of 21",
                    body=f"{request.reference} ({request.get_kind_display()}) is due {request.due_at:%Y-%m-%d}.", topic="compliance",
                )  # fmt: skip
                counts["reminders"] += 1
            if now > request.due_at and request.escalated_at is None:
                request.escalated_at = now
                request.save(update_fields=["escalated_at"])
                _event(request, "escalated", request.state, reason="Overdue.")
                notify_address(
                    to=settings.DSR_NOTIFY_EMAIL, subject=f"OVERDUE {request.reference}",
                    body=f"{request.reference} was due {request.due_at:%Y-%m-%d}.", topic="compliance",
                )  # fmt: skip
                counts["escalated"] += 1
    ready = open_.filter(kind=Kind.ERASURE, state=State.IN_PROGRESS, grace_ends_at__lte=now)
    for pk in ready.values_list("pk", flat=True):
        erasure_run(request_id=pk, now=now)
        counts["erased"] += 1
    return counts


# --- export -----------------------------------------------------------------------------------


def export_logged(*, request: DataSubjectRequest, what: str, actor=None) -> None:
    """Every export step (built, downloaded, expired): a request event and an access event
    (``member_export``, on the access log's chained stream) naming the member and the step."""
    from compliance.access import record

    _event(request, what, request.state, actor=actor)
    record(AccessEvent.Kind.MEMBER_EXPORT, staff=actor, member_id=request.member_id, obj=request, report_type=what)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


def _mask(code: str) -> str:
    return f"••••{code[-4:]}" if code else ""


def _staff_roles(staff: Any) -> str:
    if staff is None:
        return ""
    return ", ".join(sorted(group.name for group in staff.groups.all())) or "staff"


def _rows(label: str, member: Member, pii: Any) -> list[dict[str, Any]]:
    model = apps.get_model(label)
    fields = export_fields(label)
    rows = []
    path = MEMBER_PATHS[label]
    rows_of_member = model._default_manager.filter(**{path: member.pk if path == "pk" else member}).order_by("pk")
    if label in STAFF_COLUMNS:  # the viewers' roles: one query, not one per row
        rows_of_member = rows_of_member.prefetch_related(f"{STAFF_COLUMNS[label]}__groups")
    for obj in rows_of_member:
        row = {}
        for name in fields:
            if hasattr(obj, name + ENCRYPTED_SUFFIX):
                row[name] = _value(getattr(pii, name, None))  # decrypted, under the plain name
            elif name == STAFF_COLUMNS.get(label):
                row[name] = _staff_roles(getattr(obj, name))
            else:
                field = model._meta.get_field(name)
                row[name] = _value(getattr(obj, field.attname))
        if label == "vouchers.Voucher" and obj.status == "active":
            row["code"] = _mask(obj.code)
        rows.append(row)
    return rows


def export_bundle(member: Member) -> bytes:
    """The ZIP: ``data.json`` (one key per table, the member's profile as ``profile``), one
    CSV per table, ``manifest.json`` with SHA-256s."""
    from members.services.pii import member_pii_read

    pii = member_pii_read(member)
    data: dict[str, Any] = {
        "profile" if label == "members.Member" else label: _rows(label, member, pii) for label in MEMBER_PATHS
    }
    files: dict[str, bytes] = {"data.json": json.dumps(data, indent=2, ensure_ascii=False).encode()}
    for name, rows in data.items():
        out = io.StringIO()
        columns = sorted({k for row in rows for k in row})
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        files[f"{name.replace('.', '_')}.csv"] = out.getvalue().encode()
    manifest = {
        "member_id": str(member.member_id),
        "generated_at": timezone.now().isoformat(),
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in files.items()},
    }
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def export_build(*, request_id: int, now=None) -> str:
    """Build the bundle for an access request in progress and send the member a one-time
    24-hour link. Returns the token (the database keeps only its SHA-256)."""
    now = now or timezone.now()
    with transaction.atomic():
        request = _locked(request_id)
        if request.kind != Kind.ACCESS or request.state != State.IN_PROGRESS:
            raise RequestRefused("bad_transition")
        body = export_bundle(request.member)
        token = secrets.token_urlsafe(32)
        DataExport.objects.create(
            request=request, token_hash=hashlib.sha256(token.encode()).hexdigest(), content=body,
            sha256=hashlib.sha256(body).hexdigest(), size=len(body), expires_at=now + timedelta(hours=EXPORT_LINK_HOURS),
        )  # fmt: skip
        export_logged(request=request, what="export_built")
        app = (getattr(settings, "MEMBER_APP_URL", "") or "http://localhost:3000").rstrip("/")
        _notify(
            request.member, EXPORT_SUBJECT,
            f"Download your data within 24 hours, signed in, with a code we send you: {app}/data-export#{token} "
            f"(request {request.reference}). The link works once.",
        )  # fmt: skip
        before = request.state
        request.state, request.completed_at = State.COMPLETED, now
        request.save(update_fields=["state", "completed_at"])
        _event(request, "export_delivered", before)
    return token


@transaction.atomic
def export_download(*, member: Member, token: str, now=None) -> bytes:
    """The member's one-time download (their session + a step-up ``data_request``).
    The bundle is deleted as it is handed over; the download is logged."""
    from members.services.otp import otp_step_up_consume

    now = now or timezone.now()
    digest = hashlib.sha256((token or "").encode()).hexdigest()
    export = (
        DataExport.objects.select_for_update()
        .select_related("request")
        .filter(token_hash=digest, request__member=member, downloaded_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if export is None:
        raise RequestRefused("export_not_found")
    if not otp_step_up_consume(member=member, action=STEP_UP_ACTION, now=now):
        raise RequestRefused("step_up_required")
    body = bytes(export.content)
    export.content, export.token_hash, export.downloaded_at, export.deleted_at = None, None, now, now
    export.save(update_fields=["content", "token_hash", "downloaded_at", "deleted_at"])
    export_logged(request=export.request, what="export_downloaded")
    _redact_link(member)
    return body


def _redact_link(member: Member) -> None:
    """The link's message keeps no token once the link is used or expired."""
    from loyalty.kernel.models import OutboundMessage

    OutboundMessage.objects.filter(member=member, subject=EXPORT_SUBJECT).exclude(body="[link used or expired]").update(
        body="[link used or expired]"
    )


def exports_expire(*, now=None) -> int:
    """Bundles not downloaded within 24 hours are deleted, and their links' messages redacted."""
    now = now or timezone.now()
    expired = DataExport.objects.filter(expires_at__lte=now, deleted_at__isnull=True).select_related("request__member")
    count = 0
    for export in expired:
        with transaction.atomic():
            DataExport.objects.filter(pk=export.pk).update(content=None, token_hash=None, deleted_at=now)
            _redact_link(export.request.member)
            export_logged(request=export.request, what="export_expired")
            count += 1
    return count


# --- erasure ----------------------------------------------------------------------------------


def erasure_refusals(member: Member) -> list[tuple[str, str, str]]:
    """The grounds to refuse an erasure: (code, reason, legal basis)."""
    from compliance.models import LegalHold
    from fraud.models import FraudCase
    from loyalty.ledger.selectors import member_balance

    grounds = []
    if LegalHold.objects.filter(scope="member", member=member, released_at__isnull=True).exists():
        grounds.append(
            (
                "legal_hold",
                "A legal hold covers this account: its records must be kept for a claim or an investigation.",
                "Legal obligation; establishment or defence of legal claims",
            )
        )
    if FraudCase.objects.filter(member=member).exclude(status=FraudCase.Status.CLOSED).exists():
        grounds.append(
            ("open_fraud_case", "An open fraud investigation concerns this account.", "PDPA s.6, s.45 investigation")
        )
    balance = member_balance(member)
    if balance is not None and balance.debits_pending > 0:
        grounds.append(("unsettled_holds", "Points are held for an unsettled redemption.", "Contract performance"))
    return grounds


ERASURE_STEPS = (
    "close",
    "revoke_sessions",
    "delete_devices_otp",
    "certificate",
    "shred",
    "redact_outbox",
    "revoke_vouchers",
)

KEPT = [
    {"category": "points ledger (pseudonymous, by member id)", "basis": "Accounting records", "until_years": 7},
    {"category": "vouchers issued and redeemed (pseudonymous)", "basis": "Accounting records", "until_years": 7},
    {"category": "security and audit logs (pseudonymous)", "basis": "Security; legal claims", "until_years": 7},
]
ERASED = [
    "name",
    "phone",
    "email",
    "address",
    "birth date",
    "password",
    "devices",
    "sessions",
    "OTP codes",
    "message bodies",
]


def erasure_run(*, request_id: int, now=None) -> DataSubjectRequest:
    """The erasure, step by step (``steps_done`` records each; a rerun resumes after the
    last done). Refusal grounds are checked again first."""
    now = now or timezone.now()
    with transaction.atomic():
        request = _locked(request_id)
        if request.kind != Kind.ERASURE or request.state != State.IN_PROGRESS:
            raise RequestRefused("bad_transition")
        if request.grace_ends_at is None or request.grace_ends_at > now:
            raise RequestRefused("grace_period")
        grounds = erasure_refusals(request.member) if not request.steps_done else []
        if grounds:
            code, why, basis = grounds[0]
            request.state, request.completed_at = State.REFUSED, now
            request.refusal_code, request.refusal_reason, request.refusal_basis = code, why, basis
            request.save(update_fields=["state", "completed_at", "refusal_code", "refusal_reason", "refusal_basis"])
            _event(request, "refused", State.IN_PROGRESS, reason=why)
            return request
    for step in ERASURE_STEPS:
        with transaction.atomic():
            request = _locked(request_id)
            if step in request.steps_done:
                continue
            _STEP[step](request, now)
            request.steps_done = [*request.steps_done, step]
            request.save(update_fields=["steps_done"])
            _event(request, f"step_{step}", request.state)
    with transaction.atomic():
        request = _locked(request_id)
        before = request.state
        request.state, request.completed_at = State.COMPLETED, now
        request.save(update_fields=["state", "completed_at"])
        _event(request, "erased", before)
    return request


def _step_close(request: DataSubjectRequest, now) -> None:
    Member.objects.filter(pk=request.member_id).update(status=Member.Status.CLOSED)


def _step_revoke_sessions(request: DataSubjectRequest, now) -> None:
    from members.models import MemberSession, RefreshToken
    from members.services.sessions import sessions_end_all

    sessions_end_all(member=request.member, reason="erasure", now=now)
    RefreshToken.objects.filter(session__member=request.member, revoked_at__isnull=True).update(revoked_at=now)
    MemberSession.objects.filter(member=request.member).update(device=None)


def _step_delete_devices_otp(request: DataSubjectRequest, now) -> None:
    from members.models import MemberDevice, OtpChallenge

    MemberDevice.objects.filter(member=request.member).delete()
    OtpChallenge.objects.filter(member=request.member).delete()


def _step_certificate(request: DataSubjectRequest, now) -> None:
    """Stored and sent BEFORE the shred (the outbox resolves the address at delivery)."""
    from loyalty.notifications import message_deliver, notify_member

    kept_until = (now + timedelta(days=365 * 7)).date().isoformat()
    body = {
        "request": request.reference,
        "member_ref": str(request.member.member_id),
        "received_at": request.received_at.isoformat(),
        "erased_at": now.isoformat(),
        "erased": ERASED,
        "kept": [{**k, "until": kept_until} for k in KEPT],
    }
    canonical = json.dumps(body, sort_keys=True).encode()
    certificate = ErasureCertificate.objects.create(
        request=request, member_ref=request.member.member_id, body=body, sha256=hashlib.sha256(canonical).hexdigest()
    )
    message = notify_member(
        member=request.member, channel=request.member.preferred_channel or "email", subject="Certificate of erasure",
        body=f"Your personal data has been erased ({request.reference}). Certificate SHA-256 {certificate.sha256}.",
        topic="account",
    )  # fmt: skip
    transaction.on_commit(lambda: message_deliver(message_id=message.pk))


def _step_shred(request: DataSubjectRequest, now) -> None:
    from members.services.membership import member_pii_shred

    member_pii_shred(member=request.member)


def _step_redact_outbox(request: DataSubjectRequest, now) -> None:
    from loyalty.kernel.models import OutboundMessage

    OutboundMessage.objects.filter(member=request.member).exclude(body="[erased]").update(body="[erased]")


def _step_revoke_vouchers(request: DataSubjectRequest, now) -> None:
    from vouchers.models import Voucher

    Voucher.objects.filter(member=request.member, status=Voucher.Status.ACTIVE).update(
        status=Voucher.Status.REVOKED, revoked_at=now, revoke_reason="Erasure request"
    )


_STEP = {
    "close": _step_close,
    "revoke_sessions": _step_revoke_sessions,
    "delete_devices_otp": _step_delete_devices_otp,
    "certificate": _step_certificate,
    "shred": _step_shred,
    "redact_outbox": _step_redact_outbox,
    "revoke_vouchers": _step_revoke_vouchers,
}
