"""Base classes every admin of the product uses.

- Objects a user may not see answer 404, exactly like objects that do not exist
  (Django's admin would redirect with "doesn't exist" instead).
- Store-scoped admins restrict their queryset, and so the change, delete, history
  and autocomplete views, to the stores the user may see (``loyalty.scoping``).
- Large tables paginate without a full COUNT.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.paginator import Paginator
from django.http import Http404
from django.utils.functional import cached_property

from loyalty.scoping import scope_to_stores


class BaseAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_per_page = 50

    def _ensure_visible(self, request, object_id) -> None:
        # Django checks the permission before the object's existence, so an object out
        # of scope would answer 403 (revealing that it exists) on delete; check first.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._ensure_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index with a message; we answer 404 so that an object
        # outside the user's scope is indistinguishable from a missing one.
        raise Http404(f"No {opts.verbose_name} matches the given query.")


class ReadOnlyAdmin(BaseAdmin):
    """For journals and logs: viewable by whoever holds the view permission, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StoreScopedAdmin(BaseAdmin):
    """An admin whose rows belong to a store; ``store_field`` is the path to it."""

    store_field = "store"

    def get_queryset(self, request):
        return scope_to_stores(super().get_queryset(request), request.user, store_field=self.store_field)


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP + 1`` rows (``SELECT COUNT(*) FROM (… LIMIT CAP+1)``), so a
    changelist over a journal of millions of rows never scans it to number the pages.
    Past the cap the admin shows CAP results and pages up to there; filters narrow it."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP + 1].count() if hasattr(self.object_list, "count") else len(self.object_list)


class JournalAdmin(ReadOnlyAdmin):
    """Read-only admin for large append-only tables."""

    paginator = CappedCountPaginator
