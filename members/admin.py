from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from loyalty.models import LedgerOperation, MemberBalance, PointsLot
from members.models import Member
from staffauth.admin_base import ReadOnlyAdmin

HISTORY_ROWS = 50


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    """Members as staff look them up: balance, lots with expiry dates, history.

    Members are a programme-wide record (they shop in any store); the ledger rows
    behind them are store-scoped in the journal admin.
    """

    list_display = ["loyalty_number", "status", "tier", "home_store", "created_at"]
    list_filter = ["status", "tier", ("home_store", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=loyalty_number"]
    list_select_related = ["home_store"]
    fields = ["loyalty_number", "status", "tier", "home_store", "created_at", "points", "lots", "history"]
    readonly_fields = fields

    def _balance(self, obj):
        return MemberBalance.objects.filter(account__member=obj).first()

    @admin.display(description="Points")
    def points(self, obj):
        balance = self._balance(obj)
        if balance is None:
            return "No points yet"
        return format_html(
            "<strong>{}</strong> available, {} held for redemptions", balance.available, balance.debits_pending
        )

    @admin.display(description="Points by expiry date")
    def lots(self, obj):
        rows = PointsLot.objects.filter(account__member=obj, remaining__gt=0).order_by("expires_on", "id")
        if not rows:
            return "—"
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", ((r.expires_on, r.remaining, r.earned) for r in rows)
        )
        return format_html(
            "<table><thead><tr><th>Expires</th><th>Left</th><th>Earned</th></tr></thead><tbody>{}</tbody></table>", body
        )

    @admin.display(description=f"History (last {HISTORY_ROWS})")
    def history(self, obj):
        rows = LedgerOperation.objects.filter(member=obj).select_related("store").order_by("-created_at")[:HISTORY_ROWS]
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (f"{timezone.localtime(r.created_at):%Y-%m-%d %H:%M}", r.get_kind_display(), r.points, r.store or "")
                for r in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>When</th><th>What</th><th>Points</th><th>Store</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )
