"""What the vouchers admin pages share: a read-only, store-scoped journal of the till's records."""

from __future__ import annotations

from django.contrib import admin

from staffauth.admin_base import CappedCountPaginator, ReadOnlyAdmin, StoreScopedAdmin


class ScopedReadOnly(StoreScopedAdmin, ReadOnlyAdmin):
    """Read-only, the rows of the user's stores (headquarters roles: all), counted up to a cap."""

    paginator = CappedCountPaginator

    @admin.display(description="Member")
    def member_ref(self, obj):
        # The pseudonymous id only: never the member's loyalty number.
        return str(obj.member.member_id)
