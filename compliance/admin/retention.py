"""Admin for retention runs (counts, progress, evidence download) and legal holds."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from compliance.holds import HoldRefused, legal_hold_place, legal_hold_release
from compliance.models import LegalHold, RetentionRun
from compliance.purge import evidence_report
from loyalty.kernel.access_log import download_response
from members.models import Member
from staffauth.admin_base import BaseAdmin, ReadOnlyAdmin


def _total(counts: dict[str, dict[str, int]]) -> int:
    return sum(n for tables in counts.values() for n in tables.values())


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "state", "started_by", "started_at", "finished_at", "due", "purged"]
    list_filter = ["state", "dry_run"]
    fields = [
        "dry_run", "state", "started_by", "started_at", "finished_at",
        "policy", "dry_counts", "counts", "held", "progress", "evidence",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Rows due")
    def due(self, obj: RetentionRun) -> str:
        return f"{_total(obj.dry_counts):,}"

    @admin.display(description="Rows purged")
    def purged(self, obj: RetentionRun) -> str:
        return f"{_total(obj.counts):,}"

    @admin.display(description="Evidence report")
    def evidence(self, obj: RetentionRun) -> str:
        url = reverse("admin:compliance_retentionrun_evidence", args=[obj.pk], current_app=self.admin_site.name)
        return format_html('<a href="{}">Download the evidence report (JSON)</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.evidence_view)
        return [path("<int:object_id>/evidence/", view, name="compliance_retentionrun_evidence"), *super().get_urls()]

    def evidence_view(self, request, object_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = RetentionRun.objects.filter(pk=object_id).first()
        if run is None:
            raise Http404("No retention run matches the given query.")
        return download_response(
            request,
            json.dumps(evidence_report(run), indent=2).encode(),
            filename=f"retention-run-{run.pk}.json",
            content_type="application/json",
            report_type="retention_evidence",
            parameters={"run": run.pk},
        )


class LegalHoldForm(forms.ModelForm):
    loyalty_number = forms.CharField(
        required=False, max_length=32, help_text="A member hold: the member's loyalty number."
    )

    class Meta:
        model = LegalHold
        fields = ["scope", "table_name", "record_pk", "reason"]

    def clean_loyalty_number(self) -> Member | None:
        number = "".join(self.cleaned_data.get("loyalty_number", "").split())
        if not number:
            return None
        member = Member.objects.filter(loyalty_number=number).first()
        if member is None:
            raise forms.ValidationError("No member has this loyalty number.")
        return member

    def save(self, commit: bool = True) -> LegalHold:
        if "loyalty_number" in self.cleaned_data:
            self.instance.member = self.cleaned_data["loyalty_number"]
        return super().save(commit)


@admin.register(LegalHold)
class LegalHoldAdmin(BaseAdmin):
    """Place a hold (add) or release it (change: a release reason is all that may be
    written); never deleted."""

    list_display = ["__str__", "scope", "member", "table_name", "record_pk", "placed_by", "placed_at", "released_at"]
    list_filter = ["scope", "released_at"]
    form = LegalHoldForm  # the member by loyalty number: not every holder may browse members

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return ["scope", "loyalty_number", "table_name", "record_pk", "reason"]
        return [
            "scope", "member", "table_name", "record_pk", "reason", "placed_by", "placed_at",
            "released_at", "released_by", "release_reason",
        ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return []
        fixed = ["scope", "member", "table_name", "record_pk", "reason", "placed_by", "placed_at"]
        fixed += ["released_at", "released_by"]
        return fixed + (["release_reason"] if obj.released_at else [])

    def save_model(self, request, obj: LegalHold, form: Any, change: bool) -> None:
        try:
            if not change:
                legal_hold_place(actor=request.user, hold=obj)
            elif obj.release_reason:
                legal_hold_release(actor=request.user, hold_id=obj.pk, reason=obj.release_reason)
                self.message_user(request, "The legal hold is released.", messages.SUCCESS)
        except (HoldRefused, ValidationError) as error:
            raise PermissionDenied(str(error)) from error
