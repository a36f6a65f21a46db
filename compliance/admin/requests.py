"""Data-subject requests in the admin: the queue and the request page (COMPLIANCE.md §4).

- **Queue** (changelist): reference, kind, member by name and link, channel, state, due
  (overdue in red: CSS class ``overdue``), reminders; filters by kind, state, channel
  and "overdue"/"open".
- **Request page**: the facts, the event history, and the actions as POST forms, each
  with its reason (verify identity, start, complete, refuse, cancel), through
  ``compliance.requests``, which checks ``compliance.manage_datasubjectrequest``.
- **Correction**: the fields asked; a phone or email is corrected by the member's
  verified change (listed here, by reference and time, never the value), which completes
  the request when it lands; staff correct a name or birth date here (``correct``,
  through the members' PII service; the history names the field, never the value).
- **Intake** (``intake/``): staff take a request on the member's behalf, recording the
  kind of identity check (never the document number); the member confirms through
  their registered contact.

No compliance role exists: Program Administrators hold the permissions (staffauth.roles).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from compliance import requests as dsr
from compliance.models import DataSubjectRequest
from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from members.admin_search import loyalty_number_compact
from members.models import ContactVerification, Member
from staffauth.admin_base import FreeTextFormMixin, ReadOnlyAdmin

ACTIONS = ("verify", "start", "complete", "partial", "refuse", "cancel", "correct")


class ActionForm(FreeTextFormMixin, forms.Form):
    reason = forms.CharField(max_length=500)
    identity_check = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *[c for c in DataSubjectRequest.IdentityCheck.choices if c[0] != "step_up_otp"]],
    )
    code = forms.CharField(required=False, max_length=40)
    basis = forms.CharField(required=False, max_length=200)
    field = forms.ChoiceField(
        required=False, choices=[("", "—"), *[(f, dsr.FIELD_LABELS[f]) for f in dsr.STAFF_FIELDS]]
    )
    value = forms.CharField(required=False, max_length=500, strip=True)


class IntakeForm(FreeTextFormMixin, forms.Form):
    loyalty_number = forms.CharField(max_length=24)
    kind = forms.ChoiceField(choices=DataSubjectRequest.Kind.choices)
    identity_check = forms.ChoiceField(
        choices=[
            c for c in DataSubjectRequest.IdentityCheck.choices if c[0] not in ("step_up_otp", "contact_confirmed")
        ]
    )
    fields = forms.MultipleChoiceField(
        required=False,
        choices=[(f, dsr.FIELD_LABELS[f].capitalize()) for f in dsr.CORRECTION_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Correction only: what to correct. The member corrects a phone or email in the app (verified).",
    )
    note = forms.CharField(required=False, max_length=500, help_text="What is asked (no identity numbers).")


class OverdueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("open", "Open")]

    def queryset(self, request, queryset):
        open_ = queryset.filter(state__in=DataSubjectRequest.OPEN_STATES)
        if self.value() == "overdue":
            return open_.filter(due_at__lt=timezone.now())
        if self.value() == "open":
            return open_
        return queryset


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(ViewerAdminMixin, ReadOnlyAdmin):
    change_form_template = "admin/compliance/datasubjectrequest/change_form.html"
    change_list_template = "admin/compliance/datasubjectrequest/change_list.html"
    list_display = ["reference_ref", "kind", "member_ref", "channel", "state", "due", "reminders"]
    list_display_links = ["reference_ref"]
    list_filter = ["kind", "state", "channel", OverdueFilter]
    list_select_related = ["member"]
    ordering = ["due_at", "id"]
    fields = ["kind"]
    readonly_fields = fields

    class Media:
        css = {"all": ["loyalty/data_requests.css"]}

    @admin.display(description="Request", ordering="id")
    def reference_ref(self, obj):
        return obj.reference

    @admin.display(description="Member")
    def member_ref(self, obj):
        return display.member_link(obj.member, current_viewer())

    @admin.display(description="Due", ordering="due_at")
    def due(self, obj):
        if obj.is_open and obj.due_at < timezone.now():
            return format_html('<span class="overdue">{} (overdue)</span>', display.local_time(obj.due_at))
        return display.local_time(obj.due_at)

    @admin.display(description="Reminders")
    def reminders(self, obj):
        return ", ".join(f"day {d}" for d in obj.reminders_sent) or "—"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("intake/", wrap(self.intake_view), name=f"{info}_intake"),
            path("<path:object_id>/act/<str:action>/", wrap(require_POST(self.act_view)), name=f"{info}_act"),
            *super().get_urls(),
        ]

    def _page_url(self, obj) -> str:
        return reverse("admin:compliance_datasubjectrequest_change", args=[obj.pk], current_app=self.admin_site.name)

    def _visible_object(self, request, object_id) -> DataSubjectRequest:
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No request matches the given query.")
        return obj

    def _may_manage(self, request) -> bool:
        return request.user.has_perm(dsr.MANAGE_PERMISSION)

    def intake_view(self, request):
        if not (self._may_manage(request) and request.user.has_perm("compliance.add_datasubjectrequest")):
            raise PermissionDenied
        form = IntakeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            number = loyalty_number_compact(form.cleaned_data["loyalty_number"])
            member = Member.objects.filter(loyalty_number=number).first()
            if member is None:
                form.add_error("loyalty_number", "No member has this loyalty number.")
            else:
                note = form.cleaned_data["note"].strip()
                detail: dict = {"note": note} if note else {}
                if form.cleaned_data["kind"] == DataSubjectRequest.Kind.CORRECTION and form.cleaned_data["fields"]:
                    detail["fields"] = sorted(form.cleaned_data["fields"])
                try:
                    obj, _code = dsr.request_submit_by_staff(
                        staff=request.user, member=member, kind=form.cleaned_data["kind"],
                        identity_check=form.cleaned_data["identity_check"], detail=detail,
                    )  # fmt: skip
                except dsr.RequestRefused as refusal:
                    self.message_user(request, f"Refused ({refusal.code}): {refusal}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"{obj.reference} recorded; the member was sent a code to confirm it.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(self._page_url(obj))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "New data-subject request",
        }
        return TemplateResponse(request, "admin/compliance/datasubjectrequest/intake.html", context)

    def act_view(self, request, object_id, action):
        obj = self._visible_object(request, object_id)
        if action not in ACTIONS:
            raise Http404("No such action.")
        form = ActionForm(request.POST)
        if not form.is_valid():
            field, errors = next(iter(form.errors.items()))
            self.message_user(request, f"{field}: {errors[0]}", messages.ERROR)
            return HttpResponseRedirect(self._page_url(obj))
        data, user = form.cleaned_data, request.user
        try:
            if action == "verify":
                dsr.request_verify_identity(
                    request_id=obj.pk, staff=user, identity_check=data["identity_check"], reason=data["reason"]
                )
            elif action == "start":
                dsr.request_start(request_id=obj.pk, staff=user, reason=data["reason"])
            elif action in ("complete", "partial"):
                dsr.request_complete(request_id=obj.pk, staff=user, reason=data["reason"], partial=action == "partial")
            elif action == "correct":
                dsr.correction_apply(
                    request_id=obj.pk, staff=user, field=data["field"], value=data["value"], reason=data["reason"]
                )
            elif action == "refuse":
                dsr.request_refuse(
                    request_id=obj.pk, staff=user, code=data["code"], reason=data["reason"], basis=data["basis"]
                )
            else:
                dsr.request_cancel(request_id=obj.pk, staff=user, reason=data["reason"])
        except dsr.RequestRefused as refusal:
            self.message_user(request, f"Refused ({refusal.code}): {refusal}", messages.ERROR)
        else:
            self.message_user(request, f"{obj.reference}: {action} done.", messages.SUCCESS)
        return HttpResponseRedirect(self._page_url(obj))

    @staticmethod
    def _correction_context(obj) -> dict:
        """A correction request: the fields asked and corrected, the fields staff correct
        here, and the member's contact changes since receipt (kind, times, state: never
        the value), the verified ones to reference when completing."""
        if obj.kind != DataSubjectRequest.Kind.CORRECTION:
            return {}
        asked = dsr.correction_fields(obj)
        corrected = set(obj.detail.get("corrected") or [])
        changes = ContactVerification.objects.filter(member=obj.member, created_at__gte=obj.received_at)
        return {
            "dsr_correction": True,
            "dsr_fields": [
                {"label": dsr.FIELD_LABELS[f], "done": f in corrected, "by_member": f in dsr.CONTACT_FIELDS}
                for f in asked
            ],
            "dsr_staff_fields": [
                (f, dsr.FIELD_LABELS[f].capitalize()) for f in dsr.STAFF_FIELDS if not asked or f in asked
            ],
            "dsr_contact_changes": [
                {
                    "ref": f"CV-{str(c.pk)[:8]}",
                    "kind": c.get_kind_display(),
                    "started": display.local_time(c.created_at),
                    "state": (
                        format_html("verified {}", display.local_time(c.verified_at))
                        if c.verified_at
                        else "cancelled"
                        if c.cancelled_at
                        else "waiting for the member"
                    ),
                }
                for c in changes.order_by("created_at")
            ],
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self._visible_object(request, object_id)
        viewer = current_viewer()
        context = {
            "dsr": obj,
            "dsr_member": display.member_link(obj.member, viewer),
            "dsr_received": display.local_time(obj.received_at),
            "dsr_due": display.local_time(obj.due_at),
            "dsr_overdue": obj.is_open and obj.due_at < timezone.now(),
            "dsr_verified": display.local_time(obj.identity_verified_at) if obj.identity_verified_at else None,
            "dsr_grace": display.local_time(obj.grace_ends_at) if obj.grace_ends_at else None,
            "dsr_events": [
                {
                    "when": display.local_time(e.created_at),
                    "kind": e.kind,
                    "move": f"{e.state_before or '—'} → {e.state_after}",
                    "actor": display.staff_link(e.actor, viewer) if e.actor_id else "System or member",
                    "reason": e.reason,
                }  # fmt: skip
                for e in obj.events.select_related("actor")
            ],
            "dsr_manage": self._may_manage(request),
            "dsr_act_base": reverse(
                "admin:compliance_datasubjectrequest_act", args=[obj.pk, "x"], current_app=self.admin_site.name
            )[:-2],
            "identity_checks": [c for c in DataSubjectRequest.IdentityCheck.choices if c[0] != "step_up_otp"],
            "dsr_exports": list(obj.exports.values("created_at", "expires_at", "downloaded_at", "size")),
            **self._correction_context(obj),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **context})
