import ipaddress

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count

from loyalty.kernel.models import Store, Till
from loyalty.ledger.models import Account, LedgerOperation, PointsLot, Transfer
from staffauth.admin_base import JournalAdmin, StoreScopedAdmin


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


class TransferInline(admin.TabularInline):
    model = Transfer
    fields = ["kind", "debit_account", "credit_account", "amount", "pending", "reverses", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LedgerOperation)
class LedgerOperationAdmin(JournalAdmin, StoreScopedAdmin):
    """The journal as staff read it: one row per business operation, with its legs."""

    list_display = ["created_at", "kind", "points", "member", "store", "actor", "receipt_ref", "needs_review"]
    list_filter = ["kind", "needs_review", ("store", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["=receipt_ref", "=member__loyalty_number", "=id"]
    date_hierarchy = "created_at"
    list_select_related = ["member", "store", "actor_staff", "actor_till__store"]
    fields = [
        "id", "kind", "points", "member", "store", "actor_staff", "actor_till", "actor_member", "actor_job",
        "receipt_ref", "related", "reason", "hold_expires_at", "needs_review", "created_at",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [TransferInline]

    @admin.display(description="By")
    def actor(self, obj):
        if obj.actor_till_id:
            return f"till {obj.actor_till}"
        if obj.actor_staff_id:
            return obj.actor_staff.username
        return "member" if obj.actor_member else f"job {obj.actor_job}"


@admin.register(Transfer)
class TransferAdmin(JournalAdmin, StoreScopedAdmin):
    store_field = "operation__store"
    list_display = ["created_at", "kind", "amount", "debit_account", "credit_account", "operation"]
    list_filter = ["kind", "created_at"]
    search_fields = ["=id", "=operation__id"]
    list_select_related = ["debit_account__member", "credit_account__member", "operation"]
    fields = [
        "id",
        "operation",
        "kind",
        "debit_account",
        "credit_account",
        "amount",
        "pending",
        "reverses",
        "created_at",
    ]
    readonly_fields = fields


@admin.register(PointsLot)
class PointsLotAdmin(JournalAdmin):
    list_display = ["id", "account", "expires_on", "earned", "remaining"]
    list_filter = ["expires_on"]
    search_fields = ["=account__member__loyalty_number"]
    list_select_related = ["account__member"]
    fields = ["account", "source", "expires_on", "earned", "remaining"]
    readonly_fields = fields


@admin.register(Account)
class AccountAdmin(JournalAdmin):
    list_display = ["id", "kind", "member", "available"]
    list_filter = ["kind"]
    search_fields = ["=member__loyalty_number"]
    list_select_related = ["member", "balance"]
    fields = ["kind", "member"]
    readonly_fields = fields

    @admin.display(description="Available points")
    def available(self, obj):
        balance = getattr(obj, "balance", None)
        return balance.available if balance is not None else "—"


@admin.register(Till)
class TillAdmin(StoreScopedAdmin):
    """Tills are created with ``manage.py till_create`` (which shows the secret once);
    here system administrators switch them off and set their address allow-lists."""

    list_display = ["__str__", "store", "key_id", "active", "allowed_ips", "created_at"]
    list_filter = ["active", ("store", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "=key_id", "store__code"]
    list_select_related = ["store"]
    fields = ["store", "code", "key_id", "active", "allowed_ips", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["store", "code", "key_id", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # its operations refer to it: switch it off instead

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        def clean_allowed_ips(form_self):
            entries = form_self.cleaned_data["allowed_ips"] or []
            if not isinstance(entries, list):
                raise ValidationError('A JSON list of addresses or networks, e.g. ["203.0.113.0/24"].')
            try:
                return [str(ipaddress.ip_network(str(e).strip(), strict=False)) for e in entries]
            except ValueError as exc:
                raise ValidationError(f"Not an address or network: {exc}") from exc

        form.clean_allowed_ips = clean_allowed_ips
        return form


# The adjustments' and the reports' admins live in modules of their own.
