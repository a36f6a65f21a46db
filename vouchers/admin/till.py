"""The till's records in the admin (issue 6): shifts, the scan log and the redemption
audit queue.

- Staff shifts and voucher scans: read-only journals, store-scoped (a Store Manager
  sees their stores' rows; headquarters roles all). The shift token's hash is never shown.
- Redemption audit: the random sample of till redemptions, for a Store Manager of the
  store to confirm or mark irregular (``vouchers.services.audit.redemption_audit_review``:
  never their own redemption; irregular raises a fraud alert).
- Fraud alerts are the fraud app's (``fraud.admin``).

Store filters list only the stores the user may see (``staffauth.admin_base.VisibleStoreFilter``).
Staff, stores, tills, vouchers and operations by name (``loyalty.workplace.display``),
linked for a viewer who may open them; codes by their labels.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from loyalty.workplace import display
from loyalty.workplace.viewer import current_viewer
from staffauth.admin_base import (
    VisibleStoreFilter,
    act_on_each,
)
from vouchers.admin.base import ScopedReadOnly
from vouchers.models import RedemptionAudit, StaffShift, VoucherScan
from vouchers.permissions import may_review_audits
from vouchers.services.audit import redemption_audit_review
from vouchers.services.redemption import SCAN_OK, SCAN_REPLAYED, RedemptionRefused
from vouchers.services.shifts import max_hours, shift_expired

SCAN_RESULTS = [(SCAN_OK, "Accepted"), (SCAN_REPLAYED, "Replayed (the same request again)")]
REFUSED = "refused"


def scan_result_label(result: str) -> str:
    """``ok`` → Accepted, a refusal's code → its words (``voucher_expired`` → Voucher expired)."""
    return display.choice_label(SCAN_RESULTS, result)


class OpenShiftFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Ended")]

    def queryset(self, request, queryset):
        # A shift past its limit is over even before anything recorded its end.
        limit = timezone.now() - timedelta(hours=max_hours())
        open_now = Q(ended_at__isnull=True, started_at__gt=limit)
        if self.value() == "yes":
            return queryset.filter(open_now)
        if self.value() == "no":
            return queryset.exclude(open_now)
        return queryset


@admin.register(StaffShift)
class StaffShiftAdmin(ScopedReadOnly):
    list_display = ["started", "ended", "where", "staff_ref"]
    list_display_links = ["started"]
    list_filter = [OpenShiftFilter, VisibleStoreFilter, "started_at"]
    list_select_related = ["staff", "store", "till", "till__store"]
    search_fields = ["=staff__username"]
    search_help_text = "A staff member's user name."
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
    fields = ["staff_ref", "store_ref", "till_ref", "started", "ended"]  # never the token's hash
    readonly_fields = fields

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj):
        return display.local_time(obj.started_at)

    @admin.display(description="Ended", ordering="ended_at")
    def ended(self, obj):
        if obj.ended_at is not None:
            return display.local_time(obj.ended_at)
        if shift_expired(obj, timezone.now()):
            return "Over (past the shift limit)"
        return format_html('<span class="flag flag-yes">{}</span>', "Open now")

    @admin.display(description="Till")
    def where(self, obj):
        viewer = current_viewer()
        return display.till_link(obj.till, viewer) if obj.till_id else display.store_link(obj.store, viewer)


class ScanResultFilter(admin.SimpleListFilter):
    title = "result"
    parameter_name = "result"

    def lookups(self, request, model_admin):
        refusals = [(code, scan_result_label(code)) for code in sorted(RedemptionRefused.MESSAGES)]
        return [*SCAN_RESULTS, (REFUSED, "Refused (any reason)"), *refusals]

    def queryset(self, request, queryset):
        if self.value() == REFUSED:
            return queryset.exclude(result__in=[SCAN_OK, SCAN_REPLAYED])
        return queryset.filter(result=self.value()) if self.value() else queryset


@admin.register(VoucherScan)
class VoucherScanAdmin(ScopedReadOnly):
    list_display = ["scanned", "action", "outcome", "voucher_ref", "till_ref", "staff_ref"]
    list_display_links = ["scanned"]
    list_filter = [ScanResultFilter, "action", VisibleStoreFilter, "created_at"]
    list_select_related = ["store", "till", "till__store", "staff", "voucher__reward"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = ["scanned", "action", "outcome", "voucher_ref", "store_ref", "till_ref", "staff_ref"]
    readonly_fields = fields

    @admin.display(description="Scanned", ordering="created_at")
    def scanned(self, obj):
        return display.local_time(obj.created_at)

    @admin.display(description="Result", ordering="result")
    def outcome(self, obj):
        return scan_result_label(obj.result)

    @admin.display(description="Voucher")
    def voucher_ref(self, obj):
        return display.voucher_link(obj.voucher, current_viewer())


@admin.register(RedemptionAudit)
class RedemptionAuditAdmin(ScopedReadOnly):
    list_display = ["sampled", "store_ref", "cashier_ref", "what", "outcome", "reviewed"]
    list_display_links = ["sampled"]
    list_filter = ["outcome", VisibleStoreFilter, "sampled_at"]
    list_select_related = [
        "store", "cashier", "reviewed_by", "voucher_redemption__voucher__reward", "ledger_operation",
    ]  # fmt: skip
    date_hierarchy = "sampled_at"
    ordering = ["-sampled_at"]
    actions = ["confirm_selected", "mark_irregular_selected"]
    fields = ["sampled", "store_ref", "cashier_ref", "what", "outcome", "reviewed", "note"]
    readonly_fields = fields

    @admin.display(description="Sampled", ordering="sampled_at")
    def sampled(self, obj):
        return display.local_time(obj.sampled_at)

    @admin.display(description="Cashier")
    def cashier_ref(self, obj):
        return display.staff_link(obj.cashier, current_viewer())

    @admin.display(description="Redemption")
    def what(self, obj):
        viewer = current_viewer()
        if obj.voucher_redemption_id:
            return display.voucher_link(obj.voucher_redemption.voucher, viewer)
        return format_html(
            "{} ({})", display.points_signed(-obj.points), display.operation_link(obj.ledger_operation, viewer)
        )

    @admin.display(description="Reviewed", ordering="reviewed_at")
    def reviewed(self, obj):
        if obj.reviewed_at is None:
            return ""
        return format_html(
            "{}, {}", display.staff_link(obj.reviewed_by, current_viewer()), display.local_time(obj.reviewed_at)
        )

    def has_review_permission(self, request):
        return may_review_audits(request.user)

    def _review(self, request, queryset, outcome: str, done: str):
        act_on_each(  # one service call each: its checks and, if irregular, its alert
            self,
            request,
            queryset,
            lambda audit: redemption_audit_review(audit_id=audit.pk, reviewer=request.user, outcome=outcome),
            done=done + " {count} redemption(s).",
            not_done="Not reviewed: ",
            name=str,
        )

    @admin.action(description="Confirm selected redemptions (in order)", permissions=["review"])
    def confirm_selected(self, request, queryset):
        self._review(request, queryset, RedemptionAudit.Outcome.CONFIRMED, "Confirmed")

    @admin.action(description="Mark selected redemptions irregular (alerts the fraud team)", permissions=["review"])
    def mark_irregular_selected(self, request, queryset):
        self._review(request, queryset, RedemptionAudit.Outcome.IRREGULAR, "Marked irregular")
