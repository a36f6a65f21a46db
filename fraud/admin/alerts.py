"""Fraud alerts in the admin: read-only, store-scoped (``fraud.selectors``); the fraud
team closes them with an action (``fraud.services.fraud_alert_close``).

Everything by name (``loyalty.workplace.display``): the member by masked name and loyalty
number, linked for a viewer who may open members; the staff member, store and till by
name; the facts of the alert as a table whose ids are named and linked (a voucher by its
masked code, an operation by what and when), never raw JSON. Searchable by the member's
loyalty number or member id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError

from fraud import admin_reports  # noqa: F401  (registers the fraud reports)
from fraud.models import KIND_LABELS, FraudAlert
from fraud.permissions import may_close_alerts
from fraud.selectors import fraud_alerts_visible_to
from fraud.services import fraud_alert_close
from loyalty.kernel.models import Till
from loyalty.ledger.selectors import operations
from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from members.admin_search import member_lookup
from staffauth.admin_base import CappedCountPaginator, ReadOnlyAdmin, VisibleStoreFilter, act_on_each
from staffauth.models import StaffUser
from vouchers.models import RedemptionAudit, StaffShift, Voucher, VoucherRedemption

FACT_LABELS = {
    "voucher_id": "Voucher",
    "till_id": "Till",
    "redeemed_at_till_id": "Redeemed at till",
    "audit_id": "Sampled redemption",
    "voucher_redemption_id": "Voucher redeemed",
    "ledger_operation_id": "Points operation",
    "reviewed_by": "Reviewed by",
    "shift_id": "Shift",
    "window_minutes": "Window (minutes)",
    "redemptions": "Redemptions in the window",
    "threshold": "Alert threshold",
    "points": "Points",
    "day": "Day",
}


def _named(records, text: Callable[[Any], str], related=()) -> Callable[[Any, Any], Any]:
    """A fact's id as the named, linked record (the id itself if it is gone); ``records``
    answers the queryset to look in (a manager's ``all`` or a selector)."""

    def shown(value, viewer):
        try:
            obj = records().select_related(*related).filter(pk=value).first()
        except (ValueError, TypeError, ValidationError):  # not an id of this model
            obj = None
        return display.link(obj, text(obj), viewer) if obj is not None else value

    return shown


FACT_RECORDS: dict[str, Callable[[Any, Any], Any]] = {
    "voucher_id": _named(Voucher.objects.all, display.voucher_label, ["reward"]),
    "till_id": _named(Till.objects.all, display.till_label, ["store"]),
    "redeemed_at_till_id": _named(Till.objects.all, display.till_label, ["store"]),
    "audit_id": _named(RedemptionAudit.objects.all, str),
    "voucher_redemption_id": _named(VoucherRedemption.objects.all, str, ["voucher__reward"]),
    "ledger_operation_id": _named(operations, display.operation_label),
    "reviewed_by": _named(StaffUser.objects.all, display.staff_label),
    "shift_id": _named(StaffShift.objects.all, str, ["staff", "store", "till__store"]),
}


def alert_facts(alert: FraudAlert, viewer) -> Any:
    """The alert's ``detail`` as a table, its ids as the records they name."""
    facts = {
        key: (FACT_RECORDS[key](value, viewer) if key in FACT_RECORDS and value is not None else value)
        for key, value in (alert.detail or {}).items()
    }
    return display.facts_table(facts, labels=FACT_LABELS)


class KindFilter(admin.SimpleListFilter):
    """The kinds of alert by what they mean (``kind`` is a code without choices)."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return list(KIND_LABELS.items())

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(FraudAlert)
class FraudAlertAdmin(ViewerAdminMixin, ReadOnlyAdmin):
    paginator = CappedCountPaginator
    list_display = ["raised", "what", "severity", "status", "where", "staff_ref", "member_ref", "case_ref", "closed"]
    list_display_links = ["raised", "what"]
    list_filter = ["status", KindFilter, "severity", VisibleStoreFilter, "created_at"]
    list_select_related = ["store", "staff", "member", "closed_by", "case"]
    search_fields = ["=member__loyalty_number"]  # the term is read by get_search_results
    search_help_text = "A member's loyalty number or member id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    actions = ["close_selected"]
    fields = [
        "raised", "what", "severity", "status", "where", "staff_ref", "member_ref", "case_ref", "facts", "closed",
        "closed_by_ref",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        # Restricted here, so the changelist, the change view and the action alike only
        # reach the alerts of the user's stores (others answer 404).
        return fraud_alerts_visible_to(user=request.user, queryset=super().get_queryset(request))

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        lookup = member_lookup(search_term)
        return (queryset.filter(lookup) if lookup is not None else queryset.none()), False

    @admin.display(description="Raised", ordering="created_at")
    def raised(self, obj):
        return display.local_time(obj.created_at)

    @admin.display(description="Alert", ordering="kind")
    def what(self, obj):
        return obj.get_kind_display()

    @admin.display(description="Store", ordering="store__code")
    def where(self, obj):
        return display.store_link(obj.store, current_viewer())

    @admin.display(description="Staff")
    def staff_ref(self, obj):
        return display.staff_link(obj.staff, current_viewer())

    @admin.display(description="Member")
    def member_ref(self, obj):
        return display.member_link(obj.member, current_viewer())

    @admin.display(description="Case")
    def case_ref(self, obj):
        case = obj.case
        return display.link(case, case.reference or f"#{case.pk}", current_viewer()) if case is not None else "—"

    @admin.display(description="Facts")
    def facts(self, obj):
        return alert_facts(obj, current_viewer())

    @admin.display(description="Closed", ordering="closed_at")
    def closed(self, obj):
        return display.local_time(obj.closed_at) if obj.closed_at else ""

    @admin.display(description="Closed by")
    def closed_by_ref(self, obj):
        return display.staff_link(obj.closed_by, current_viewer())

    def has_close_permission(self, request):
        return may_close_alerts(request.user)

    @admin.action(description="Close selected alerts", permissions=["close"])
    def close_selected(self, request, queryset):
        act_on_each(  # one service call each: its checks, once per alert
            self,
            request,
            queryset,
            lambda alert: fraud_alert_close(alert_id=alert.pk, actor=request.user),
            done="Closed {count} alert(s).",
            not_done="Not closed: ",
            name=str,
        )
