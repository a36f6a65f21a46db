"""Admin for the outbox (notifications sent) and the daily adjustment reports."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from loyalty.adjustments.models import AdjustmentReport
from loyalty.adjustments.reports import (
    COLUMNS,
    ReportScope,
    adjustment_report_build,
    adjustment_report_csv,
    adjustment_report_visible,
    yesterday,
)
from loyalty.kernel.access_log import AccessLoggedAdminMixin, download_response
from loyalty.kernel.models import OutboundMessage
from staffauth.admin_base import FreeTextFormMixin, JournalAdmin, ReadOnlyAdmin


def _scope(request) -> ReportScope:
    # Resolved once per request: the changelist asks for it for every row and column.
    if not hasattr(request, "_adjustment_report_scope"):
        request._adjustment_report_scope = ReportScope.for_user(request.user)
    return request._adjustment_report_scope


def store_chart(stores: list[dict], *, width: int = 640) -> dict:
    """Geometry of a horizontal bar chart of the points credited and debited per store,
    drawn as inline SVG by the template (no script, no inline style: CSP-safe)."""
    label_w, value_w, row_h, bar_h, top = 70, 80, 34, 11, 4
    span = width - label_w - value_w
    largest = max([s["credited"] for s in stores] + [s["debited"] for s in stores] + [1])
    rows = []
    for i, store in enumerate(stores):
        y = top + i * row_h
        bars = []
        for j, (kind, points) in enumerate((("credit", store["credited"]), ("debit", store["debited"]))):
            length = round(span * points / largest)
            bar_y = y + j * (bar_h + 2)
            bars.append(
                {"kind": kind, "points": points, "x": label_w, "y": bar_y, "width": length, "height": bar_h,
                 "text_x": label_w + length + 6, "text_y": bar_y + bar_h - 1}
            )  # fmt: skip
        rows.append({"store": store["store"], "label_y": y + bar_h + 2, "bars": bars})
    return {"width": width, "height": top * 2 + len(stores) * row_h, "label_x": label_w - 8, "rows": rows}


class ReportDayForm(FreeTextFormMixin, forms.Form):
    """The day of an on-demand report: a past or current local day, yesterday by default."""

    day = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="A local day (programme time zone); today's report covers the requests raised so far.",
    )

    def clean_day(self) -> date:
        day = self.cleaned_data["day"]
        if day > timezone.localdate():
            raise forms.ValidationError("That day has not happened yet: choose today or an earlier day.")
        return day


@admin.register(AdjustmentReport)
class AdjustmentReportAdmin(AccessLoggedAdminMixin, ReadOnlyAdmin):
    access_view_kind = "report"
    access_report_type = "adjustment_report"

    """One report per day. Store managers see their stores' rows only, with totals
    recomputed from them, on the page and in the CSV (``loyalty.adjustments.reports``)."""

    date_hierarchy = "day"
    list_filter = ["day"]
    fields = ["day", "generated_at"]  # never the raw rows: they are filtered per user
    readonly_fields = fields
    change_form_template = "admin/loyalty/adjustmentreport/change_form.html"

    class Media:
        css = {"all": ["loyalty/reports.css"]}

    def get_list_display(self, request):
        scope, seen = _scope(request), {}

        def totals(obj) -> dict:
            if obj.pk not in seen:
                seen[obj.pk] = adjustment_report_visible(obj, scope=scope)[1]
            return seen[obj.pk]

        def column(key: str, description: str):
            @admin.display(description=description)
            def show(obj):
                return f"{totals(obj).get('all', {}).get(key, 0):,}"

            show.__name__ = key  # the column's CSS class: field-count, field-posted, ...
            return show

        @admin.display(description="Flagged staff")
        def flagged(obj):
            return ", ".join(s["username"] for s in totals(obj).get("staff", []) if s["flagged"]) or "—"

        return [
            "day",
            column("count", "Requests"),
            column("posted", "Posted"),
            column("credited", "Points credited"),
            column("debited", "Points debited"),
            flagged,
            "generated_at",
        ]

    def get_urls(self):
        view = self.admin_site.admin_view(self.csv_view)
        return [
            path("build/", self.admin_site.admin_view(self.build_view), name="loyalty_adjustmentreport_build"),
            path("<path:object_id>/csv/", view, name="loyalty_adjustmentreport_csv"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        build_url = reverse("admin:loyalty_adjustmentreport_build", current_app=self.admin_site.name)
        return super().changelist_view(request, {"report_build_url": build_url, **(extra_context or {})})

    def build_view(self, request):
        """Build (or rebuild) the report of a chosen day, for whoever may view reports:
        they then see their part of it. Nothing is mailed (the nightly job does that)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ReportDayForm(request.POST)
            if form.is_valid():
                day = form.cleaned_data["day"]
                report = adjustment_report_build(day=day)
                _, totals = adjustment_report_visible(report, scope=_scope(request))
                count = totals.get("all", {}).get("count", 0)
                if count:
                    self.message_user(
                        request, f"Report for {day:%Y-%m-%d} built: {count:,} request(s).", messages.SUCCESS
                    )
                else:
                    self.message_user(
                        request,
                        f"No adjustment requests were raised on {day:%Y-%m-%d}"
                        + ("" if _scope(request).all_stores else " in your stores")
                        + ": the report is empty.",
                        messages.WARNING,
                    )
                url = reverse(
                    "admin:loyalty_adjustmentreport_change", args=[report.pk], current_app=self.admin_site.name
                )
                return HttpResponseRedirect(url)
        else:
            form = ReportDayForm(initial={"day": yesterday()})
        context = {
            **self.admin_site.each_context(request),
            "title": "Build an adjustment report",
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/loyalty/adjustmentreport/build.html", context)

    def _report(self, request, object_id) -> AdjustmentReport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = self.get_object(request, unquote(object_id))
        if report is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return report

    def csv_view(self, request, object_id):
        """The report as a CSV download, the rows the user may see only."""
        report = self._report(request, object_id)
        rows, _ = adjustment_report_visible(report, scope=_scope(request))
        return download_response(
            request, adjustment_report_csv(report, rows=rows).encode(), filename=f"adjustments-{report.day:%Y-%m-%d}.csv",
            content_type="text/csv; charset=utf-8", report_type="adjustment_report", obj=report,
            parameters={"day": report.day}, rows=len(rows),
        )  # fmt: skip

    def change_view(self, request, object_id, form_url="", extra_context=None):
        report = self._report(request, object_id)  # 403 without the permission, 404 if missing
        rows, totals = adjustment_report_visible(report, scope=_scope(request))
        extra_context = {
            **(extra_context or {}),
            "report_rows": [dict(zip(COLUMNS, row, strict=False)) for row in rows],
            "report_totals": totals,
            "report_chart": store_chart(totals.get("stores", [])),
            "report_empty": not totals.get("all", {}).get("count"),
            "report_csv_url": reverse(
                f"{self.admin_site.name}:loyalty_adjustmentreport_csv",
                args=[report.pk],
                current_app=self.admin_site.name,
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(OutboundMessage)
class OutboundMessageAdmin(JournalAdmin):
    """What the programme sent (or could not): read-only. Members appear by loyalty
    number; their contact details are never stored here."""

    list_display = ["created_at", "channel", "topic", "status", "recipient", "subject", "sent_at"]
    list_filter = ["channel", "status", "topic", "created_at"]
    search_fields = ["subject"]
    date_hierarchy = "created_at"
    list_select_related = ["member"]
    fields = ["created_at", "channel", "recipient", "topic", "subject", "body", "status", "detail", "sent_at"]
    readonly_fields = fields

    @admin.display(description="Recipient")
    def recipient(self, obj):
        return f"member {obj.member.loyalty_number}" if obj.member_id else obj.to
