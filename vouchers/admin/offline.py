"""The offline redemption queue and the till's points redemptions in the admin (issue 6).

- Offline redemptions (``PendingRedemption``): what tills attempted while offline, never
  honoured as they stand. Store-scoped (a Store Manager sees their stores' queue;
  headquarters roles all), read-only, with two actions for holders of
  ``vouchers.decide_pendingredemption``: approve (``vouchers.services.offline.pending_redemption_approve``:
  carried out online after every normal check) and reject
  (``pending_redemption_reject``); the member is told either way.
- Till points redemptions (``TillRedemption``): a read-only, store-scoped journal of the
  holds, their authorisation, override and settlement. Loyalty numbers never appear in
  full (the member's pseudonymous id only).

Registered by ``vouchers.admin`` importing this module.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from staffauth.admin_base import (
    VisibleStoreFilter,
    act_on_each,
)
from vouchers.admin.base import ScopedReadOnly
from vouchers.models import PendingRedemption, TillRedemption
from vouchers.permissions import may_decide_offline
from vouchers.services.offline import pending_redemption_approve, pending_redemption_reject

REJECT_REASON = "Not approved after review by the store."


@admin.register(PendingRedemption)
class PendingRedemptionAdmin(ScopedReadOnly):
    list_display = ["received_at", "attempted_at", "store", "till", "staff", "what", "member_ref", "status"]
    list_filter = ["status", VisibleStoreFilter, "received_at"]
    list_select_related = ["store", "till", "till__store", "staff", "member", "voucher"]
    ordering = ["-received_at"]
    actions = ["approve_selected", "reject_selected"]
    fields = [
        "id", "status", "store", "till", "staff", "member_ref", "what", "attempted_at", "received_at",
        "decided_by", "decided_at", "decision_note", "ledger_operation",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Redemption")
    def what(self, obj):
        if obj.points is not None:
            return f"{obj.points:,} points"
        return f"voucher {str(obj.voucher_id)[:8]}"

    def has_decide_permission(self, request):
        return may_decide_offline(request.user)

    def _decide(self, request, queryset, decide, done: str):
        act_on_each(  # one service call each: its own checks and notice
            self,
            request,
            queryset,
            decide,
            done=done + " {count} offline redemption(s).",
            not_done="Not decided: ",
            name=lambda pending: str(pending.pk)[:8],
        )

    @admin.action(description="Approve selected (carried out now, with every check)", permissions=["decide"])
    def approve_selected(self, request, queryset):
        self._decide(
            request, queryset, lambda p: pending_redemption_approve(pending_id=p.pk, actor=request.user), "Approved"
        )

    @admin.action(description="Reject selected (nothing is redeemed; the member is told)", permissions=["decide"])
    def reject_selected(self, request, queryset):
        self._decide(
            request,
            queryset,
            lambda p: pending_redemption_reject(pending_id=p.pk, actor=request.user, reason=REJECT_REASON),
            "Rejected",
        )


@admin.register(TillRedemption)
class TillRedemptionAdmin(ScopedReadOnly):
    list_display = [
        "created_at", "store", "till", "staff", "points", "override_by", "authorised_via", "captured_points", "state",
    ]  # fmt: skip
    list_filter = ["authorised_via", VisibleStoreFilter, "created_at"]
    list_select_related = ["store", "till", "till__store", "staff", "override_by", "hold_operation"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fields = [
        "hold_operation", "store", "till", "staff", "shift", "member_ref", "points", "override_by",
        "authorised_via", "authorised_at", "created_at", "captured_at", "captured_points", "capture_shift",
        "voided_at", "receipt",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="State")
    def state(self, obj):
        if obj.captured_at:
            return "captured"
        if obj.voided_at:
            return "voided"
        lapses = obj.hold_operation.hold_expires_at
        if lapses and lapses <= timezone.now():
            return "lapsed"  # the sweeper voids it in the ledger
        return "authorised" if obj.authorised_at else "awaiting the member"
