"""Admin for manual adjustments: the approval queue, the request form and page,
the approve/review/reject actions, the document download, the reason codes.

The admin only presents and forwards: every rule (who may request, what evidence a
band needs, who may approve, review or reject) lives in ``loyalty.adjustments.services``. The
buttons a user sees come from ``adjustment_allowed_steps``, and the URLs they post to
call the services again, which re-check everything under the request's row lock; a
refusal becomes a message (decisions) or a form error (requests), never a 500.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from loyalty.adjustments.models import AdjustmentReason, AdjustmentRequest
from loyalty.adjustments.services import (
    APPROVE,
    REJECT,
    REVIEW,
    AdjustmentRefused,
    Evidence,
    adjustment_allowed_steps,
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
    adjustment_request_refusals,
    adjustment_review,
    adjustments_awaiting,
    policy,
)
from loyalty.kernel.access_log import AccessLoggedAdminMixin, download_response
from loyalty.kernel.scoping import sees_all_stores, stores_visible_to
from loyalty.workplace.display import local_time, member_label, operation_label, staff_link
from members.admin_search import member_by_typed_loyalty_number
from members.models import Member
from staffauth.admin_base import BaseAdmin, FreeTextFormMixin, StoreScopedAdmin, add_form_render, form_refused

Band, State = AdjustmentRequest.Band, AdjustmentRequest.State

# What each policy word asks of staff, in the words the request page shows.
EVIDENCE_LABELS = {
    "justification": "a detailed justification",
    "phone_verification": "the member verified by a phone call to the registered number",
    "identity_verification": "the member's identity checked (phone call or identity document in person)",
    "document": "a written justification document (PDF, PNG or JPEG)",
}
APPROVAL_LABELS = {
    "supervisor": "a supervisor (a manager of the requesting store, or a programme administrator)",
    "program_admin": "a programme administrator",
    "fraud_review": "the fraud team's review",
}
BAND_SHORT = {Band.DIRECT: "Small", Band.SUPERVISOR: "Supervisor", Band.HEADQUARTERS: "Headquarters"}
DOCUMENT_SUFFIX = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}


def _band_row(band: str) -> dict | None:
    return next((row for row in policy()["bands"] if row["band"] == band), None)


def _duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _time_left(obj: AdjustmentRequest) -> str:
    if obj.state != State.PENDING:
        return "—"
    now = timezone.now()
    return _duration(obj.expires_at - now) if obj.expires_at > now else "Expired"


def awaiting_count(user) -> int:
    """How many adjustment requests wait for ``user``'s decision (the admin index)."""
    if not user.is_authenticated:
        return 0
    return adjustments_awaiting(user).count()


# --- Changelist filters ----------------------------------------------------------------------


class AwaitingMeFilter(admin.SimpleListFilter):
    title = "awaiting my decision"
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("me", "Awaiting my decision")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(pk__in=adjustments_awaiting(request.user).values("pk"))
        return queryset


class AmountBandFilter(admin.SimpleListFilter):
    title = "amount band"
    parameter_name = "band"

    def lookups(self, request, model_admin):
        return [(band, BAND_SHORT[band]) for band in Band.values]

    def queryset(self, request, queryset):
        return queryset.filter(band=self.value()) if self.value() in Band.values else queryset


class StoreFilter(admin.SimpleListFilter):
    """The user's stores, and headquarters (no store) for those who see every store."""

    title = "store"
    parameter_name = "store"
    HQ = "hq"

    def lookups(self, request, model_admin):
        choices = [(str(store.pk), str(store)) for store in stores_visible_to(request.user).order_by("code")]
        if sees_all_stores(request.user):
            choices.append((self.HQ, "Headquarters (no store)"))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.HQ:
            return queryset.filter(store__isnull=True)
        if value and value.isdigit():
            return queryset.filter(store_id=int(value))
        return queryset


# --- The request form ------------------------------------------------------------------------

# Which field a refusal of the service belongs to; the others show above the form.
REFUSAL_FIELDS = {
    "points_invalid": "points",
    "insufficient_points": "points",
    "own_account": "loyalty_number",
    "reason_inactive": "reason",
    "store_required": "store",
    "justification_required": "justification",
    "verification_required": "verification_method",
    "verification_in_future": "verified_at",
    "document_required": "document",
    "document_too_large": "document",
    "document_type_refused": "document",
}


LOOKUP = "_lookup"  # the name of the form's "Look up" button


class MemberLookupWidget(widgets.AdminTextInputWidget):
    """The loyalty number's box with a "Look up" button: it posts the form back (nothing
    in the URL) and the page names the member found, masked."""

    def render(self, name, value, attrs=None, renderer=None):
        box = super().render(name, value, attrs, renderer)
        button = format_html(
            ' <button type="submit" name="{}" value="1" class="button member-lookup" id="member-lookup" '
            "formnovalidate>Look up</button>",
            LOOKUP,
        )
        return box + button


class AdjustmentRequestForm(FreeTextFormMixin, forms.Form):
    """Parses the request; ``adjustment_request`` decides whether it is allowed."""

    loyalty_number = forms.CharField(
        label="Member (loyalty number)", max_length=16, widget=MemberLookupWidget(),
        help_text="Type the number (spaces allowed) and press Look up to see whose it is.",
    )  # fmt: skip
    points = forms.IntegerField(
        help_text="Positive credits the member, negative debits.",
        # Input sanity only (the policy decides what is allowed): the till's bound.
        min_value=-settings.TILL_MAX_POINTS,
        max_value=settings.TILL_MAX_POINTS,
        widget=widgets.AdminIntegerFieldWidget(),
    )
    # No reason pre-selected: staff choose one (the first in the list is not a default).
    reason = forms.ModelChoiceField(
        queryset=AdjustmentReason.objects.filter(active=True), empty_label="Choose a reason"
    )
    store = forms.ModelChoiceField(queryset=None)
    justification = forms.CharField(
        required=False,
        widget=widgets.AdminTextareaWidget(attrs={"rows": 4}),
        help_text="Required from 500 points: what happened and why the adjustment is right.",
    )
    verification_method = forms.ChoiceField(
        required=False, choices=[("", "—"), *AdjustmentRequest.Verification.choices]
    )
    verified_by = forms.CharField(
        required=False, max_length=120, label="Verified by", widget=widgets.AdminTextInputWidget()
    )
    verified_at = forms.DateTimeField(
        required=False,
        label="Verified at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Local time.",
    )
    verification_outcome = forms.CharField(
        required=False, max_length=200, label="Outcome", widget=widgets.AdminTextInputWidget()
    )
    document = forms.FileField(
        required=False, help_text="Required above 2,000 points: the written justification (PDF, PNG or JPEG)."
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        store = self.fields["store"]
        store.queryset = stores_visible_to(user).filter(active=True).order_by("code")
        if sees_all_stores(user):
            store.required, store.empty_label = False, "Headquarters (no store)"
            store.help_text = "The store that raised the request; headquarters when empty."
        else:
            store.help_text = "One of your stores."
            if len(mine := list(store.queryset[:2])) == 1:
                store.initial = mine[0].pk

    def clean_loyalty_number(self) -> Member:
        return member_by_typed_loyalty_number(self.cleaned_data["loyalty_number"])

    def show_member(self, member: Member | None) -> None:
        """Name the member under the loyalty number (masked name and number)."""
        if member is not None:
            found = format_html('<span id="member-found" class="member-found">{}</span>', member_label(member))
            # The bound field copies its help text when first made (cleaning makes it).
            self.fields["loyalty_number"].help_text = self["loyalty_number"].help_text = found

    def lookup_only(self) -> None:
        """For the "Look up" button: the loyalty number's error only, the member named."""
        self.full_clean()
        for name in list(self._errors):
            if name != "loyalty_number":
                del self._errors[name]
        self.show_member(self.cleaned_data.get("loyalty_number"))

    def evidence(self) -> Evidence:
        """The evidence as far as the form could read it (a field in error counts as empty)."""
        data = self.cleaned_data
        return Evidence(
            justification=data.get("justification") or "",
            verification_method=data.get("verification_method") or "",
            verified_by=data.get("verified_by") or "",
            verified_at=data.get("verified_at"),
            verification_outcome=data.get("verification_outcome") or "",
            document=data.get("document"),
        )

    def add_refusal(self, refusal: AdjustmentRefused) -> None:
        # One error per field: the form's own (a required field left empty) goes first.
        field = REFUSAL_FIELDS.get(refusal.code)
        if field is None or field not in self.errors:
            form_refused(self, refusal, REFUSAL_FIELDS)


REQUEST_FIELDSETS = [
    (None, {"fields": ["loyalty_number", "points", "reason", "store"]}),
    (
        "Evidence",
        {
            "fields": [
                "justification",
                "verification_method",
                ("verified_by", "verified_at"),
                "verification_outcome",
                "document",
            ],
            "description": "What each amount needs is listed above.",
        },
    ),
]


class DecisionForm(FreeTextFormMixin, forms.Form):
    comment = forms.CharField(required=False, max_length=2000)


# --- The admins ------------------------------------------------------------------------------


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(StoreScopedAdmin):
    """The approval queue (changelist), the request form (add) and the request page
    (read-only change view with the decision buttons the user may use)."""

    list_display = ["number", "member_number", "signed_points", "band_short", "store_code", "requester"]
    list_display += ["state", "age", "time_left"]
    list_display_links = ["number"]
    list_filter = [AwaitingMeFilter, "state", StoreFilter, AmountBandFilter]
    search_fields = ["=member__loyalty_number", "=id"]  # see get_search_results
    search_help_text = "A loyalty number or a request number (#123)."
    ordering = ["-requested_at", "-id"]
    list_select_related = ["member", "store", "requested_by"]
    fieldsets = [
        (None, {"fields": ["number", "state", "member", "signed_points", "reason", "store_name", "time_left"]}),
        ("Band", {"fields": ["band", "requirements"]}),
        (
            "Evidence",
            {
                "fields": [
                    "justification",
                    "verification_method",
                    "verified_by",
                    "verified_at",
                    "verification_outcome",
                    "document_link",
                ]
            },
        ),
        (
            "Decisions",
            {
                "fields": [
                    "requested_by",
                    "requested_at",
                    "expires_at",
                    "approved_by",
                    "approved_at",
                    "reviewed_by",
                    "reviewed_at",
                    "operation",
                ]
            },
        ),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    # Requests are raised through the form below and decided through the buttons;
    # nobody edits or deletes one.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        # Exact look-ups only (a loyalty number or a request number), using the indexes.
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        match = Q(member__loyalty_number=term)
        if term.isdigit() and len(term) < 19:
            match |= Q(pk=int(term))
        return queryset.filter(match), False

    # --- columns and fields ---

    @admin.display(description="Request", ordering="id")
    def number(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Member", ordering="member__loyalty_number")
    def member_number(self, obj):
        return obj.member.loyalty_number

    @admin.display(description="Points", ordering="points")
    def signed_points(self, obj):
        return f"{obj.points:+,}"

    @admin.display(description="Band", ordering="band")
    def band_short(self, obj):
        return BAND_SHORT.get(obj.band, obj.band)

    @admin.display(description="Store", ordering="store__code")
    def store_name(self, obj):
        return str(obj.store) if obj.store_id else "Headquarters"

    @admin.display(description="Store", ordering="store__code")
    def store_code(self, obj):
        return obj.store.code if obj.store_id else "HQ"

    @admin.display(description="Requested by", ordering="requested_by__username")
    def requester(self, obj):
        return obj.requested_by.get_username()

    @admin.display(description="Age", ordering="requested_at")
    def age(self, obj):
        return _duration(timezone.now() - obj.requested_at)

    @admin.display(description="Time left", ordering="expires_at")
    def time_left(self, obj):
        return _time_left(obj)

    @admin.display(description="Requirements")
    def requirements(self, obj):
        row = _band_row(obj.band)
        if row is None:
            return "—"
        done = {
            "supervisor": obj.approved_by_id is not None,
            "program_admin": obj.approved_by_id is not None,
            "fraud_review": obj.reviewed_by_id is not None,
        }
        evidence = ", ".join(EVIDENCE_LABELS.get(e, e) for e in row["evidence"]) or "none"
        approvals = "; ".join(
            f"{APPROVAL_LABELS.get(a, a)} ({'done' if done.get(a) else 'waiting'})" for a in row["approvals"]
        )
        member_told = "by email" if row["notify_member"] == "email" else "by their preferred channel"
        return format_html(
            "<p>Evidence: {}.</p><p>Approvals: {}.</p><p>The member is told {} when it posts.{}</p>",
            evidence,
            approvals or "none (posts at once)",
            member_told,
            " Headquarters is notified." if row["notify_hq"] else "",
        )

    @admin.display(description="Document")
    def document_link(self, obj):
        if not obj.document:
            return "—"
        url = reverse("admin:loyalty_adjustmentrequest_document", args=[obj.pk], current_app=self.admin_site.name)
        return format_html('<a href="{}" id="adjustment-document">Download ({})</a>', url, obj.document_type)

    # --- URLs ---

    def get_urls(self):
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"

        def decision(action):
            @require_POST
            def view(request, object_id):
                return self.decision_view(request, object_id, action)

            return wrap(view)

        return [
            path("<path:object_id>/approve/", decision(APPROVE), name=f"{info}_approve"),
            path("<path:object_id>/review/", decision(REVIEW), name=f"{info}_review"),
            path("<path:object_id>/reject/", decision(REJECT), name=f"{info}_reject"),
            path("<path:object_id>/document/", wrap(require_GET(self.document_view)), name=f"{info}_document"),
            *super().get_urls(),
        ]

    def _visible_object(self, request, object_id) -> AdjustmentRequest:
        """The request if the user may view it: no permission is 403, out of scope 404."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No adjustment request matches the given query.")
        return obj

    def _page_url(self, obj) -> str:
        return reverse("admin:loyalty_adjustmentrequest_change", args=[obj.pk], current_app=self.admin_site.name)

    # --- the request page ---

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None and self.has_view_permission(request, obj):
            steps = adjustment_allowed_steps(request.user, obj)
            context.update(
                events=[
                    {
                        "kind": event.kind,
                        "what": event.get_kind_display(),
                        "by": staff_link(event.actor, request.user) if event.actor else f"job {event.actor_job}",
                        "when": local_time(event.created_at),
                        "comment": event.comment,
                    }
                    for event in obj.events.select_related("actor")
                ],
                decision_steps=steps,
                decision_urls={
                    step: reverse(
                        f"admin:loyalty_adjustmentrequest_{step}", args=[obj.pk], current_app=self.admin_site.name
                    )
                    for step in steps
                },
            )
        return super().change_view(request, object_id, form_url, context)

    def decision_view(self, request, object_id, action: str):
        """POST only, CSRF-protected, OTP-verified (admin_view): the service re-checks."""
        obj = self._visible_object(request, object_id)
        form = DecisionForm(request.POST)
        if not form.is_valid():
            # Too long (2,000 characters at most), or text nobody may store (a card number…).
            self.message_user(request, f"Comment: {form.errors['comment'][0]}", messages.ERROR)
            return HttpResponseRedirect(self._page_url(obj))
        comment = form.cleaned_data["comment"]
        try:
            if action == APPROVE:
                decided = adjustment_approve(actor=request.user, request_id=obj.pk, comment=comment)
            elif action == REVIEW:
                decided = adjustment_review(actor=request.user, request_id=obj.pk, comment=comment)
            else:
                decided = adjustment_reject(actor=request.user, request_id=obj.pk, reason=comment)
        except AdjustmentRefused as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
        else:
            self.message_user(request, self._decision_message(decided, action), messages.SUCCESS)
        return HttpResponseRedirect(self._page_url(obj))

    @staticmethod
    def _decision_message(obj: AdjustmentRequest, action: str) -> str:
        if obj.state == State.REJECTED:
            return f"Request #{obj.pk} rejected."
        done = "reviewed" if action == REVIEW else "approved"
        if obj.state == State.POSTED:
            return f"Request #{obj.pk} {done} and posted: {obj.points:+,} points ({operation_label(obj.operation)})."
        return f"Request #{obj.pk} {done}; it waits for its other approval."

    # --- the document ---

    def document_view(self, request, object_id):
        """The private document, to those who may see its request (404 otherwise)."""
        obj = self._visible_object(request, object_id)
        if not obj.document:
            raise Http404("This request has no document.")
        try:
            with obj.document.open("rb") as stored:
                content = stored.read()
        except FileNotFoundError as exc:
            raise Http404("The document is missing from storage.") from exc
        kind = obj.document_type or "application/octet-stream"
        # Our own file name: the uploader's is not trusted in a header.
        name = f"adjustment-{obj.pk}{DOCUMENT_SUFFIX.get(kind, Path(obj.document.name).suffix[:8])}"
        # Recorded as an access event (who downloaded which member's document).
        return download_response(
            request, content, filename=name, content_type=kind, report_type="adjustment_document",
            obj=obj, member_id=obj.member_id,
        )  # fmt: skip

    # --- the request form ---

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = AdjustmentRequestForm(request.POST, request.FILES, user=request.user)
            if LOOKUP in request.POST:
                form.lookup_only()
            elif (obj := self._raise_request(request, form)) is not None:
                self.log_addition(request, obj, [{"added": {}}])
                if obj.state == State.POSTED:
                    text = f"Request #{obj.pk} posted at once: {obj.points:+,} points."
                else:
                    text = f"Request #{obj.pk} raised: {obj.points:+,} points wait for approval."
                self.message_user(request, text, messages.SUCCESS)
                return HttpResponseRedirect(self._page_url(obj))
        else:
            # ``?member=<pk>`` (the member page's link): the member preselected.
            member = self._member_from_query(request)
            initial = {"loyalty_number": member.loyalty_number} if member else {}
            form = AdjustmentRequestForm(user=request.user, initial={**initial, **self._reversal_from_query(request)})
            form.show_member(member)
        return add_form_render(
            self, request, form, REQUEST_FIELDSETS, title="Request a points adjustment", form_url=form_url,
            extra_context=extra_context, band_notes=self._band_notes(),
        )  # fmt: skip

    @staticmethod
    def _member_from_query(request) -> Member | None:
        pk = request.GET.get("member", "")
        return Member.objects.filter(pk=int(pk)).first() if pk.isdigit() and len(pk) < 19 else None

    @staticmethod
    def _reversal_from_query(request) -> dict:
        """``?points=-120&reason=FRAUD_REVERSAL&case=FC-2026-000001`` (a fraud case's
        drafted reversal): the amount, the reason and a justification naming the case,
        preselected; the form and the service check everything as usual."""
        initial: dict = {}
        points = request.GET.get("points", "")
        if points.lstrip("-").isdigit() and len(points) < 12:
            initial["points"] = int(points)
        reason = AdjustmentReason.objects.filter(code=request.GET.get("reason", "")[:40], active=True).first()
        if reason is not None:
            initial["reason"] = reason.pk
        case = request.GET.get("case", "")
        if case and len(case) <= 20 and all(c.isalnum() or c == "-" for c in case):
            initial["justification"] = f"Reversal drafted in fraud case {case}."
        return initial

    @staticmethod
    def _raise_request(request, form: AdjustmentRequestForm) -> AdjustmentRequest | None:
        """The request raised from ``form``, or None with every problem on the form at
        once: the form's own errors and every rule the service would refuse."""
        valid = form.is_valid()
        data = form.cleaned_data
        form.show_member(data.get("loyalty_number"))
        refusals = adjustment_request_refusals(
            actor=request.user,
            member=data.get("loyalty_number"),
            points=data.get("points"),
            reason=data.get("reason"),
            store=data.get("store"),
            evidence=form.evidence(),
        )
        for refusal in refusals:
            form.add_refusal(refusal)
        if not valid or refusals:
            return None
        try:
            return adjustment_request(
                actor=request.user,
                member=data["loyalty_number"],
                points=data["points"],
                reason=data["reason"],
                store=data["store"],
                evidence=form.evidence(),
            )
        except AdjustmentRefused as refusal:  # the rules re-checked under the service's own reading
            form.add_refusal(refusal)
            return None

    @staticmethod
    def _band_notes() -> list[str]:
        notes, low = [], 1
        for row in policy()["bands"]:
            amount = f"{low:,} to {row['up_to']:,} points" if row["up_to"] is not None else f"from {low:,} points"
            evidence = ", ".join(EVIDENCE_LABELS.get(e, e) for e in row["evidence"]) or "no evidence"
            approvals = " and ".join(APPROVAL_LABELS.get(a, a) for a in row["approvals"])
            notes.append(
                f"{amount.capitalize()}: {evidence}; " + (f"needs {approvals}." if approvals else "posts at once.")
            )
            low = (row["up_to"] or 0) + 1
        return notes


@admin.register(AdjustmentReason)
class AdjustmentReasonAdmin(AccessLoggedAdminMixin, BaseAdmin):
    access_config = True  # programme configuration: who changed which reason

    """Reason codes: programme administrators add and rename them, and deactivate the
    ones no longer used (requests keep theirs, so nothing is deleted)."""

    list_display = ["code", "label", "active"]
    list_filter = ["active"]
    search_fields = ["code", "label"]
    ordering = ["code"]

    def get_readonly_fields(self, request, obj=None):
        # The code is what reports and old requests cite: fixed once created.
        return ["code"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False
