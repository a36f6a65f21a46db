from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from loyalty.crypto import DecryptionFailed
from loyalty.models import LedgerOperation, PointsLot
from loyalty.selectors import member_balance
from members.consents import member_consent_records, member_consents
from members.models import Member, MemberPiiAccess
from members.pii import member_pii_masked
from members.selectors import member_by_email, member_by_phone
from members.services import member_pii_reveal
from staffauth.admin_base import ReadOnlyAdmin

REVEAL_PERMISSION = "members.reveal_member_pii"

HISTORY_ROWS = 50
CONSENT_HISTORY_ROWS = 50


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    """Members as staff look them up: balance, lots with expiry dates, history.

    Consents are shown, never edited: the member gives or withdraws them (app, web,
    enrolment) and staff cannot grant one on their behalf (``members.consents``). There
    is no admin for ``Consent`` or ``ConsentRecord`` and this one is read-only.

    Members are a programme-wide record (they shop in any store); the ledger rows
    behind them are store-scoped in the journal admin.
    """

    # No personal data in the list, not even masked: one decryption per row for nothing.
    list_display = ["loyalty_number", "status", "tier", "home_store", "created_at"]
    list_filter = ["status", "tier", ("home_store", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=loyalty_number"]
    search_help_text = "Loyalty number, or a phone number or email address (exact)."
    list_select_related = ["home_store"]
    fields = [
        "loyalty_number",
        "member_id",
        "status",
        "tier",
        "home_store",
        "created_at",
        "personal_data",
        "preferred_channel",
        "consents",
        "consent_history",
        "points",
        "lots",
        "history",
    ]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        # Phone and email are encrypted: exact look-ups through the blind indexes.
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            found = member_by_email(term) if "@" in term else member_by_phone(term)
            if found is not None:
                queryset |= self.get_queryset(request).filter(pk=found.pk)
        return queryset, may_have_duplicates

    def get_fields(self, request, obj=None):
        if request.user.has_perm(REVEAL_PERMISSION):
            return [("personal_data_revealable" if f == "personal_data" else f) for f in self.fields]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="Personal data")
    def personal_data(self, obj):
        """Masked values only."""
        return self._personal_data(obj, may_reveal=False)

    @admin.display(description="Personal data")
    def personal_data_revealable(self, obj):
        """Masked values, each with a reveal button (members.reveal_member_pii)."""
        return self._personal_data(obj, may_reveal=True)

    def _personal_data(self, obj, *, may_reveal: bool):
        # The buttons submit the (read-only) change form, with its CSRF token, to the
        # reveal view: no nested form.
        try:
            masked = member_pii_masked(obj)
        except DecryptionFailed:
            return "Unreadable with the configured keys."
        url = reverse("admin:members_member_reveal", args=[obj.pk], current_app=self.admin_site.name)
        rows = []
        for field, label in MemberPiiAccess.Field.choices:
            value = masked[field]
            button = (
                format_html(
                    ' <button type="submit" class="button" formaction="{}" formmethod="post" name="field" '
                    'value="{}" id="reveal-{}">Reveal</button>',
                    url,
                    field,
                    field,
                )
                if may_reveal and value and value != "erased"
                else ""
            )
            rows.append((label, value or "—", button))
        return format_html(
            "<table><tbody>{}</tbody></table>", format_html_join("", "<tr><th>{}</th><td>{}{}</td></tr>", rows)
        )

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.reveal_view))
        return [path("<path:object_id>/reveal/", view, name="members_member_reveal"), *super().get_urls()]

    def reveal_view(self, request, object_id):
        """POST only, CSRF-protected, OTP-verified (admin_view). Shows one field once and
        records the access; without the permission 403, an unknown member 404."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No member matches the given query.")
        if not request.user.has_perm(REVEAL_PERMISSION):
            raise PermissionDenied
        field = request.POST.get("field", "")
        if field not in MemberPiiAccess.Field.values:
            raise Http404("No such field.")
        try:
            value = member_pii_reveal(member=obj, field=field, actor=request.user)
        except DecryptionFailed:
            value, unreadable = None, True
        else:
            unreadable = False
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Member {obj.loyalty_number}: {MemberPiiAccess.Field(field).label.lower()}",
            # Every variable the admin's base template reads is given: a missing one makes
            # django.template log the whole context (the revealed value with it) at DEBUG.
            "subtitle": None,
            "member": obj,
            "label": MemberPiiAccess.Field(field).label,
            "value": value,
            "erased": obj.pii_erased_at is not None,
            "unreadable": unreadable,
            "back_url": reverse("admin:members_member_change", args=[obj.pk], current_app=self.admin_site.name),
        }
        response = TemplateResponse(request, "admin/members/member/reveal.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.display(description="Consents")
    def consents(self, obj):
        """The current choice per purpose (never recorded: not granted)."""
        rows = (
            (
                state.label,
                "Granted" if state.granted else ("Not granted" if state.version else "Not granted (never recorded)"),
                state.version or "—",
                f"{timezone.localtime(state.updated_at):%Y-%m-%d %H:%M}" if state.updated_at else "—",
            )
            for state in member_consents(obj).values()
        )
        return format_html(
            '<table id="member-consents"><thead><tr><th>Purpose</th><th>Now</th><th>Text version</th><th>Since</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description=f"Consent history (last {CONSENT_HISTORY_ROWS})")
    def consent_history(self, obj):
        """The record of consent, newest first (append-only)."""
        records = member_consent_records(obj)[:CONSENT_HISTORY_ROWS]
        if not records:
            return "—"
        rows = (
            (
                f"{timezone.localtime(r.created_at):%Y-%m-%d %H:%M:%S}",
                r.get_purpose_display(),
                "Granted" if r.granted else "Withdrawn / not given",
                r.version,
                r.get_source_display(),
            )
            for r in records
        )
        return format_html(
            '<table id="member-consent-history"><thead><tr><th>When</th><th>Purpose</th><th>Choice</th>'
            "<th>Text version</th><th>Source</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    def _balance(self, obj):
        return member_balance(obj)

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


@admin.register(MemberPiiAccess)
class MemberPiiAccessAdmin(ReadOnlyAdmin):
    """Who revealed which member's what, and when (spec "Access Events"): read by the
    security team; the value itself is never recorded."""

    list_display = ["accessed_at", "staff", "member", "field"]
    list_filter = ["field", "accessed_at"]
    search_fields = ["=staff__username", "=member__loyalty_number"]
    date_hierarchy = "accessed_at"
    list_select_related = ["staff", "member"]
    fields = ["accessed_at", "staff", "member", "field"]
    readonly_fields = fields
