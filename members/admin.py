from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import get_content_type_for_model
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from fraud.services import fraud_alert_raise, pii_reveal_volume_alert_raise
from loyalty.kernel.access_log import AccessLoggedAdminMixin
from loyalty.kernel.crypto import DecryptionFailed
from loyalty.workplace.display import choice_label, member_label
from loyalty.workplace.member_page import member_page
from members.admin_search import SESSION_KEY, member_search_find, member_search_kind
from members.models import Member, MemberPiiAccess
from members.permissions import (
    colleagues,
    home_stores_listed,
    may_end_member_sessions,
    may_reveal_personal_data,
    sees_programme_wide_panels,
)
from members.services.membership import member_pii_reveal
from members.services.pii import member_pii_masked
from members.services.pii_watch import PiiRevealThrottled, reveal_outside_stores
from members.services.sessions import sessions_end_all
from staffauth.admin_base import ReadOnlyAdmin
from staffauth.posted_search import PostedSearch, PostedSearchAdminMixin

# The reason recorded with the member's "sessions_ended" security event.
END_SESSIONS_REASON = "ended_by_staff"


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


class TierFilter(admin.SimpleListFilter):
    """Tiers by name (``settings.LOYALTY_TIERS``), not by number."""

    title = "tier"
    parameter_name = "tier"

    def lookups(self, request, model_admin):
        return [(str(t["tier"]), t["name"]) for t in sorted(settings.LOYALTY_TIERS, key=lambda t: t["threshold"])]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(tier=int(value)) if value and value.isdigit() else queryset


@admin.register(Member)
class MemberAdmin(AccessLoggedAdminMixin, PostedSearchAdminMixin, ReadOnlyAdmin):
    """Members as staff look them up. The member page tells the whole story to its
    viewer (``loyalty.workplace.member_page``): the header, the balance (available,
    pending, held), lots by expiry, the signed history, vouchers, adjustment requests,
    fraud alerts, devices and sessions, consents, and the actions the viewer may take.

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

    # Access log (compliance): each member page viewed, each search (its kind and hit count).
    access_view_kind = "member_view"

    def access_member(self, obj):
        return obj.pk

    def access_search_kind(self, term: str) -> str:
        return member_search_kind(term)

    # No personal data in the list, not even masked: one decryption per row for nothing.
    list_display = ["loyalty_number", "status", "tier_name", "home_store", "created_at"]
    list_filter = ["status", TierFilter, ("home_store", VisibleHomeStoreFilter)]
    # The search box posts to search_view; get_search_results applies the saved search.
    search_fields = ["=loyalty_number"]
    search_help_text = "Loyalty number, member id, or a phone number or email address (exact)."
    list_select_related = ["home_store"]
    # The page itself is the change form's template (templates/admin/members/member/
    # change_form.html) drawing loyalty.workplace.member_page's panels.
    fields = ["loyalty_number"]
    readonly_fields = fields

    @admin.display(description="Tier", ordering="tier")
    def tier_name(self, obj):
        return obj.tier_label

    # --- search (no personal data in URLs) ----------------------------------------------

    posted_search_session_key = SESSION_KEY
    posted_search_refused = (
        "Search with the search box: a search term in the address is not accepted, "
        "so that phone numbers and email addresses stay out of the logs."
    )

    def posted_search_find(self, request, term: str) -> PostedSearch:
        found = member_search_find(term)
        search = PostedSearch(found.member_pks, found.label)
        self.access_searched(request, term, search)
        return search

    # --- the member page ---------------------------------------------------------------

    def get_fields(self, request, obj=None):
        # The page is the template's panels (change_view); the form holds no field.
        return ["loyalty_number"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The member page: panels from ``loyalty.workplace.member_page`` for this viewer."""
        obj = self.get_object(request, unquote(object_id)) if self.has_view_or_change_permission(request) else None
        context = dict(extra_context or {})
        if obj is not None:
            page = member_page(obj, request.user)
            page.personal_data = self._personal_data(obj, may_reveal=may_reveal_personal_data(request.user))
            context.update(
                member_page=page,
                preferred_channel=choice_label(Member.Channel.choices, obj.preferred_channel)
                if obj.preferred_channel
                else "Not set",
                reveal_url=reverse("admin:members_member_reveal", args=[obj.pk], current_app=self.admin_site.name),
                title=f"Member {member_label(obj)}",
                subtitle=None,  # the header panel names the member
            )
        return super().change_view(request, object_id, form_url, context)

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

    @staticmethod
    def _personal_data(obj, *, may_reveal: bool) -> list[tuple[str, str, str]] | None:
        """(label, masked value, the field's name when it may be revealed, else "");
        None when the values cannot be read with the configured keys."""
        try:
            masked = member_pii_masked(obj)
        except DecryptionFailed:
            return None
        return [
            (label, masked[field] or "—", field if may_reveal and masked[field] and masked[field] != "erased" else "")
            for field, label in MemberPiiAccess.Field.choices
        ]

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.reveal_view))
        end_sessions = self.admin_site.admin_view(require_POST(self.end_sessions_view))
        return [
            path("<path:object_id>/end-sessions/", end_sessions, name="members_member_end_sessions"),
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
        except PiiRevealThrottled as refusal:
            # Row 28 of FRAUD.md: the fraud team hears of the throttle once (fraud sits
            # above members, so the alert is raised here, at the entry point).
            if refusal.facts.get("newly"):
                pii_reveal_volume_alert_raise(staff_id=request.user.pk, facts=refusal.facts)
            messages.error(request, str(refusal))
            return HttpResponseRedirect(
                reverse("admin:members_member_change", args=[obj.pk], current_app=self.admin_site.name)
            )
        except DecryptionFailed:
            value, unreadable = None, True
        else:
            unreadable = False
        if reveal_outside_stores(request.user, obj):
            pii_reveal_outside_stores_alert(staff=request.user, member=obj)
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

    def end_sessions_view(self, request, object_id):
        """POST only, CSRF-protected, OTP-verified (admin_view): ends every session of the
        member (``members.services.sessions.sessions_end_all``, which records the member's
        security event) and records who did it in the member's change history. Without
        the permission 403 (``members.permissions.may_end_member_sessions``), an
        unknown member 404."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No member matches the given query.")
        if not may_end_member_sessions(request.user):
            raise PermissionDenied
        ended = sessions_end_all(member=obj, reason=END_SESSIONS_REASON)
        self.log_change(request, obj, f"Ended the member's sessions ({ended}).")
        if ended:
            messages.success(request, f"Ended {ended} session(s): the member must sign in again.")
        else:
            messages.info(request, "The member had no session in progress.")
        return HttpResponseRedirect(
            reverse("admin:members_member_change", args=[obj.pk], current_app=self.admin_site.name)
        )


def pii_reveal_outside_stores_alert(*, staff, member) -> None:
    """A reveal of a member outside the staff member's stores: one alert (high) per staff
    member, member and local day."""
    day = timezone.localdate().isoformat()
    fraud_alert_raise(
        kind="pii_reveal_outside_stores", dedupe_key=f"pii_reveal_outside_stores:{staff.pk}:{member.pk}:{day}",
        severity="high", staff_id=staff.pk, member_id=member.pk,
        detail={"member_id": str(member.member_id), "home_store_id": member.home_store_id, "day": day},
    )  # fmt: skip


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
