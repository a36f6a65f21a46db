"""Fraud cases in the admin: the analyst's queue and the case page (FRAUD.md §3).

- **Queue** (changelist): inbox, severity, status, subject by name and link, assignee,
  age, due (overdue highlighted), score at open; filters by inbox, status, severity,
  "assigned to me" and "overdue"; search by case reference or loyalty number.
- **Case page** (read-only change view): the header, the explainable score (each
  contribution largest first: ``impossible_travel 40 → 20 (8 d old, half-life 7)``), the
  alerts and signals, the subject's timeline newest first, the notes and evidence files,
  and the actions as POST buttons, each with its reason. The buttons post to
  ``<case>/act/<action>/``; the services (``fraud.cases``, ``fraud.actions``) check who may
  do what and refuse clearly, so a button shown by mistake still changes nothing.

Fraud Analysts work cases; Program Administrators read them, raise the drafted reversal
and revoke vouchers; nobody else opens them (403).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from fraud import actions as case_actions
from fraud import outcomes
from fraud.admin.timeline import event_text, signal_text, timeline
from fraud.cases import (
    RESOLUTION_REASONS,
    CaseRefused,
    case_assign,
    case_close,
    case_mark_contained,
    case_note,
    case_reopen,
    case_snooze,
    case_start,
    fraud_analysts,
)
from fraud.models import CaseFile, FraudAlert, FraudCase, RiskDecision, RiskSignal
from fraud.permissions import may_view_cases, may_work_cases
from fraud.scoring import Subject, risk_score
from loyalty.kernel.access_log import download_response
from loyalty.workplace import display
from loyalty.workplace.dashboards import age_text
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from members.admin_search import member_lookup
from staffauth.admin_base import CappedCountPaginator, FreeTextFormMixin, ReadOnlyAdmin
from staffauth.posted_search import PostedSearch, PostedSearchAdminMixin

FILE_SUFFIX = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
SNOOZE_DAYS_MAX = 30
RESOLUTION_LABELS = {reason: display.choice_label((), reason) for reason in RESOLUTION_REASONS}


def contribution_text(row: dict[str, Any]) -> str:
    """``impossible_travel 40 → 20 (8 d old, half-life 7)``, and what was counted when a
    cap cut it."""
    text = (
        f"{row['detector']} {row['weight']} → {row['decayed']} "
        f"({row['age_days']} d old, half-life {row['half_life_days']})"
    )
    return text if row["counted"] == row["decayed"] else f"{text}, counted {row['counted']}"


class ActionForm(FreeTextFormMixin, forms.Form):
    """Everything a case action may carry; each action reads the fields it needs."""

    reason = forms.CharField(required=False, max_length=case_actions.NOTE_MAX)
    outcome = forms.ChoiceField(required=False, choices=[("", "—"), *FraudCase.Outcome.choices])
    resolution_reason = forms.ChoiceField(required=False, choices=[("", "—"), *RESOLUTION_LABELS.items()])
    days = forms.IntegerField(required=False, min_value=1, max_value=SNOOZE_DAYS_MAX)
    assignee = forms.IntegerField(required=False, min_value=1)
    points = forms.IntegerField(required=False, min_value=1, max_value=10_000_000)
    voucher = forms.UUIDField(required=False)
    device = forms.IntegerField(required=False, min_value=1)
    file = forms.FileField(required=False)
    to = forms.ChoiceField(required=False, choices=[("", "—"), *((o, o) for o in outcomes.LOWER_TO)])
    description = forms.CharField(required=False, max_length=case_actions.FILE_DESCRIPTION_MAX)


def _run(name: str, case: FraudCase, user: Any, data: dict[str, Any], files: Any) -> str:
    """Call the service behind action ``name``; return what to tell the user."""
    now = timezone.now()
    reason = data.get("reason") or ""
    pk = case.pk
    if name == "assign_me":
        case_assign(case_id=pk, assignee_id=user.pk, actor=user)
        return f"{case.reference} is assigned to you."
    if name == "assign":
        case_assign(case_id=pk, assignee_id=data.get("assignee"), actor=user)
        return f"{case.reference} reassigned."
    if name == "start":
        case_start(case_id=pk, actor=user)
        return f"{case.reference}: investigation started."
    if name == "snooze":
        days = data.get("days") or 1
        case_snooze(case_id=pk, until=now + timedelta(days=days), actor=user, reason=reason)
        return f"{case.reference} snoozed for {days} day(s); a new signal wakes it."
    if name == "note":
        if not reason.strip():
            raise CaseRefused("reason_required")
        case_note(case_id=pk, note=reason.strip(), actor=user)
        return "Note added."
    if name == "close":
        if not reason.strip():
            raise CaseRefused("reason_required")
        case_close(
            case_id=pk, outcome=data.get("outcome") or "", resolution_reason=data.get("resolution_reason") or "",
            actor=user, note=reason.strip(),
        )  # fmt: skip
        return f"{case.reference} closed."
    if name == "reopen":
        case_reopen(case_id=pk, reason=reason, actor=user)
        return f"{case.reference} reopened."
    if name == "contain":
        case_mark_contained(case_id=pk, actor=user)
        return f"{case.reference} marked contained."
    simple = {
        "freeze": (case_actions.case_member_spend_freeze, "Spending frozen (it lapses unless confirmed)."),
        "suspend": (case_actions.case_member_suspend, "Member suspended."),
        "lock": (case_actions.case_member_lock, "Account locked and every session revoked."),
        "recommend_suspension": (case_actions.case_suspension_recommend, "Suspension recommended."),
        "ask_deactivation": (case_actions.case_staff_deactivation_request, "A system administrator was asked."),
    }
    if name in simple:
        service, message = simple[name]
        result = service(case_id=pk, actor=user, reason=reason)
        return message if result.done else "Already done: nothing changed."
    if name == "block_device":
        result = case_actions.case_device_block(
            case_id=pk, device_id=data.get("device") or 0, actor=user, reason=reason
        )
        return "Device blocked." if result.done else "Already done: nothing changed."
    if name in ("report_voucher", "revoke_voucher"):
        service = case_actions.case_voucher_report if name == "report_voucher" else case_actions.case_voucher_revoke
        voucher = str(data.get("voucher") or "")
        if not voucher:
            raise case_actions.CaseActionRefused("not_the_subjects")
        result = service(case_id=pk, voucher_id=voucher, actor=user, reason=reason)
        done = "Voucher reported." if name == "report_voucher" else "Voucher revoked."
        return done if result.done else "Already done: nothing changed."
    if name == "draft_reversal":
        result = case_actions.case_reversal_draft(case_id=pk, points=data.get("points") or 0, actor=user, reason=reason)
        return (
            "Reversal drafted: a programme administrator raises it."
            if result.done
            else "Already drafted: nothing changed."
        )
    if name == "lower_outcome":
        state = outcomes.outcome_lower(subject=Subject.of(case), to=data.get("to") or "", actor=user, reason=reason)
        return f"Outcome in force: {display.choice_label((), state.outcome)}."
    if name == "add_file":
        case_actions.case_file_add(
            case_id=pk, upload=files.get("file"), actor=user, description=data.get("description") or ""
        )
        return "Evidence file added."
    raise Http404("No such action.")


ACTIONS = (
    "assign_me", "assign", "start", "snooze", "note", "close", "reopen", "contain", "freeze", "lock",
    "block_device", "recommend_suspension", "suspend", "report_voucher", "revoke_voucher", "draft_reversal",
    "ask_deactivation", "add_file", "lower_outcome",
)  # fmt: skip


class AssignedToMeFilter(admin.SimpleListFilter):
    title = "assigned"
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("me", "To me"), ("nobody", "To nobody")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assigned_to=request.user)
        if self.value() == "nobody":
            return queryset.filter(assigned_to__isnull=True)
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("open", "Open (not closed)"), ("snoozed", "Snoozed")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.exclude(status=FraudCase.Status.CLOSED).filter(due_at__lt=now)
        if self.value() == "open":
            return queryset.exclude(status=FraudCase.Status.CLOSED)
        if self.value() == "snoozed":
            return queryset.exclude(status=FraudCase.Status.CLOSED).filter(snoozed_until__gt=now)
        return queryset


def subject_link(case: FraudCase, viewer: Any) -> Any:
    if case.member_id:
        return display.member_link(case.member, viewer)
    if case.staff_id:
        return display.staff_link(case.staff, viewer)
    if case.store_id:
        return display.store_link(case.store, viewer)
    if case.till_id:
        return display.till_link(case.till, viewer)
    return format_html("API client {}", case.client[:12])


@admin.register(FraudCase)
class FraudCaseAdmin(PostedSearchAdminMixin, ViewerAdminMixin, ReadOnlyAdmin):
    paginator = CappedCountPaginator
    change_form_template = "admin/fraud/fraudcase/change_form.html"
    list_display = [
        "reference_ref", "inbox", "severity_ref", "status_ref", "subject_ref", "assignee", "age", "due", "score_at_open",
    ]  # fmt: skip
    list_display_links = ["reference_ref"]
    list_filter = ["inbox", "status", "severity", AssignedToMeFilter, OverdueFilter]
    list_select_related = ["member", "staff", "store", "till__store", "assigned_to"]
    search_fields = ["=reference"]  # read by get_search_results
    search_help_text = "A case reference (FC-2026-000012) or a member's loyalty number."
    ordering = ["due_at", "id"]
    fields = ["reference"]
    readonly_fields = fields

    class Media:
        css = {"all": ["loyalty/fraud_cases.css"]}

    def posted_search_find(self, request, term: str) -> PostedSearch:
        """The cases ``term`` names among those the viewer sees: a case reference, or a
        member's loyalty number (posted, never in a URL: it identifies a member). The
        label is the term (staff may read loyalty numbers; only the URL must not hold one)."""
        term = term.strip()
        queryset = self.get_queryset(request)
        if term.upper().startswith("FC-"):
            found, label = queryset.filter(reference__iexact=term[:20]), term[:20].upper()
        else:
            lookup = member_lookup(term)
            found, label = (queryset.filter(lookup) if lookup is not None else queryset.none()), term
        return PostedSearch(tuple(found.values_list("pk", flat=True)[:500]), label)

    @admin.display(description="Case", ordering="reference")
    def reference_ref(self, obj):
        return obj.reference or f"#{obj.pk}"

    @admin.display(description="Severity", ordering="severity")
    def severity_ref(self, obj):
        return format_html('<span class="severity severity-{}">{}</span>', obj.severity, obj.get_severity_display())

    @admin.display(description="Status", ordering="status")
    def status_ref(self, obj):
        snoozed = obj.snoozed_until and obj.snoozed_until > timezone.now()
        return format_html("{}{}", obj.get_status_display(), " (snoozed)" if snoozed else "")

    @admin.display(description="Subject")
    def subject_ref(self, obj):
        return subject_link(obj, current_viewer())

    @admin.display(description="Assigned to", ordering="assigned_to__username")
    def assignee(self, obj):
        return display.staff_link(obj.assigned_to, current_viewer()) if obj.assigned_to_id else "Nobody"

    @admin.display(description="Age", ordering="opened_at")
    def age(self, obj):
        return age_text(timezone.now() - obj.opened_at)

    @admin.display(description="Due", ordering="due_at")
    def due(self, obj):
        if obj.status != FraudCase.Status.CLOSED and obj.due_at < timezone.now():
            return format_html('<span class="overdue">{} (overdue)</span>', display.local_time(obj.due_at))
        return display.local_time(obj.due_at)

    # --- URLs ---

    def get_urls(self):
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/act/<str:action>/", wrap(require_POST(self.act_view)), name=f"{info}_act"),
            path("<path:object_id>/file/<int:file_id>/", wrap(require_GET(self.file_view)), name=f"{info}_file"),
            *super().get_urls(),
        ]

    def _visible_object(self, request, object_id) -> FraudCase:
        if not may_view_cases(request.user):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No fraud case matches the given query.")
        return obj

    def _page_url(self, obj) -> str:
        return reverse("admin:fraud_fraudcase_change", args=[obj.pk], current_app=self.admin_site.name)

    def act_view(self, request, object_id, action):
        """POST only, CSRF-protected, OTP-verified (admin_view); the service decides."""
        case = self._visible_object(request, object_id)
        if action not in ACTIONS:
            raise Http404("No such action.")
        form = ActionForm(request.POST, request.FILES)
        if not form.is_valid():
            field, errors = next(iter(form.errors.items()))
            self.message_user(request, f"{display.choice_label((), field)}: {errors[0]}", messages.ERROR)
            return HttpResponseRedirect(self._page_url(case))
        try:
            text = _run(action, case, request.user, form.cleaned_data, request.FILES)
        except CaseRefused as refusal:
            self.message_user(request, f"Refused ({refusal.code}): {refusal}", messages.ERROR)
        else:
            self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(self._page_url(case))

    def file_view(self, request, object_id, file_id):
        """An evidence file, to those who may view the case (404 otherwise)."""
        case = self._visible_object(request, object_id)
        stored = CaseFile.objects.filter(pk=file_id, case=case).first()
        if stored is None:
            raise Http404("No such file.")
        try:
            with stored.file.open("rb") as handle:
                content = handle.read()
        except FileNotFoundError as exc:
            raise Http404("The file is missing from storage.") from exc
        name = f"{case.reference or case.pk}-{stored.pk}{FILE_SUFFIX.get(stored.content_type, Path(stored.file.name).suffix[:8])}"
        return download_response(
            request, content, filename=name, content_type=stored.content_type, report_type="case_file",
            obj=stored, member_id=case.member_id,
        )  # fmt: skip

    # --- the case page ---

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None and self.has_view_permission(request, obj):
            context.update(case_page_context(obj, request.user, self.admin_site.name))
        return super().change_view(request, object_id, form_url, context)


def _score(case: FraudCase) -> dict[str, Any]:
    """The live score with its contributions, and the latest stored decision."""
    now = timezone.now()
    live = risk_score(Subject.of(case), now)
    decision = RiskDecision.objects.filter(subject_key=case.subject_key).order_by("-as_of", "-id").first()
    return {
        "score": live.score,
        "forced": live.forced_outcome or "",
        "forced_by": live.forced_by,
        "rows": [
            {"text": contribution_text(c.as_json()), "counted": c.counted, "facts": display.facts_table(c.facts)}
            for c in live.contributions
        ],
        "decision": decision,
        "decision_when": display.local_time(decision.as_of) if decision else "",
        "decision_outcome": display.choice_label((), decision.outcome) if decision else "",
    }


def _outcome(case: FraudCase) -> dict[str, Any]:
    """The subject's outcome in force and what its latest decisions applied."""
    subject = Subject.of(case)
    in_force = outcomes.outcome_in_force(subject)
    return {
        "in_force": in_force,
        "label": display.choice_label((), in_force),
        "lower_to": [
            (o, display.choice_label((), o)) for o in outcomes.LOWER_TO if outcomes.rank(o) < outcomes.rank(in_force)
        ],
        "applications": [
            {
                "when": display.local_time(application.applied_at),
                "decision": f"{application.decision.score} ({display.choice_label((), application.decision.outcome)})",
                "move": (
                    f"{display.choice_label((), application.outcome_before)} → {display.choice_label((), application.outcome_after)}"
                    if application.outcome_after != application.outcome_before
                    else "no change"
                ),
                "held": application.get_held_display() if application.held else "",
            }
            for application in outcomes.applications_of(subject, limit=10)
        ],
    }


def case_page_context(case: FraudCase, user: Any, site: str = "admin") -> dict[str, Any]:
    """Everything the case page shows ``user`` (see the module docstring)."""
    from vouchers.models import Voucher

    works = may_work_cases(user)
    is_open = case.status != FraudCase.Status.CLOSED
    analysts = list(fraud_analysts().order_by("username")) if works and is_open else []
    names = {a.pk: a for a in analysts}
    for event in case.events.filter(kind="assigned").select_related("actor"):
        for value in (event.old_value, event.new_value):
            if value.isdigit() and int(value) not in names:
                names[int(value)] = None
    missing = [pk for pk, v in names.items() if v is None]
    if missing:
        from django.contrib.auth import get_user_model

        names.update({u.pk: u for u in get_user_model().objects.filter(pk__in=missing)})
    draft = case_actions.case_reversal_draft_latest(case)
    vouchers = (
        list(
            Voucher.objects.filter(
                member_id=case.member_id, status=Voucher.Status.ACTIVE, expires_at__gt=timezone.now()
            )
            .select_related("reward")
            .order_by("-issued_at")[:20]
        )
        if case.member_id
        else []
    )
    devices = []
    if case.member_id:
        from members.models import MemberDevice

        devices = list(
            MemberDevice.objects.filter(member_id=case.member_id, blocked_at__isnull=True).order_by("-last_seen_at")[
                :20
            ]
        )
    reversal_url = ""
    if draft is not None and case.member_id and user.has_perm("loyalty.add_adjustmentrequest"):
        reversal_url = (
            reverse("admin:loyalty_adjustmentrequest_add", current_app=site)
            + f"?member={case.member_id}&points=-{draft.new_value}&reason=FRAUD_REVERSAL&case={case.reference}"
        )
    overdue = is_open and case.due_at < timezone.now()
    return {
        "case": case,
        "case_subject": subject_link(case, user),
        "case_assignee": display.staff_link(case.assigned_to, user) if case.assigned_to_id else "Nobody",
        "case_due": display.local_time(case.due_at),
        "case_overdue": overdue,
        "case_opened": display.local_time(case.opened_at),
        "case_first_signal": display.local_time(case.first_signal_at),
        "case_contained": display.local_time(case.contained_at) if case.contained_at else "",
        "case_closed": display.local_time(case.closed_at) if case.closed_at else "",
        "case_closed_by": display.staff_link(case.closed_by, user) if case.closed_by_id else "",
        "case_resolution": RESOLUTION_LABELS.get(case.resolution_reason, ""),
        "case_snoozed": display.local_time(case.snoozed_until)
        if case.snoozed_until and case.snoozed_until > timezone.now()
        else "",
        "case_previous": display.link(case.previous_case, case.previous_case.reference or "", user)
        if case.previous_case_id
        else "",
        "case_score": _score(case),
        "case_outcome": _outcome(case),
        "case_alerts": [
            {
                "link": display.link(alert, alert.get_kind_display(), user),
                "severity": alert.get_severity_display(),
                "status": alert.get_status_display(),
                "when": display.local_time(alert.created_at),
            }
            for alert in FraudAlert.objects.filter(case=case).order_by("-created_at", "-id")[:50]
        ],
        "case_signals": [
            {"text": signal_text(signal), "when": display.local_time(signal.occurred_at)}
            for signal in RiskSignal.objects.filter(subject_key=case.subject_key).order_by("-occurred_at", "-id")[:50]
        ],
        "case_timeline": timeline(case, user, names=names),
        "case_notes": [
            {"text": event_text(event, user, names), "when": display.local_time(event.at)}
            for event in case.events.filter(Q(kind="note") | (Q(actor__isnull=False) & ~Q(note="")))
            .select_related("actor")
            .order_by("-at", "-id")
        ],
        "case_files": [
            {
                "url": reverse("admin:fraud_fraudcase_file", args=[case.pk, f.pk], current_app=site),
                "type": f.content_type,
                "size": f"{f.size:,}",
                "description": f.description,
                "by": display.staff_link(f.uploaded_by, user),
                "when": display.local_time(f.uploaded_at),
            }
            for f in case.files.select_related("uploaded_by")
        ],
        "case_works": works,
        "case_open": is_open,
        "case_may_revoke": is_open and case_actions.may_revoke_from_case(user) and bool(vouchers),
        "case_may_suspend": is_open
        and case_actions.may_suspend_from_case(user)
        and case.events.filter(kind="suspension_recommended").exists()
        and not case.events.filter(kind="member_suspended").exists(),
        "case_analysts": [(a.pk, display.staff_label(a)) for a in analysts],
        "case_vouchers": [(str(v.pk), display.voucher_label(v)) for v in vouchers],
        "case_devices": [(d.pk, f"{d} (last seen {display.local_time_text(d.last_seen_at)})") for d in devices],
        "case_draft": draft,
        "case_draft_points": f"{int(draft.new_value):,}" if draft is not None and draft.new_value.isdigit() else "",
        "case_reversal_url": reversal_url,
        "case_outcomes": FraudCase.Outcome.choices,
        "case_resolutions": list(RESOLUTION_LABELS.items()),
        "case_act_base": reverse("admin:fraud_fraudcase_act", args=[case.pk, "x"], current_app=site)[: -len("x/")],
    }
