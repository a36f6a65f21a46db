from django.contrib import admin
from django.db.models import Count

from loyalty.models import Store
from staffauth.admin_base import StoreScopedAdmin


@admin.register(Store)
class StoreAdmin(StoreScopedAdmin):
    store_field = "pk"
    list_display = ["code", "name", "region", "active", "staff_count"]
    list_filter = ["active", "region"]
    search_fields = ["code", "name", "region"]
    ordering = ["code"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(staff_count=Count("staff", distinct=True))

    @admin.display(description="Staff", ordering="staff_count")
    def staff_count(self, obj):
        return obj.staff_count

    def has_delete_permission(self, request, obj=None):
        # Stores carry history (transactions, staff); they are deactivated, not deleted.
        return False
