"""The reward catalogue and vouchers in the admin (issue 6).

- Rewards: Program Administrators add and change them; they are deactivated, never
  deleted (vouchers refer to them).
- Vouchers: read-only. The code is a bearer credential and is never shown, only its
  last four symbols. "Add" is the goodwill form (``voucher_goodwill_issue``) for roles
  with a goodwill limit; "Revoke" is an action with a reason (``voucher_revoke``).
- Scope: vouchers belong to members, not stores. A store-scoped user (store manager)
  sees the vouchers of members whose home store is one of theirs, those redeemed at
  one of their stores, and those they issued; headquarters roles see all.
- Shown by name (``loyalty.workplace.display``): a voucher by its reward and masked
  code, the member by masked name and loyalty number. Searched by the whole code as a
  member reads it out (any case, spaces or dashes; its check character catches a typing
  error, said as such), by a member's loyalty number or member id, or by the voucher id.
- The goodwill form takes ``?member=<member pk>`` (the member page links there) to fill
  in the member; an unknown member, or one outside the user's stores, is ignored.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from loyalty.kernel.access_log import AccessLoggedAdminMixin
from loyalty.kernel.scoping import sees_all_stores, stores_visible_to
from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from members.admin_search import member_by_typed_loyalty_number, member_lookup
from members.models import Member
from staffauth.admin_base import (
    BaseAdmin,
    CappedCountPaginator,
    FreeTextFormMixin,
    act_on_each,
    add_form_render,
    form_refused,
)
from staffauth.posted_search import PostedSearch, PostedSearchAdminMixin
from vouchers.admin import offline, till  # noqa: F401  (register the till's admin pages first)
from vouchers.models import Reward, Voucher
from vouchers.permissions import goodwill_limit, may_revoke_vouchers
from vouchers.selectors import EXPIRED, voucher_state, vouchers_visible_to
from vouchers.services.codes import CodeInvalid, code_normalise
from vouchers.services.issuing import REASON_MAX, VoucherRefused, voucher_goodwill_issue, voucher_revoke


def code_masked(code: str) -> str:
    """Only the last four symbols of a code: enough to match a voucher a member reads out."""
    return display.voucher_code_masked(code) if code else ""


def member_preselected(user, value: str | None) -> Member | None:
    """The member ``?member=<pk>`` names, if the user may see them (a store-scoped
    user: members of their stores); None otherwise, silently."""
    if not value or not value.isascii() or not value.isdigit():
        return None
    members = Member.objects.filter(pk=int(value))
    if not sees_all_stores(user):
        members = members.filter(home_store__in=stores_visible_to(user).values("pk"))
    return members.first()


# --- rewards -------------------------------------------------------------------------------------


@admin.register(Reward)
class RewardAdmin(AccessLoggedAdminMixin, BaseAdmin):
    access_config = True  # programme configuration: who changed which reward

    list_display = ["name", "kind", "points_price", "min_tier", "stock", "per_member_limit", "active", "window"]
    list_filter = ["kind", "active", "min_tier"]
    search_fields = ["name"]
    ordering = ["points_price", "name"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "active"]}),
        ("What the member gets", {"fields": ["kind", "value_minor", "percent", "item", "valid_days"]}),
        (
            "Who may buy it, and when",
            {
                "fields": [
                    "points_price",
                    "min_tier",
                    "per_member_limit",
                    "stock_remaining",
                    "available_from",
                    "available_until",
                ]
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Stock", ordering="stock_remaining")
    def stock(self, obj):
        return "unlimited" if obj.stock_remaining is None else f"{obj.stock_remaining:,}"

    @admin.display(description="Available")
    def window(self, obj):
        start = f"{timezone.localtime(obj.available_from):%Y-%m-%d %H:%M}" if obj.available_from else "…"
        end = f"{timezone.localtime(obj.available_until):%Y-%m-%d %H:%M}" if obj.available_until else "…"
        return "always" if not (obj.available_from or obj.available_until) else f"{start} to {end}"

    def has_delete_permission(self, request, obj=None):
        # Vouchers refer to their reward; a reward is switched off (active), not deleted.
        return False


# --- vouchers ------------------------------------------------------------------------------------


class VoucherActionForm(FreeTextFormMixin, helpers.ActionForm):
    reason = forms.CharField(required=False, max_length=REASON_MAX, label="Reason", help_text="Required to revoke.")


class GoodwillForm(FreeTextFormMixin, forms.Form):
    """Parses the goodwill request; ``voucher_goodwill_issue`` decides whether it is allowed."""

    loyalty_number = forms.CharField(
        label="Member (loyalty number)", max_length=16, widget=widgets.AdminTextInputWidget()
    )
    reward = forms.ModelChoiceField(queryset=Reward.objects.none(), empty_label=None)
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=widgets.AdminTextareaWidget(attrs={"rows": 3}),
        help_text="Why the member gets it (kept with the voucher and in the audit log).",
    )
    # A one-time id drawn when the form is shown: sending the same form twice (a double
    # click, a resubmitted page) issues one voucher.
    submission = forms.RegexField(regex=r"\A[0-9a-f]{32}\Z", widget=forms.HiddenInput)

    def __init__(self, *args, limit: int, member: Member | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["submission"] = uuid.uuid4().hex
            if member is not None:
                self.initial["loyalty_number"] = member.loyalty_number
                self.fields["loyalty_number"].help_text = display.member_label(member)
        self.fields["reward"].queryset = Reward.objects.filter(active=True, points_price__lte=limit).order_by(
            "points_price", "name"
        )
        self.fields["reward"].help_text = f"Active rewards up to your goodwill limit ({limit:,} points)."

    def clean_loyalty_number(self) -> Member:
        return member_by_typed_loyalty_number(self.cleaned_data["loyalty_number"])


GOODWILL_FIELDSETS = [(None, {"fields": ["loyalty_number", "reward", "reason", "submission"]})]
GOODWILL_FIELDS = {
    "own_member_account": "loyalty_number",
    "member_not_active": "loyalty_number",
    "reason_required": "reason",
}


# The most vouchers one search keeps (a member has a few dozen; a code names one).
SEARCH_MAX = 500


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [("expired", "Expired"), ("7d", "Expires within 7 days"), ("later", "Expires later")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "7d":
            return queryset.filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=7))
        if self.value() == "later":
            return queryset.filter(expires_at__gt=now + timedelta(days=7))
        return queryset


@admin.register(Voucher)
class VoucherAdmin(PostedSearchAdminMixin, ViewerAdminMixin, BaseAdmin):
    paginator = CappedCountPaginator  # a large table: never a full COUNT
    list_display = ["voucher", "member_ref", "state", "source", "issued", "expires"]
    list_filter = ["status", "source", ("reward", admin.RelatedOnlyFieldListFilter), ExpiryFilter, "issued_at"]
    list_select_related = ["reward", "member"]
    search_fields = ["=id", "=member__loyalty_number"]  # shows the box; posted_search_find searches
    search_help_text = (
        "The voucher code as the member reads it, a member's loyalty number or member id, or a voucher id."
    )
    ordering = ["-issued_at"]
    date_hierarchy = "issued_at"
    action_form = VoucherActionForm
    actions = ["revoke_selected"]
    fields = [
        "masked_code", "reward", "member_ref", "state", "status", "source", "points_paid", "operation_ref",
        "issued_by_ref", "issue_reason", "issued", "expires", "redeemed", "reported", "revoked",
        "revoked_by_ref", "revoke_reason",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return vouchers_visible_to(request.user, super().get_queryset(request))

    def posted_search_find(self, request, term: str) -> PostedSearch:
        """The vouchers ``term`` names, among those the viewer sees: a code (as the
        member reads it, checked by its check character), a member's loyalty number or
        member id, or a voucher id. The label never holds a code in clear."""
        term = term.strip()
        queryset = self.get_queryset(request)
        lookup = member_lookup(term)  # a loyalty number, or a UUID as a member id
        try:
            voucher_id = uuid.UUID(term)
        except ValueError:
            voucher_id = None
        if voucher_id is not None:
            found, label = queryset.filter(Q(pk=voucher_id) | lookup), str(voucher_id)
        elif lookup is not None:
            found, label = queryset.filter(lookup), term
        else:
            try:
                code = code_normalise(term)
            except CodeInvalid as refusal:
                # A mistyped code finds nothing: say why instead of an empty list.
                self.message_user(request, str(refusal), messages.WARNING)
                return PostedSearch((), "a code that is not valid")
            found, label = queryset.filter(code=code), f"the code {code_masked(code)}"
        return PostedSearch(tuple(found.values_list("pk", flat=True)[:SEARCH_MAX]), label)

    @admin.display(description="Voucher", ordering="reward__name")
    def voucher(self, obj):
        return display.voucher_label(obj)

    @admin.display(description="Code")
    def masked_code(self, obj):
        return code_masked(obj.code)

    @admin.display(description="Member", ordering="member__loyalty_number")
    def member_ref(self, obj):
        return display.member_link(obj.member, current_viewer())

    @admin.display(description="State")
    def state(self, obj):
        return display.choice_label([*Voucher.Status.choices, (EXPIRED, "Expired")], voucher_state(obj))

    @admin.display(description="Issued", ordering="issued_at")
    def issued(self, obj):
        return display.local_time(obj.issued_at)

    @admin.display(description="Expires", ordering="expires_at")
    def expires(self, obj):
        return display.local_time(obj.expires_at)

    @admin.display(description="Redeemed at")
    def redeemed(self, obj):
        return display.local_time(obj.redeemed_at)

    @admin.display(description="Reported lost at")
    def reported(self, obj):
        return display.local_time(obj.reported_at)

    @admin.display(description="Revoked at")
    def revoked(self, obj):
        return display.local_time(obj.revoked_at)

    @admin.display(description="Paid by (points operation)")
    def operation_ref(self, obj):
        return display.operation_link(obj.ledger_operation, current_viewer())

    @admin.display(description="Issued by")
    def issued_by_ref(self, obj):
        return display.staff_link(obj.issued_by, current_viewer())

    @admin.display(description="Revoked by")
    def revoked_by_ref(self, obj):
        return display.staff_link(obj.revoked_by, current_viewer())

    # Read-only: vouchers change only through the services (revoke below).
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        # "Add" is the goodwill form: roles with a goodwill limit.
        return goodwill_limit(request.user) is not None

    def has_revoke_permission(self, request):
        return may_revoke_vouchers(request.user)

    @admin.action(description="Revoke selected vouchers (give a reason)", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, "Give a reason to revoke vouchers.", messages.ERROR)
            return None
        act_on_each(  # one service call each: its checks, its event, its audit entry
            self,
            request,
            queryset,
            lambda voucher: voucher_revoke(staff=request.user, voucher_id=voucher.pk, reason=reason),
            done="Revoked {count} voucher(s).",
            not_done="Not revoked: ",
            name=display.voucher_label,
        )
        return None

    def add_view(self, request, form_url="", extra_context=None):
        limit = goodwill_limit(request.user)
        if limit is None:
            raise PermissionDenied
        member = None if request.method == "POST" else member_preselected(request.user, request.GET.get("member"))
        form = GoodwillForm(request.POST or None, limit=limit, member=member)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                voucher = voucher_goodwill_issue(
                    staff=request.user, member=data["loyalty_number"], reward=data["reward"], reason=data["reason"],
                    issue_key=data["submission"],
                )  # fmt: skip
            except VoucherRefused as refusal:
                form_refused(form, refusal, GOODWILL_FIELDS)
            else:
                self.message_user(
                    request,
                    f"Goodwill voucher {display.voucher_label(voucher)} issued to member "
                    f"{display.member_label(data['loyalty_number'])}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:vouchers_voucher_change", args=[voucher.pk]))
        return add_form_render(
            self, request, form, GOODWILL_FIELDSETS, title="Issue a goodwill voucher", form_url=form_url,
            extra_context=extra_context,
        )  # fmt: skip
