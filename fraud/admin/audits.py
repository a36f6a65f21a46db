"""Headquarters' monthly rationale audit (FRAUD.md row 10) in the admin: the adjustments
drawn for the month (``fraud.detectors.adjustments.adjust_rationale_audit``), each named
and linked (the adjustment by its points, the requester by name), with two actions that
record the verdict through ``audit_sample_record`` (once per sample; a failed rationale
raises an alert on the requester). Fraud analysts audit: they review adjustments and make
none, so nobody audits their own."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from fraud.detectors.adjustments import audit_sample_record
from fraud.models import AuditSample
from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from staffauth.admin_base import CappedCountPaginator, ReadOnlyAdmin, act_on_each


def _sample_name(sample: AuditSample) -> str:
    return f"Adjustment #{sample.adjustment_id} ({sample.month:%B %Y})"


@admin.register(AuditSample)
class AuditSampleAdmin(ViewerAdminMixin, ReadOnlyAdmin):
    paginator = CappedCountPaginator
    list_display = ["month_ref", "adjustment_ref", "band", "requester", "flagged_staff", "verdict", "audited"]
    list_display_links = None
    list_filter = ["outcome", "band", "flagged_staff", "month"]
    list_select_related = ["adjustment", "staff", "audited_by"]
    actions = ["mark_passed", "mark_failed"]

    @admin.display(description="Month", ordering="month")
    def month_ref(self, obj):
        return f"{obj.month:%B %Y}"

    @admin.display(description="Adjustment")
    def adjustment_ref(self, obj):
        return display.link(obj.adjustment, str(obj.adjustment), current_viewer())

    @admin.display(description="Requested by")
    def requester(self, obj):
        return display.staff_link(obj.staff, current_viewer())

    @admin.display(description="Verdict", ordering="outcome")
    def verdict(self, obj):
        return obj.get_outcome_display()

    @admin.display(description="Audited")
    def audited(self, obj):
        if obj.audited_at is None:
            return display.NOTHING
        return format_html(
            "{} by {}", display.local_time(obj.audited_at), display.staff_link(obj.audited_by, current_viewer())
        )

    def has_audit_permission(self, request):
        return request.user.has_perm("loyalty.review_adjustmentrequest")

    def _record(self, request, queryset, outcome: str, done: str) -> None:
        act_on_each(  # one service call each: its checks, once per sample
            self,
            request,
            queryset,
            lambda sample: audit_sample_record(sample_id=sample.pk, outcome=outcome, actor=request.user),
            done=done,
            not_done="Not recorded: ",
            name=_sample_name,
        )

    @admin.action(description="Rationale sound", permissions=["audit"])
    def mark_passed(self, request, queryset):
        self._record(request, queryset, AuditSample.Outcome.PASSED, "Recorded {count} sound rationale(s).")

    @admin.action(description="Rationale failed (alerts on the requester)", permissions=["audit"])
    def mark_failed(self, request, queryset):
        self._record(request, queryset, AuditSample.Outcome.FAILED, "Recorded {count} failed rationale(s).")
