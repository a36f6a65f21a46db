"""Fraud reports in the admin: the list, the report page (trend charts drawn on the server,
names for every subject), the CSV download and a build form for a chosen day.

Who sees what (``fraud.reports.fraud_report_visible``): the fraud team and programme
administrators everything; store managers their stores' alert counts only (no staff,
no subjects, no cases, no targets); nobody else (``fraud.view_fraudreport``). Building on
demand writes a programme-wide record, so only users who see every store may build.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from fraud.models import KIND_LABELS, FraudCase, FraudReport
from fraud.reports import (
    ReportRefused,
    ReportScope,
    fraud_report_build,
    fraud_report_csv,
    fraud_report_visible,
    today,
    trend,
)
from loyalty.kernel.access_log import AccessLoggedAdminMixin, download_response
from loyalty.kernel.models import Store, Till
from loyalty.workplace import charts, display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from members.models import Member
from staffauth.admin_base import FreeTextFormMixin, ReadOnlyAdmin
from staffauth.models import StaffUser


def _scope(request) -> ReportScope:
    if not hasattr(request, "_fraud_report_scope"):
        request._fraud_report_scope = ReportScope.for_user(request.user)
    return request._fraud_report_scope


def detector_label(code: str) -> str:
    return KIND_LABELS.get(code) or code.replace("_", " ").capitalize()


def subject_names(keys: list[str], viewer) -> dict[str, Any]:
    """Subject keys (``member:12``) as named links, one query per kind."""
    ids: dict[str, list[int]] = {}
    for key in keys:
        kind, _, ident = key.partition(":")
        if kind != "client" and ident.isdigit():
            ids.setdefault(kind, []).append(int(ident))
    named: dict[str, Any] = {key: key for key in keys}
    for member in Member.objects.filter(pk__in=ids.get("member", [])):
        named[f"member:{member.pk}"] = display.member_link(member, viewer)
    for user in StaffUser.objects.filter(pk__in=ids.get("staff", [])):
        named[f"staff:{user.pk}"] = display.staff_link(user, viewer)
    for store in Store.objects.filter(pk__in=ids.get("store", [])):
        named[f"store:{store.pk}"] = display.store_link(store, viewer)
    for till in Till.objects.filter(pk__in=ids.get("till", [])).select_related("store"):
        named[f"till:{till.pk}"] = display.till_link(till, viewer)
    for key in keys:
        if key.startswith("client:"):
            named[key] = f"API client {key.partition(':')[2][:12]}"
    return named


class ReportBuildForm(FreeTextFormMixin, forms.Form):
    """A period and a local day in it, yesterday's daily report by default."""

    period = forms.ChoiceField(choices=FraudReport.Period.choices, initial=FraudReport.Period.DAILY)
    day = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="A local day (programme time zone) in the period; a running period covers what happened so far.",
    )

    def clean_day(self) -> date:
        day = self.cleaned_data["day"]
        if day > today():
            raise forms.ValidationError("That day has not happened yet: choose today or an earlier day.")
        return day


@admin.register(FraudReport)
class FraudReportAdmin(AccessLoggedAdminMixin, ViewerAdminMixin, ReadOnlyAdmin):
    access_view_kind = "report"
    access_report_type = "fraud_report"

    list_display = ["period_start", "period", "final", "built"]  # the figures: get_list_display
    list_display_links = ["period_start"]
    list_filter = ["period", "final", "start"]
    date_hierarchy = "start"
    fields = ["period", "start", "end", "final", "built_at", "built_by_ref"]  # never the raw rows: filtered per user
    readonly_fields = fields
    change_form_template = "admin/fraud/fraudreport/change_form.html"
    change_list_template = "admin/fraud/fraudreport/change_list.html"

    class Media:
        css = {"all": ["loyalty/workplace.css", "loyalty/reports.css", "fraud/reports.css"]}

    def _totals(self, request, obj) -> dict:
        cache = request.__dict__.setdefault("_fraud_report_totals", {})
        if obj.pk not in cache:
            cache[obj.pk] = fraud_report_visible(obj, scope=_scope(request))[1]
        return cache[obj.pk]

    def get_list_display(self, request):
        def figure(key: str, description: str):
            @admin.display(description=description)
            def show(obj):
                value = self._totals(request, obj).get(key)
                return "—" if value is None else f"{value:,}"

            show.__name__ = key
            return show

        alerts = figure("alerts" if _scope(request).all_stores else "store_alerts", "Alerts")
        if not _scope(request).all_stores:
            return ["period_start", "period", alerts, "built"]
        return ["period_start", "period", alerts, figure("open_cases", "Open cases"),
                figure("overdue_cases", "Overdue cases"), "final", "built"]  # fmt: skip

    @admin.display(description="From", ordering="start")
    def period_start(self, obj):
        return display.local_time(obj.start)

    def get_fields(self, request, obj=None):
        # Who built it is the fraud team's business, not a store manager's.
        return self.fields if _scope(request).all_stores else [f for f in self.fields if f != "built_by_ref"]

    @admin.display(description="Built by")
    def built_by_ref(self, obj):
        return display.staff_link(obj.built_by, current_viewer()) if obj.built_by_id else "the scheduled job"

    @admin.display(description="Built", ordering="built_at")
    def built(self, obj):
        return display.local_time(obj.built_at)

    def get_urls(self):
        return [
            path("build/", self.admin_site.admin_view(self.build_view), name="fraud_fraudreport_build"),
            path("<path:object_id>/csv/", self.admin_site.admin_view(self.csv_view), name="fraud_fraudreport_csv"),
            *super().get_urls(),
        ]

    def may_build(self, request) -> bool:
        return self.has_view_permission(request) and _scope(request).all_stores

    def changelist_view(self, request, extra_context=None):
        url = reverse("admin:fraud_fraudreport_build", current_app=self.admin_site.name)
        extra = {"report_build_url": url if self.may_build(request) else None}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def build_view(self, request):
        """Build (or rebuild, while provisional) the report of a chosen period. Nothing is
        mailed: the scheduled jobs do that."""
        if not self.may_build(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ReportBuildForm(request.POST)
            if form.is_valid():
                period, day = form.cleaned_data["period"], form.cleaned_data["day"]
                try:
                    report, built = fraud_report_build(period=period, day=day, actor=request.user)
                except ReportRefused as refused:
                    form.add_error("day", f"No report can be built for that period ({refused.code}).")
                else:
                    if built:
                        text = f"{report} built: {report.totals.get('alerts', 0):,} alert(s)."
                        self.message_user(request, text, messages.SUCCESS)
                    else:
                        self.message_user(request, f"{report} is final: shown as built.", messages.INFO)
                    url = reverse("admin:fraud_fraudreport_change", args=[report.pk], current_app=self.admin_site.name)
                    return HttpResponseRedirect(url)
        else:
            form = ReportBuildForm(initial={"day": today() - timedelta(days=1)})
        context = {
            **self.admin_site.each_context(request),
            "title": "Build a fraud report",
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/fraud/fraudreport/build.html", context)

    def _report(self, request, object_id) -> FraudReport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = self.get_object(request, unquote(object_id))
        if report is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return report

    def csv_view(self, request, object_id):
        """The report as CSV: the rows the user may see only."""
        report = self._report(request, object_id)
        rows, _ = fraud_report_visible(report, scope=_scope(request))
        return download_response(
            request, fraud_report_csv(report, rows=rows).encode(),
            filename=f"fraud-{report.period}-{report.start:%Y-%m-%d}.csv", content_type="text/csv; charset=utf-8",
            report_type="fraud_report", obj=report, parameters={"period": report.period, "start": report.start},
            rows=len(rows),
        )  # fmt: skip

    def change_view(self, request, object_id, form_url="", extra_context=None):
        report = self._report(request, object_id)
        scope = _scope(request)
        rows, totals = fraud_report_visible(report, scope=scope)
        viewer = current_viewer() or request.user
        store_names = subject_names([f"store:{s['store_id']}" for s in totals.get("stores", [])], viewer)
        stores = [
            {**s, "name": store_names[f"store:{s['store_id']}"],
             "detectors": [(detector_label(code), n) for code, n in sorted(s["detectors"].items())]}
            for s in totals.get("stores", [])
        ]  # fmt: skip
        context: dict[str, Any] = {
            "report_scoped": not scope.all_stores,
            "report_totals": totals,
            "report_stores": stores,
            "report_csv_url": reverse(
                f"{self.admin_site.name}:fraud_fraudreport_csv", args=[report.pk], current_app=self.admin_site.name
            ),
        }
        series = trend(report, scope=scope)
        alerts_series = [(day, alerts) for day, alerts, _ in series]
        what = "Alerts per day in your stores" if not scope.all_stores else "Alerts per day"
        context["trend_alerts"] = charts.bar_chart(
            alerts_series, title=charts.describe(alerts_series, what=what), width=480, height=80
        )
        store_series = [(s["store"], s["alerts"]) for s in totals.get("stores", [])]
        context["chart_stores"] = charts.bar_chart(
            store_series, title=charts.describe(store_series, what="Alerts per store"), width=480, height=80
        )
        if scope.all_stores:
            detection = [(day, round(p90 or 0)) for day, _, p90 in series]
            context["trend_detection"] = charts.bar_chart(
                detection,
                title=charts.describe(detection, what="Detection time, 90th percentile (minutes) per day"),
                width=480,
                height=80,
                css="chart-detection",
            )
            detectors = totals.get("detectors", [])
            detector_series = [(d["detector"], d["alerts"]) for d in detectors]
            context["chart_detectors"] = charts.bar_chart(
                detector_series, title=charts.describe(detector_series, what="Alerts per detector"), width=480,
                height=80,
            )  # fmt: skip
            context["report_detectors"] = [{**d, "label": detector_label(d["detector"])} for d in detectors]
            subjects = [row for row in rows if row[0] == "subject"]
            names = subject_names([row[6] for row in subjects] + [s["ref"] for s in totals.get("staff", [])], viewer)
            context["report_subjects"] = [
                {"name": names[row[6]], "kind": row[6].partition(":")[0], "outcome": row[2], "score": row[3]}
                for row in subjects
            ]
            context["report_staff"] = [
                {**s, "name": names[s["ref"]],
                 "detectors": [(detector_label(code), n) for code, n in sorted(s["detectors"].items())]}
                for s in totals.get("staff", [])
            ]  # fmt: skip
            inbox_labels = dict(FraudCase.Inbox.choices)
            context["report_cases"] = [
                {**c, "label": inbox_labels.get(c["inbox"], c["inbox"])} for c in totals.get("cases", [])
            ]
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})
