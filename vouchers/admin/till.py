"""The till's records in the admin (issue 6): shifts, the scan log and the redemption
audit queue.

- Staff shifts and voucher scans: read-only journals, store-scoped (a Store Manager
  sees their stores' rows; headquarters roles all). The shift token's hash is never shown.
- Redemption audit: the random sample of till redemptions, for a Store Manager of the
  store to confirm or mark irregular (``vouchers.services.audit.redemption_audit_review``:
  never their own redemption; irregular raises a fraud alert).
- Fraud alerts are the fraud app's (``fraud.admin``).

Store filters list only the stores the user may see (``staffauth.admin_base.VisibleStoreFilter``).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone

from staffauth.admin_base import (
    VisibleStoreFilter,
    act_on_each,
)
from vouchers.admin.base import ScopedReadOnly
from vouchers.models import RedemptionAudit, StaffShift, VoucherScan
from vouchers.permissions import may_review_audits
from vouchers.services.audit import redemption_audit_review
from vouchers.services.shifts import max_hours, shift_expired


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
    list_display = ["started_at", "ended_at", "is_open", "staff", "store", "till"]
    list_filter = [VisibleStoreFilter, OpenShiftFilter, "started_at"]
    list_select_related = ["staff", "store", "till", "till__store"]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
    fields = ["staff", "store", "till", "started_at", "ended_at"]  # never the token's hash
    readonly_fields = fields

    @admin.display(description="Open", boolean=True)
    def is_open(self, obj):
        return obj.ended_at is None and not shift_expired(obj, timezone.now())


@admin.register(VoucherScan)
class VoucherScanAdmin(ScopedReadOnly):
    list_display = ["created_at", "action", "result", "voucher_short", "store", "till", "staff"]
    list_filter = ["result", VisibleStoreFilter, "action", "created_at"]
    list_select_related = ["store", "till", "till__store", "staff"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = ["created_at", "action", "result", "voucher", "store", "till", "staff"]
    readonly_fields = fields

    @admin.display(description="Voucher")
    def voucher_short(self, obj):
        return str(obj.voucher_id)[:8] if obj.voucher_id else "—"


@admin.register(RedemptionAudit)
class RedemptionAuditAdmin(ScopedReadOnly):
    list_display = ["sampled_at", "store", "cashier", "what", "points", "outcome", "reviewed_by", "reviewed_at"]
    list_filter = ["outcome", VisibleStoreFilter, "sampled_at"]
    list_select_related = ["store", "cashier", "reviewed_by", "voucher_redemption"]
    ordering = ["-sampled_at"]
    actions = ["confirm_selected", "mark_irregular_selected"]
    fields = [
        "sampled_at", "store", "cashier", "voucher_redemption", "ledger_operation", "points", "outcome",
        "reviewed_by", "reviewed_at", "note",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Redemption")
    def what(self, obj):
        if obj.voucher_redemption_id:
            return f"voucher redemption {obj.voucher_redemption_id}"
        return f"points operation {str(obj.ledger_operation_id)[:8]}"

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
            name=lambda audit: str(audit.pk),
        )

    @admin.action(description="Confirm selected redemptions (in order)", permissions=["review"])
    def confirm_selected(self, request, queryset):
        self._review(request, queryset, RedemptionAudit.Outcome.CONFIRMED, "Confirmed")

    @admin.action(description="Mark selected redemptions irregular (alerts the fraud team)", permissions=["review"])
    def mark_irregular_selected(self, request, queryset):
        self._review(request, queryset, RedemptionAudit.Outcome.IRREGULAR, "Marked irregular")
