from django.contrib import admin

from members.models import Member
from staffauth.admin_base import ReadOnlyAdmin


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    """Members as staff look them up. Members are a programme-wide record (they shop
    in any store); their transactions are what store scoping restricts."""

    list_display = ["loyalty_number", "status", "tier", "home_store", "created_at"]
    list_filter = ["status", "tier", ("home_store", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=loyalty_number"]
    list_select_related = ["home_store"]
    fields = ["loyalty_number", "status", "tier", "home_store", "created_at"]
    readonly_fields = fields
