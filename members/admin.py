from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import get_content_type_for_model
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, SEARCH_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from loyalty.kernel.crypto import DecryptionFailed
from loyalty.ledger.selectors import member_balance, member_lots_visible, member_operations_visible
from members.admin_search import (
    SAVED_SEARCH_VAR,
    MemberSearch,
    member_search_find,
    member_search_load,
    member_search_save,
)
from members.models import Member, MemberPiiAccess
from members.permissions import (
    colleagues,
    home_stores_listed,
    may_open_store,
    may_reveal_personal_data,
    sees_programme_wide_panels,
)
from members.services.consents import member_consent_records, member_consents
from members.services.membership import member_pii_reveal
from members.services.pii import member_pii_masked
from staffauth.admin_base import ReadOnlyAdmin

HISTORY_ROWS = 50
CONSENT_HISTORY_ROWS = 50
# Panels that only programme-wide roles see (see MemberAdmin.get_fields).
HEADQUARTERS_PANELS = {"consent_history"}
SCOPE_NOTE = "Only your stores' rows are listed; the balance counts every store."


def _viewer(obj):
    """The staff user the page is rendered for (set by MemberAdmin.get_object); None
    when unknown, which shows no store's rows."""
    return getattr(obj, "_admin_viewer", None)


class VisibleHomeStoreFilter(admin.RelatedOnlyFieldListFilter):
    """Home stores to filter by: those of some member, and only the viewer's own for a
    store-scoped user (other stores' names are not theirs to list)."""

    def field_choices(self, field, request, model_admin):
        pk_qs = model_admin.get_queryset(request).distinct().values_list(f"{self.field_path}__pk", flat=True)
        visible = home_stores_listed(request.user).values("pk")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, limit_choices_to=Q(pk__in=pk_qs) & Q(pk__in=visible), ordering=ordering
        )


class MemberChangeList(ChangeList):
    """The changelist of a search by token: ``s`` selects the saved search, it is no
    filter of the model's fields."""

    def __init__(self, request, *args, **kwargs):
        self.member_search: MemberSearch | None = getattr(request, "_member_search", None)
        super().__init__(request, *args, **kwargs)

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(SAVED_SEARCH_VAR, None)
        return lookup_params


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    """Members as staff look them up: balance, lots with expiry dates, history.

    Consents are shown, never edited: the member gives or withdraws them (app, web,
    enrolment) and staff cannot grant one on their behalf (``members.services.consents``). There
    is no admin for ``Consent`` or ``ConsentRecord`` and this one is read-only.

    Members are a programme-wide record (they shop in any store); the ledger rows
    behind them are store-scoped, here as in the journal admin: a store-scoped user
    (cashier, store manager) sees the member, the balance as a figure and the current
    consents, but only their own stores' operations and lots, not the consent history
    (the compliance record, which tells when staff somewhere acted for the member) and
    only their stores' staff in the change history.

    Search: by POST and a session token, never ``?q=`` (``members.admin_search``).
    """

    # No personal data in the list, not even masked: one decryption per row for nothing.
    list_display = ["loyalty_number", "status", "tier", "home_store", "created_at"]
    list_filter = ["status", "tier", ("home_store", VisibleHomeStoreFilter)]
    # The search box posts to search_view; get_search_results applies the saved search.
    search_fields = ["=loyalty_number"]
    search_help_text = "Loyalty number, member id, or a phone number or email address (exact)."
    list_select_related = ["home_store"]
    fields = [
        "loyalty_number",
        "member_id",
        "status",
        "tier",
        "home_store_link",
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

    # --- search (no personal data in URLs) ----------------------------------------------

    def get_changelist(self, request, **kwargs):
        return MemberChangeList

    def changelist_view(self, request, extra_context=None):
        """Refuses ``?q=`` (the term would be in the access logs) and applies ``?s=``."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied  # before anything else, as Django's own view would
        if SEARCH_VAR in request.GET:
            messages.error(
                request,
                "Search with the search box: a search term in the address is not accepted, "
                "so that phone numbers and email addresses stay out of the logs.",
            )
            return self._changelist_redirect(request.GET, drop={SEARCH_VAR, SAVED_SEARCH_VAR})
        token = request.GET.get(SAVED_SEARCH_VAR)
        if token is not None:
            search = member_search_load(request.session, token)
            if search is None:
                messages.warning(request, "That search has expired: search again.")
                return self._changelist_redirect(request.GET, drop={SAVED_SEARCH_VAR})
            request._member_search = search
        return super().changelist_view(request, extra_context)

    def search_view(self, request):
        """POST only, CSRF-protected, OTP-verified (admin_view): runs the search, saves
        its outcome in the session and redirects to the changelist with its token."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        term = request.POST.get(SEARCH_VAR, "")
        if not term.strip():
            return self._changelist_redirect(request.POST, drop={SAVED_SEARCH_VAR})
        token = member_search_save(request.session, member_search_find(term))
        return self._changelist_redirect(request.POST, drop={SAVED_SEARCH_VAR}, add={SAVED_SEARCH_VAR: token})

    def _changelist_redirect(self, params, *, drop=frozenset(), add=None) -> HttpResponseRedirect:
        """The changelist with ``params`` (the filters in force), less the search term,
        ``drop`` and the page, plus ``add``."""
        dropped = {SEARCH_VAR, PAGE_VAR, ERROR_FLAG, "csrfmiddlewaretoken", *drop}
        kept = [(key, value) for key, value in params.items() if key not in dropped]
        kept += list((add or {}).items())
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist", current_app=self.admin_site.name
        )
        return HttpResponseRedirect(f"{url}?{urlencode(kept)}" if kept else url)

    def get_search_results(self, request, queryset, search_term):
        # The term was resolved when it was posted (exact look-ups, phone and email
        # through the blind indexes): the saved search holds the members it found.
        search = getattr(request, "_member_search", None)
        if search is None:
            return queryset, False
        return queryset.filter(pk__in=search.member_pks), False

    # --- the member page ---------------------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # The panels below are rendered after the view returns; they scope their rows
            # to the stores of the user the page is for.
            obj._admin_viewer = request.user
        return obj

    def get_fields(self, request, obj=None):
        fields = list(self.fields)
        if not sees_programme_wide_panels(request.user):
            fields = [f for f in fields if f not in HEADQUARTERS_PANELS]
        if may_reveal_personal_data(request.user):
            return [("personal_data_revealable" if f == "personal_data" else f) for f in fields]
        return fields

    def history_view(self, request, object_id, extra_context=None):
        """Django's change history of the member; a store-scoped user sees only the
        entries made by staff of their stores (not another store's, not headquarters')."""
        response = super().history_view(request, object_id, extra_context)
        if sees_programme_wide_panels(request.user) or getattr(response, "context_data", None) is None:
            return response
        entries = (
            LogEntry.objects.filter(
                object_id=unquote(object_id),
                content_type=get_content_type_for_model(self.model),
                user__in=colleagues(request.user).values("pk"),
            )
            .select_related()
            .order_by("action_time")
        )
        paginator = self.get_paginator(request, entries, 100)
        page = paginator.get_page(request.GET.get(PAGE_VAR, 1))
        response.context_data.update(
            action_list=page,
            page_range=paginator.get_elided_page_range(page.number),
            pagination_required=paginator.count > 100,
        )
        return response

    @admin.display(description="Home store")
    def home_store_link(self, obj):
        """The store's name; a link to it only for a viewer who may open it."""
        store = obj.home_store
        if store is None:
            return "—"
        if may_open_store(_viewer(obj), store):
            url = reverse("admin:loyalty_store_change", args=[store.pk], current_app=self.admin_site.name)
            return format_html('<a href="{}">{}</a>', url, store)
        return str(store)

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
        search = self.admin_site.admin_view(require_POST(self.search_view))
        return [
            path("search/", search, name="members_member_search"),
            path("<path:object_id>/reveal/", view, name="members_member_reveal"),
            *super().get_urls(),
        ]

    def reveal_view(self, request, object_id):
        """POST only, CSRF-protected, OTP-verified (admin_view). Shows one field once and
        records the access; without the permission 403, an unknown member 404."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No member matches the given query.")
        if not may_reveal_personal_data(request.user):
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
        """The record of consent, newest first (append-only); programme-wide roles only."""
        if not sees_programme_wide_panels(_viewer(obj)):
            return "—"
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
        """Lots with points left; a store-scoped viewer sees those earned at their stores."""
        viewer = _viewer(obj)
        rows = list(member_lots_visible(obj, viewer))
        if not rows:
            return self._with_scope_note("—", viewer)
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", ((r.expires_on, r.remaining, r.earned) for r in rows)
        )
        return self._with_scope_note(
            format_html(
                '<table id="member-lots"><thead><tr><th>Expires</th><th>Left</th><th>Earned</th></tr></thead>'
                "<tbody>{}</tbody></table>",
                body,
            ),
            viewer,
        )

    @admin.display(description=f"History (last {HISTORY_ROWS})")
    def history(self, obj):
        """The member's operations, newest first; a store-scoped viewer sees their stores'.
        Each links to its journal entry."""
        viewer = _viewer(obj)
        rows = list(member_operations_visible(obj, viewer)[:HISTORY_ROWS])
        if not rows:
            return self._with_scope_note("—", viewer)
        body = format_html_join(
            "",
            '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
            (
                (
                    f"{timezone.localtime(r.created_at):%Y-%m-%d %H:%M}",
                    reverse("admin:loyalty_ledgeroperation_change", args=[r.pk], current_app=self.admin_site.name),
                    r.get_kind_display(),
                    r.points,
                    r.store or "—",
                )
                for r in rows
            ),
        )
        return self._with_scope_note(
            format_html(
                '<table id="member-history"><thead><tr><th>When</th><th>What</th><th>Points</th><th>Store</th></tr>'
                "</thead><tbody>{}</tbody></table>",
                body,
            ),
            viewer,
        )

    @staticmethod
    def _with_scope_note(content, viewer):
        if sees_programme_wide_panels(viewer):
            return content
        return format_html('{}<p class="help member-scope-note">{}</p>', content, SCOPE_NOTE)


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
