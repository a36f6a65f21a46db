"""The ledger in the admin: stores, tills and the journal (operations, transfers, lots,
accounts), read-only and store-scoped.

Everything by name (``loyalty.workplace.display``): members by masked name and loyalty
number, staff, stores and tills by name, an operation by what and when (never its UUID),
points signed from the member's point of view, flags in words (a normal row shows
nothing, not a red cross). Searched by a member's loyalty number or member id, a receipt
reference or an operation id; filtered by store (the user's own only), kind and date.
"""

import ipaddress

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils.html import format_html

from loyalty.kernel.access_log import AccessLoggedAdminMixin
from loyalty.kernel.models import Store, Till
from loyalty.ledger.models import Account, LedgerOperation, PointsLot, Transfer
from loyalty.ledger.selectors import with_member_points
from loyalty.workplace import display
from loyalty.workplace.viewer import ViewerAdminMixin, current_viewer
from members.admin_search import member_lookup, member_uuid
from staffauth.admin_base import JournalAdmin, StoreScopedAdmin, VisibleStoreFilter


@admin.register(Store)
class StoreAdmin(AccessLoggedAdminMixin, StoreScopedAdmin):
    store_field = "pk"
    access_config = True  # programme configuration: who changed which store
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


def account_label(account) -> str:
    """A member's account by its member (masked name and number), a system account by kind."""
    if account is None:
        return display.NOTHING
    return display.member_label(account.member) if account.member_id else account.get_kind_display()


def account_ref(account, viewer):
    if account is None:
        return display.NOTHING
    return display.member_link(account.member, viewer) if account.member_id else account.get_kind_display()


def actor_ref(operation, viewer):
    """Who acted: the staff member, the till, the member themselves or the job."""
    if operation.actor_till_id:
        return display.till_link(operation.actor_till, viewer)
    if operation.actor_staff_id:
        return display.staff_link(operation.actor_staff, viewer)
    return "the member" if operation.actor_member else f"job {operation.actor_job}"


def search_journal(queryset, term: str, *, member_path: str, operation_path: str, receipt_path: str):
    """A journal search: a member's loyalty number (grouped or not) or member id, an
    operation id, a receipt reference; a term of no such type finds nothing."""
    term = term.strip()
    if not term:
        return queryset
    found = Q()
    lookup = member_lookup(term, member_path)
    if lookup is not None:
        found |= lookup
    as_uuid = member_uuid(term)  # any UUID: a member id or an operation id
    if as_uuid is not None:
        found |= Q(**{operation_path: as_uuid})
    if len(term) <= 120:
        found |= Q(**{receipt_path: term})
    return queryset.filter(found) if found else queryset.none()


class OperationStoreFilter(VisibleStoreFilter):
    """The store filter (the user's stores only) for rows whose store is their operation's."""

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(operation__store_id=int(value))
        return queryset


class TransferAccountsMixin:
    """A transfer's two accounts, named (the member's, or the system account's)."""

    @admin.display(description="From")
    def from_account(self, obj):
        return account_ref(obj.debit_account, current_viewer())

    @admin.display(description="To")
    def to_account(self, obj):
        return account_ref(obj.credit_account, current_viewer())


class TransferInline(TransferAccountsMixin, admin.TabularInline):
    model = Transfer
    fields = ["kind", "from_account", "to_account", "amount", "created"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("debit_account__member", "credit_account__member")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="At")
    def created(self, obj):
        return display.local_time(obj.created_at)


class ReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("yes", "Flagged for review")]

    def queryset(self, request, queryset):
        return queryset.filter(needs_review=True) if self.value() == "yes" else queryset


@admin.register(LedgerOperation)
class LedgerOperationAdmin(ViewerAdminMixin, JournalAdmin, StoreScopedAdmin):
    """The journal as staff read it: one row per business operation, with its legs."""

    list_display = ["when", "kind", "member_points", "member_ref", "store_ref", "actor", "receipt_ref", "review"]
    list_display_links = ["when", "kind"]
    list_filter = ["kind", VisibleStoreFilter, ReviewFilter, "created_at"]
    search_fields = ["=receipt_ref"]  # read by get_search_results
    search_help_text = "A member's loyalty number or member id, a receipt reference or an operation id."
    date_hierarchy = "created_at"
    list_select_related = ["member", "store", "actor_staff", "actor_till__store"]
    fields = [
        "kind", "member_points", "points", "member_ref", "store_ref", "actor", "receipt_ref", "related_ref",
        "reason", "hold_expires", "review", "when",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [TransferInline]

    def get_queryset(self, request):
        return with_member_points(super().get_queryset(request))

    def get_search_results(self, request, queryset, search_term):
        found = search_journal(
            queryset, search_term, member_path="member__", operation_path="id", receipt_path="receipt_ref"
        )
        return found, False

    @admin.display(description="When", ordering="created_at")
    def when(self, obj):
        return display.local_time(obj.created_at)

    @admin.display(description="Member's points")
    def member_points(self, obj):
        # From the member's point of view: +120 an earn, −40 a hold; a pending earn
        # (no leg yet) shows its points as pending.
        if obj.member_points is None:
            return (
                format_html("{} <small>pending</small>", display.points_signed(obj.points))
                if (obj.kind == LedgerOperation.Kind.EARN)
                else display.NOTHING
            )
        return display.points_signed(obj.member_points)

    @admin.display(description="Points moved")
    def points(self, obj):
        return f"{obj.points:,}"

    @admin.display(description="Member")
    def member_ref(self, obj):
        return display.member_link(obj.member, current_viewer())

    @admin.display(description="Store", ordering="store__code")
    def store_ref(self, obj):
        return display.store_link(obj.store, current_viewer())

    @admin.display(description="By")
    def actor(self, obj):
        return actor_ref(obj, current_viewer())

    @admin.display(description="Follows")
    def related_ref(self, obj):
        return display.operation_link(obj.related, current_viewer()) if obj.related_id else display.NOTHING

    @admin.display(description="Hold lapses")
    def hold_expires(self, obj):
        return display.local_time(obj.hold_expires_at)

    @admin.display(description="Review")
    def review(self, obj):
        # Only the exception is said: a normal row shows nothing.
        return format_html('<span class="flag flag-review">{}</span>', "Needs review") if obj.needs_review else ""


@admin.register(Transfer)
class TransferAdmin(TransferAccountsMixin, ViewerAdminMixin, JournalAdmin, StoreScopedAdmin):
    store_field = "operation__store"
    list_display = ["when", "kind", "amount", "from_account", "to_account", "operation_ref"]
    list_display_links = ["when"]
    list_filter = ["kind", OperationStoreFilter, "created_at"]
    search_fields = ["=operation__receipt_ref"]  # read by get_search_results
    search_help_text = "A member's loyalty number or member id, a receipt reference or an operation id."
    date_hierarchy = "created_at"
    list_select_related = ["debit_account__member", "credit_account__member", "operation"]
    fields = ["operation_ref", "kind", "from_account", "to_account", "amount", "pending_ref", "reverses_ref", "when"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        member = search_journal(
            queryset,
            search_term,
            member_path="debit_account__member__",
            operation_path="operation_id",
            receipt_path="operation__receipt_ref",
        )
        credited = search_journal(
            queryset,
            search_term,
            member_path="credit_account__member__",
            operation_path="operation_id",
            receipt_path="operation__receipt_ref",
        )
        return member | credited, False

    @admin.display(description="When", ordering="created_at")
    def when(self, obj):
        return display.local_time(obj.created_at)

    @admin.display(description="Operation")
    def operation_ref(self, obj):
        return display.operation_link(obj.operation, current_viewer())

    @admin.display(description="Settles the hold leg")
    def pending_ref(self, obj):
        return str(obj.pending) if obj.pending_id else display.NOTHING

    @admin.display(description="Reverses")
    def reverses_ref(self, obj):
        return str(obj.reverses) if obj.reverses_id else display.NOTHING


@admin.register(PointsLot)
class PointsLotAdmin(ViewerAdminMixin, JournalAdmin):
    list_display = ["member_ref", "expires_on", "earned", "remaining", "earned_by"]
    list_filter = ["expires_on"]
    search_fields = ["=account__member__loyalty_number"]  # read by get_search_results
    search_help_text = "A member's loyalty number or member id."
    list_select_related = ["account__member", "source__operation"]
    fields = ["member_ref", "earned_by", "expires_on", "earned", "remaining"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        lookup = member_lookup(search_term, "account__member__")
        return (queryset.filter(lookup) if lookup is not None else queryset.none()), False

    @admin.display(description="Member", ordering="account__member__loyalty_number")
    def member_ref(self, obj):
        return account_ref(obj.account, current_viewer())

    @admin.display(description="Earned by")
    def earned_by(self, obj):
        source = obj.source
        operation = getattr(source, "operation", None) if source is not None else None
        return display.operation_link(operation, current_viewer()) if operation else display.NOTHING


@admin.register(Account)
class AccountAdmin(ViewerAdminMixin, JournalAdmin):
    list_display = ["account", "kind", "available"]
    list_filter = ["kind"]
    search_fields = ["=member__loyalty_number"]  # read by get_search_results
    search_help_text = "A member's loyalty number or member id."
    list_select_related = ["member", "balance"]
    fields = ["account", "kind", "available"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        lookup = member_lookup(search_term)
        return (queryset.filter(lookup) if lookup is not None else queryset.none()), False

    @admin.display(description="Account")
    def account(self, obj):
        return account_ref(obj, current_viewer())

    @admin.display(description="Available points")
    def available(self, obj):
        balance = getattr(obj, "balance", None)
        return f"{balance.available:,}" if balance is not None else display.NOTHING


@admin.register(Till)
class TillAdmin(AccessLoggedAdminMixin, StoreScopedAdmin):
    """Tills are created with ``manage.py till_create`` (which shows the secret once);
    here system administrators switch them off and set their address allow-lists."""

    access_config = True  # programme configuration: who switched which till off, its addresses

    list_display = ["__str__", "store", "key_id", "active", "addresses", "created_at"]
    list_filter = ["active", ("store", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "=key_id", "store__code"]
    list_select_related = ["store"]
    fields = ["store", "code", "key_id", "active", "allowed_ips", "created_at"]

    @admin.display(description="Allowed addresses")
    def addresses(self, obj):
        return ", ".join(obj.allowed_ips) if obj.allowed_ips else "any address"

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
