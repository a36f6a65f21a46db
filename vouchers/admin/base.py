"""What the vouchers admin pages share: a read-only, store-scoped journal of the till's
records, shown by name (``loyalty.workplace.display``): members by masked name and loyalty
number, staff, stores and tills by name, each linked for a viewer who may open it."""

from __future__ import annotations

from django.contrib import admin

from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from members.admin_search import member_lookup
from staffauth.admin_base import CappedCountPaginator, ReadOnlyAdmin, StoreScopedAdmin


class ScopedReadOnly(ViewerAdminMixin, StoreScopedAdmin, ReadOnlyAdmin):
    """Read-only, the rows of the user's stores (headquarters roles: all), counted up to a cap."""

    paginator = CappedCountPaginator

    def member_lookup_path(self) -> str | None:
        """The path to the member the rows belong to, for the search; None: no search by member."""
        return "member__" if "member" in {f.name for f in self.model._meta.get_fields()} else None

    def get_search_results(self, request, queryset, search_term):
        # Only a member's loyalty number or member id (never a phone or email in a URL).
        path = self.member_lookup_path()
        if path is None:
            return super().get_search_results(request, queryset, search_term)
        if not search_term.strip():
            return queryset, False
        lookup = member_lookup(search_term, path)
        return (queryset.filter(lookup) if lookup is not None else queryset.none()), False

    @admin.display(description="Member")
    def member_ref(self, obj):
        return display.member_link(obj.member, current_viewer())

    @admin.display(description="Store", ordering="store__code")
    def store_ref(self, obj):
        return display.store_link(obj.store, current_viewer())

    @admin.display(description="Till")
    def till_ref(self, obj):
        return display.till_link(obj.till, current_viewer())

    @admin.display(description="Staff")
    def staff_ref(self, obj):
        return display.staff_link(obj.staff, current_viewer())
