"""Admin searches posted, never put in a URL (issue 11, D7; vouchers since issue 13).

A GET search (``?q=``) puts the term in the address bar, the browser history and every
access log on the way: a member's phone number or email address, a voucher's code (a
bearer credential). ``PostedSearchAdminMixin`` makes an admin's search box POST the term
to its ``search/`` view instead, which finds the rows at once and keeps, in the staff
user's session under a random short-lived token, only

- the primary keys of the rows found, and
- a label safe to show (the admin's ``posted_search_find`` decides it),

then redirects to the changelist with ``?s=<token>``. The term itself is kept nowhere:
not in a URL, not in the session, not in a log. A token is bound to the session (useless
to anyone else), expires after ``SEARCH_TTL`` and is one of at most ``SAVED_MAX`` per
admin. ``?q=`` on such a changelist is refused with a message.

The changelist's search box is ``templates/admin/posted_search_form.html``; an admin
using the mixin includes it from its ``admin/<app>/<model>/search_form.html``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, SEARCH_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

SAVED_SEARCH_VAR = "s"
SEARCH_TTL = timedelta(minutes=15)  # the admin's idle timeout: a search outlives no session
SAVED_MAX = 20


@dataclass(frozen=True)
class PostedSearch:
    """A search's outcome: the rows found (primary keys) and a label safe to show."""

    pks: tuple[Any, ...]
    label: str


def posted_search_save(session, key: str, search: PostedSearch, *, now: float | None = None) -> str:
    """Keep ``search`` in ``session`` under ``key``; returns its token (URL-safe, 16 random bytes)."""
    now = time.time() if now is None else now
    saved = {
        token: entry
        for token, entry in session.get(key, {}).items()
        if isinstance(entry, dict) and entry.get("expires", 0) > now
    }
    token = secrets.token_urlsafe(16)
    saved[token] = {
        "pks": [str(pk) for pk in search.pks],
        "label": search.label,
        "expires": now + SEARCH_TTL.total_seconds(),
    }
    newest = sorted(saved.items(), key=lambda item: item[1]["expires"])[-SAVED_MAX:]
    session[key] = dict(newest)
    return token


def posted_search_load(session, key: str, token: str, *, now: float | None = None) -> PostedSearch | None:
    """The search saved under ``token``; None when unknown or expired. Keys come back as
    text: a ``pk__in`` filter converts them to the column's type."""
    now = time.time() if now is None else now
    entry = session.get(key, {}).get(token)
    if not isinstance(entry, dict) or entry.get("expires", 0) <= now:
        return None
    return PostedSearch(tuple(str(pk) for pk in entry.get("pks", ())), str(entry.get("label", "")))


class PostedSearchChangeList(ChangeList):
    """A changelist whose ``s`` selects a saved search: no filter of the model's fields."""

    def __init__(self, request, *args, **kwargs):
        self.posted_search: PostedSearch | None = getattr(request, "_posted_search", None)
        super().__init__(request, *args, **kwargs)

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(SAVED_SEARCH_VAR, None)
        return lookup_params


class PostedSearchAdminMixin:
    """The search box of a ModelAdmin posts its term; see the module docstring.

    An admin sets ``search_fields`` (so the box shows) and implements
    ``posted_search_find(request, term) -> PostedSearch``."""

    posted_search_session_key = ""  # default: "admin_searches:<app>.<model>"
    posted_search_refused = "Search with the search box: a search term in the address is not accepted."

    def posted_search_find(self, request, term: str) -> PostedSearch:
        raise NotImplementedError

    def _posted_search_key(self) -> str:
        return self.posted_search_session_key or f"admin_searches:{self.opts.label_lower}"  # type: ignore[attr-defined]

    def get_changelist(self, request, **kwargs):
        return PostedSearchChangeList

    def changelist_view(self, request, extra_context=None):
        """Refuses ``?q=`` (the term would be in the access logs) and applies ``?s=``."""
        if not self.has_view_or_change_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied  # before anything else, as Django's own view would
        if SEARCH_VAR in request.GET:
            messages.error(request, self.posted_search_refused)
            return self._changelist_redirect(request.GET, drop={SEARCH_VAR, SAVED_SEARCH_VAR})
        token = request.GET.get(SAVED_SEARCH_VAR)
        if token is not None:
            search = posted_search_load(request.session, self._posted_search_key(), token)
            if search is None:
                messages.warning(request, "That search has expired: search again.")
                return self._changelist_redirect(request.GET, drop={SAVED_SEARCH_VAR})
            request._posted_search = search
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def search_view(self, request):
        """POST only, CSRF-protected, OTP-verified (admin_view): runs the search, saves
        its outcome in the session and redirects to the changelist with its token."""
        if not self.has_view_or_change_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        term = request.POST.get(SEARCH_VAR, "")
        if not term.strip():
            return self._changelist_redirect(request.POST, drop={SAVED_SEARCH_VAR})
        search = self.posted_search_find(request, term)
        token = posted_search_save(request.session, self._posted_search_key(), search)
        return self._changelist_redirect(request.POST, drop={SAVED_SEARCH_VAR}, add={SAVED_SEARCH_VAR: token})

    def _changelist_redirect(self, params, *, drop=frozenset(), add=None) -> HttpResponseRedirect:
        """The changelist with ``params`` (the filters in force), less the search term,
        ``drop`` and the page, plus ``add``."""
        dropped = {SEARCH_VAR, PAGE_VAR, ERROR_FLAG, "csrfmiddlewaretoken", *drop}
        kept = [(key, value) for key, value in params.items() if key not in dropped]
        kept += list((add or {}).items())
        opts = self.opts  # type: ignore[attr-defined]
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=self.admin_site.name)  # type: ignore[attr-defined]
        return HttpResponseRedirect(f"{url}?{urlencode(kept)}" if kept else url)

    def get_search_results(self, request, queryset, search_term):
        # The term was resolved when it was posted: the saved search holds the rows found.
        search = getattr(request, "_posted_search", None)
        if search is None:
            return queryset, False
        return queryset.filter(pk__in=search.pks), False

    def get_urls(self):
        opts = self.opts  # type: ignore[attr-defined]
        search = self.admin_site.admin_view(require_POST(self.search_view))  # type: ignore[attr-defined]
        return [
            path("search/", search, name=f"{opts.app_label}_{opts.model_name}_search"),
            *super().get_urls(),  # type: ignore[misc]
        ]
