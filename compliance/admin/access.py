"""The access log in the admin: read-only, for those who read logs (system administrators)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from compliance.models import AccessEvent
from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from staffauth.admin_base import ReadOnlyAdmin


@admin.register(AccessEvent)
class AccessEventAdmin(ViewerAdminMixin, ReadOnlyAdmin):
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
        return display.staff_link(obj.staff, current_viewer())  # a link only for who may open staff pages

    def _member(self, obj: AccessEvent, *, link: bool) -> str:
        if obj.member is None:
            return f"{len(obj.member_ids)} member(s)" if obj.member_ids else "-"
        # The loyalty number in groups of four, as on the member page; no decryption per row.
        number = obj.member.loyalty_number
        grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        if not link:
            return grouped
        url = reverse("admin:members_member_change", args=[obj.member_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, grouped)

    @admin.display(description="Member")
    def member_link(self, obj: AccessEvent) -> str:
        return self._member(obj, link=False)

    def get_list_display(self, request: Any) -> list[Any]:
        # The member is a link for those who may open member pages, plain text otherwise.
        may_open = request.user.has_perm("members.view_member")

        @admin.display(description="Member")
        def member(obj: AccessEvent) -> str:
            return self._member(obj, link=may_open)

        return [member if name == "member_link" else name for name in self.list_display]

    @admin.display(description="Parameters")
    def what(self, obj: AccessEvent) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(obj.parameters.items())) or "-"
