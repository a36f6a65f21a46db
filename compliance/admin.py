"""The access log in the admin: read-only, for those who read logs (system administrators)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from compliance.models import AccessEvent
from staffauth.admin_base import ReadOnlyAdmin


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "staff_link", "member_link", "report_type", "what", "rows"]
    list_filter = ["kind", ("staff", admin.RelatedOnlyFieldListFilter), ("at", admin.DateFieldListFilter)]
    list_select_related = ["staff", "member"]
    date_hierarchy = "at"
    fields = [
        "at", "kind", "staff_link", "member_link", "object_type", "object_id", "report_type", "parameters",
        "rows", "file_sha256", "ip", "request_id",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Staff member", ordering="staff__username")
    def staff_link(self, obj: AccessEvent) -> str:
        if obj.staff is None:
            return "-"
        url = reverse("admin:staffauth_staffuser_change", args=[obj.staff_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, obj.staff.get_username())

    @admin.display(description="Member")
    def member_link(self, obj: AccessEvent) -> str:
        if obj.member is None:
            return f"{len(obj.member_ids)} member(s)" if obj.member_ids else "-"
        url = reverse("admin:members_member_change", args=[obj.member_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, obj.member.loyalty_number)

    @admin.display(description="Parameters")
    def what(self, obj: AccessEvent) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(obj.parameters.items())) or "-"
