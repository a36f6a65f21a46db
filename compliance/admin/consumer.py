"""Consumer protection in the admin: the complaints queue and page, staff intake on a
member's behalf, and terms and conditions versions (draft, publish with confirmation,
acceptance counts). Every change goes through ``compliance.consumer``; the pages only
show and ask."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from compliance import consumer
from compliance.models import Complaint, TermsVersion
from loyalty.kernel.refusals import Refusal
from loyalty.kernel.scoping import stores_visible_to
from loyalty.workplace import display
from members.models import Member
from staffauth.admin_base import BaseAdmin, FreeTextFormMixin, VisibleStoreFilter, add_form_render, form_refused

RESPOND = "compliance.respond_complaint"


class ComplaintIntakeForm(FreeTextFormMixin, forms.Form):
    loyalty_number = forms.CharField(max_length=16, help_text="From the member's card or app.")
    kind = forms.ChoiceField(choices=Complaint.Kind.choices)
    store = forms.ModelChoiceField(queryset=None, required=False)
    subject = forms.CharField(max_length=consumer.SUBJECT_MAX)
    body = forms.CharField(widget=forms.Textarea, max_length=consumer.BODY_MAX, help_text="Never a card number.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores_visible_to(user)

    def clean_loyalty_number(self):
        number = self.cleaned_data["loyalty_number"].strip()
        member = Member.objects.filter(loyalty_number=number).first()
        if member is None:
            raise forms.ValidationError("No member has this loyalty number.", code="member_not_found")
        self.member = member
        return number


class ComplaintActionForm(FreeTextFormMixin, forms.Form):
    text = forms.CharField(widget=forms.Textarea, max_length=consumer.BODY_MAX)
    points = forms.IntegerField(required=False, help_text="Points dispute only: credit requested on resolution.")


class OverdueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue")]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return queryset.filter(consumer.Q(state__in=["open", "responded", "escalated"])).filter(
                consumer.models_q_overdue(timezone.now())
            )
        return queryset


@admin.register(Complaint)
class ComplaintAdmin(BaseAdmin):
    change_form_template = "admin/compliance/complaint/change_form.html"
    list_display = ["reference", "kind", "subject", "member_ref", "store_ref", "state", "deadline", "assignee_ref"]
    list_display_links = ["reference"]
    list_filter = ["state", "kind", VisibleStoreFilter, OverdueFilter]
    fields = ["kind"]
    readonly_fields = fields

    class Media:
        css = {"all": ["loyalty/complaints.css"]}

    def get_queryset(self, request):
        return consumer.complaints_visible_to(request.user).select_related("member", "store", "assignee")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Complaint", ordering="pk")
    def reference(self, obj):
        return f"C-{obj.pk}"

    @admin.display(description="Member")
    def member_ref(self, obj):
        return display.member_link(obj.member)

    @admin.display(description="Store")
    def store_ref(self, obj):
        return display.store_link(obj.store) if obj.store_id else "Headquarters"

    @admin.display(description="Assignee")
    def assignee_ref(self, obj):
        return display.staff_link(obj.assignee) if obj.assignee_id else "Unassigned"

    @admin.display(description="Due", ordering="respond_by")
    def deadline(self, obj):
        due = obj.respond_by if obj.first_responded_at is None else obj.resolve_by
        if obj.state in Complaint.CLOSED:
            return format_html('<span class="complaint-closed">{}</span>', display.local_time_text(obj.closed_at))
        css = "complaint-overdue" if due < timezone.now() else "complaint-due"
        return format_html('<span class="{}">{}</span>', css, display.local_time_text(due))

    # --- intake ---

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ComplaintIntakeForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                complaint = consumer.complaint_file(
                    member=form.member,
                    kind=data["kind"],
                    subject=data["subject"],
                    body=data["body"],
                    store_id=data["store"].pk if data["store"] else None,
                    actor=request.user,
                )
            except Refusal as refusal:
                form_refused(form, refusal, {"card_number_refused": "body", "store_required": "store"})
            else:
                self.message_user(request, f"Complaint C-{complaint.pk} filed for the member.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:compliance_complaint_change", args=[complaint.pk]))
        fieldsets = [(None, {"fields": ["loyalty_number", "kind", "store", "subject", "body"]})]
        return add_form_render(
            self, request, form, fieldsets, title="File a complaint on a member's behalf", form_url=form_url,
            extra_context=extra_context,
        )  # fmt: skip

    # --- the complaint page and its actions ---

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/act/<str:action>/", wrap(require_POST(self.act_view)), name="compliance_complaint_act"
            ),
            *super().get_urls(),
        ]

    def act_view(self, request, object_id, action):
        if not request.user.has_perm(RESPOND):
            raise PermissionDenied
        complaint = self.get_object(request, unquote(object_id))
        if complaint is None:
            raise Http404("No complaint matches the given query.")
        form = ComplaintActionForm(request.POST)
        page = HttpResponseRedirect(reverse("admin:compliance_complaint_change", args=[complaint.pk]))
        if action not in {"note", "respond", "resolve", "reject", "assign_me"}:
            raise Http404("No such action.")
        try:
            if action == "assign_me":
                consumer.complaint_assign(actor=request.user, complaint=complaint, assignee=request.user)
            elif not form.is_valid():
                self.message_user(request, "Write the text first (card numbers are refused).", messages.ERROR)
                return page
            elif action == "note":
                consumer.complaint_note(actor=request.user, complaint=complaint, text=form.cleaned_data["text"])
            elif action == "respond":
                consumer.complaint_respond(actor=request.user, complaint=complaint, text=form.cleaned_data["text"])
            elif action == "resolve":
                consumer.complaint_resolve(
                    actor=request.user,
                    complaint=complaint,
                    text=form.cleaned_data["text"],
                    points=form.cleaned_data.get("points"),
                )
            else:
                consumer.complaint_reject(actor=request.user, complaint=complaint, text=form.cleaned_data["text"])
        except Refusal as refusal:
            self.message_user(request, f"Refused ({refusal.code}): {refusal}", messages.ERROR)
        else:
            self.message_user(request, "Done.", messages.SUCCESS)
        return page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None:
            user = request.user
            due = obj.respond_by if obj.first_responded_at is None else obj.resolve_by
            context.update(
                complaint=obj,
                complaint_member=display.member_link(obj.member, user),
                complaint_store=display.store_link(obj.store, user) if obj.store_id else "Headquarters",
                complaint_operation=display.operation_link(obj.ledger_operation, user)
                if obj.ledger_operation_id
                else "",
                complaint_voucher=display.voucher_link(obj.voucher, user) if obj.voucher_id else "",
                complaint_adjustment=display.link(obj.adjustment, f"Adjustment request #{obj.adjustment_id}", user)
                if obj.adjustment_id
                else "",
                complaint_filed_by=display.staff_link(obj.filed_by, user) if obj.filed_by_id else "The member (app)",
                complaint_assignee=display.staff_link(obj.assignee, user) if obj.assignee_id else "Unassigned",
                complaint_received=display.local_time(obj.received_at),
                complaint_respond_by=display.local_time(obj.respond_by),
                complaint_resolve_by=display.local_time(obj.resolve_by),
                complaint_overdue=obj.state not in Complaint.CLOSED and due < timezone.now(),
                complaint_events=[
                    {
                        "at": display.local_time(e.at),
                        "kind": e.get_kind_display(),
                        "actor": display.staff_link(e.actor, user) if e.actor_id else "System",
                        "text": e.text,
                        "change": f"{e.state_from or '-'} to {e.state_to}" if e.state_to else "",
                    }
                    for e in obj.events.select_related("actor")
                ],
                complaint_may_act=user.has_perm(RESPOND) and obj.state not in Complaint.CLOSED,
                complaint_is_points=obj.kind == Complaint.Kind.POINTS_DISPUTE,
            )
        return super().change_view(request, object_id, form_url, context)


# --- terms and conditions ------------------------------------------------------------------------


class TermsForm(FreeTextFormMixin, forms.ModelForm):
    class Meta:
        model = TermsVersion
        fields = ["title", "body", "effective_from"]


@admin.register(TermsVersion)
class TermsVersionAdmin(BaseAdmin):
    form = TermsForm
    change_form_template = "admin/compliance/termsversion/change_form.html"
    list_display = ["version_ref", "title", "effective", "published", "acceptances"]
    list_display_links = ["version_ref"]
    fields = ["title", "body", "effective_from"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("published_by").annotate(n=Count("acceptances"))

    @admin.display(description="Version", ordering="version")
    def version_ref(self, obj):
        return f"v{obj.version}"

    @admin.display(description="Effective from", ordering="effective_from")
    def effective(self, obj):
        return display.local_time(obj.effective_from)

    @admin.display(description="Published")
    def published(self, obj):
        if not obj.is_published:
            return "Draft"
        return format_html("{} by {}", display.local_time(obj.published_at), display.staff_link(obj.published_by))

    @admin.display(description="Acceptances", ordering="n")
    def acceptances(self, obj):
        return f"{obj.n:,}"

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj and obj.is_published)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            saved = consumer.terms_draft_save(
                actor=request.user,
                title=data["title"],
                body=data["body"],
                effective_from=data["effective_from"],
                version=obj if change else None,
            )
        except Refusal as refusal:
            raise PermissionDenied(str(refusal)) from None
        obj.pk, obj.version = saved.pk, saved.version

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/publish/",
                wrap(require_POST(self.publish_view)),
                name="compliance_termsversion_publish",
            ),
            *super().get_urls(),
        ]

    def publish_view(self, request, object_id):
        if not request.user.has_perm("compliance.publish_termsversion"):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No terms version matches the given query.")
        page = HttpResponseRedirect(reverse("admin:compliance_termsversion_change", args=[obj.pk]))
        if request.POST.get("confirm") != f"v{obj.version}":
            self.message_user(request, f"Type v{obj.version} to confirm the publication.", messages.ERROR)
            return page
        try:
            consumer.terms_publish(actor=request.user, version=obj)
        except Refusal as refusal:
            self.message_user(request, f"Refused ({refusal.code}): {refusal}", messages.ERROR)
        else:
            self.message_user(request, f"Terms v{obj.version} published: members accept them at next sign-in.")
        return page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None:
            context.update(
                terms=obj,
                terms_may_publish=not obj.is_published and request.user.has_perm("compliance.publish_termsversion"),
                terms_acceptances=obj.acceptances.count(),
            )
        return super().change_view(request, object_id, form_url, context)
