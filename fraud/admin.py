"""Fraud alerts in the admin: read-only, store-scoped (``fraud.selectors``); the fraud
team closes them with an action (``fraud.services.fraud_alert_close``). An alert shows
the member's pseudonymous id only, never their number or data."""

from __future__ import annotations

from django.contrib import admin

from fraud.models import FraudAlert
from fraud.permissions import may_close_alerts
from fraud.selectors import fraud_alerts_visible_to
from fraud.services import fraud_alert_close
from staffauth.admin_base import CappedCountPaginator, ReadOnlyAdmin, VisibleStoreFilter, act_on_each


@admin.register(FraudAlert)
class FraudAlertAdmin(ReadOnlyAdmin):
    paginator = CappedCountPaginator
    list_display = ["created_at", "kind", "severity", "status", "store", "staff", "member_ref", "closed_at"]
    list_filter = ["kind", "severity", "status", VisibleStoreFilter, "created_at"]
    list_select_related = ["store", "staff", "member", "closed_by"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    actions = ["close_selected"]
    fields = [
        "created_at", "kind", "severity", "status", "store", "staff", "member_ref", "detail", "closed_at", "closed_by",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        # Restricted here, so the changelist, the change view and the action alike only
        # reach the alerts of the user's stores (others answer 404).
        return fraud_alerts_visible_to(user=request.user, queryset=super().get_queryset(request))

    @admin.display(description="Member")
    def member_ref(self, obj):
        # The pseudonymous id: an alert is not a reason to show a member's number or data.
        return str(obj.member.member_id) if obj.member_id else "—"

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
            name=lambda alert: str(alert.pk),
        )
