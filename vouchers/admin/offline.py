"""The offline redemption queue and the till's points redemptions in the admin (issue 6).

- Offline redemptions (``PendingRedemption``): what tills attempted while offline, never
  honoured as they stand. Store-scoped (a Store Manager sees their stores' queue;
  headquarters roles all), read-only, with two actions for holders of
  ``vouchers.decide_pendingredemption``: approve (``vouchers.services.offline.pending_redemption_approve``:
  carried out online after every normal check) and reject
  (``pending_redemption_reject``); the member is told either way.
- Till points redemptions (``TillRedemption``): a read-only, store-scoped journal of the
  holds, their authorisation, override and settlement.

Members by masked name and loyalty number, tills, staff and operations by name (linked
for a viewer who may open them); searchable by the member's loyalty number or member id.

Registered by ``vouchers.admin`` importing this module.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from loyalty.workplace import display
from loyalty.workplace.viewer import current_viewer
from staffauth.admin_base import (
    VisibleStoreFilter,
    act_on_each,
)
from vouchers.admin.base import ScopedReadOnly
from vouchers.models import PendingRedemption, TillRedemption
from vouchers.permissions import may_decide_offline
from vouchers.services.offline import pending_redemption_approve, pending_redemption_reject

REJECT_REASON = "Not approved after review by the store."
MEMBER_SEARCH_HELP = "A member's loyalty number (in groups or not) or member id."


@admin.register(PendingRedemption)
class PendingRedemptionAdmin(ScopedReadOnly):
    list_display = ["received", "attempted", "till_ref", "staff_ref", "member_ref", "what", "status"]
    list_display_links = ["received"]
    list_filter = ["status", VisibleStoreFilter, "received_at"]
    list_select_related = ["store", "till", "till__store", "staff", "member", "voucher", "voucher__reward"]
    search_fields = ["=member__loyalty_number"]  # read by get_search_results: loyalty number or member id
    search_help_text = MEMBER_SEARCH_HELP
    date_hierarchy = "received_at"
    ordering = ["-received_at"]
    actions = ["approve_selected", "reject_selected"]
    fields = [
        "status", "store_ref", "till_ref", "staff_ref", "member_ref", "what", "attempted", "received",
        "decided_by_ref", "decided", "decision_note", "operation_ref",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Received", ordering="received_at")
    def received(self, obj):
        return display.local_time(obj.received_at)

    @admin.display(description="Attempted (offline)", ordering="attempted_at")
    def attempted(self, obj):
        return display.local_time(obj.attempted_at)

    @admin.display(description="Redemption")
    def what(self, obj):
        if obj.points is not None:
            return display.points_signed(-obj.points)  # the member's points, going out
        return display.voucher_link(obj.voucher, current_viewer())

    @admin.display(description="Decided by")
    def decided_by_ref(self, obj):
        return display.staff_link(obj.decided_by, current_viewer())

    @admin.display(description="Decided at")
    def decided(self, obj):
        return display.local_time(obj.decided_at)

    @admin.display(description="Points operation")
    def operation_ref(self, obj):
        return display.operation_link(obj.ledger_operation, current_viewer())

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
            name=str,
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


class SettlementFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Held (not settled)"), ("captured", "Captured"), ("voided", "Voided")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(captured_at__isnull=True, voided_at__isnull=True)
        if self.value() == "captured":
            return queryset.filter(captured_at__isnull=False)
        if self.value() == "voided":
            return queryset.filter(voided_at__isnull=False)
        return queryset


@admin.register(TillRedemption)
class TillRedemptionAdmin(ScopedReadOnly):
    list_display = ["created", "till_ref", "cashier", "member_ref", "points_out", "authorised_via", "state"]
    list_display_links = ["created"]
    list_filter = [SettlementFilter, "authorised_via", VisibleStoreFilter, "created_at"]
    list_select_related = ["store", "till", "till__store", "staff", "override_by", "hold_operation", "member"]
    search_fields = ["=member__loyalty_number"]  # read by get_search_results: loyalty number or member id
    search_help_text = MEMBER_SEARCH_HELP
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fields = [
        "state", "store_ref", "till_ref", "cashier", "shift_ref", "member_ref", "points_out", "authorised_via",
        "authorised", "created", "captured", "captured_points_out", "capture_shift_ref", "voided", "operation_ref",
        "receipt_facts",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Held at", ordering="created_at")
    def created(self, obj):
        return display.local_time(obj.created_at)

    @admin.display(description="Cashier")
    def cashier(self, obj):
        viewer = current_viewer()
        if obj.override_by_id is None:
            return display.staff_link(obj.staff, viewer)
        return format_html(
            "{} <small>(override: {})</small>",
            display.staff_link(obj.staff, viewer),
            display.staff_link(obj.override_by, viewer),
        )

    @admin.display(description="Points", ordering="points")
    def points_out(self, obj):
        return display.points_signed(-obj.points)  # held from the member's points

    @admin.display(description="Points captured")
    def captured_points_out(self, obj):
        return display.points_signed(-obj.captured_points) if obj.captured_points is not None else display.NOTHING

    @admin.display(description="Shift")
    def shift_ref(self, obj):
        return display.link(obj.shift, str(obj.shift), current_viewer())

    @admin.display(description="Capture shift")
    def capture_shift_ref(self, obj):
        shift = obj.capture_shift
        return display.link(shift, str(shift), current_viewer()) if shift else display.NOTHING

    @admin.display(description="Authorised at")
    def authorised(self, obj):
        return display.local_time(obj.authorised_at)

    @admin.display(description="Captured at")
    def captured(self, obj):
        return display.local_time(obj.captured_at)

    @admin.display(description="Voided at")
    def voided(self, obj):
        return display.local_time(obj.voided_at)

    @admin.display(description="Hold (points operation)")
    def operation_ref(self, obj):
        return display.operation_link(obj.hold_operation, current_viewer())

    @admin.display(description="Receipt")
    def receipt_facts(self, obj):
        return display.facts_table(obj.receipt)

    @admin.display(description="State")
    def state(self, obj):
        if obj.captured_at:
            return "Captured"
        if obj.voided_at:
            return "Voided"
        lapses = obj.hold_operation.hold_expires_at
        if lapses and lapses <= timezone.now():
            return "Lapsed"  # the sweeper voids it in the ledger
        return "Authorised" if obj.authorised_at else "Awaiting the member"
