"""Base classes every admin of the product uses.

- Every free-text field of every admin form (add, change, list-editable, inline and
  action forms) refuses what free text may not hold (``loyalty.kernel.freetext``: a card
  number, a bidi control, an invisible character), each with its own error code;
  forms outside a ModelAdmin take ``FreeTextFormMixin`` themselves.
- Objects a user may not see answer 404, exactly like objects that do not exist
  (Django's admin would redirect with "doesn't exist" instead).
- Store-scoped admins restrict their queryset, and so the change, delete, history
  and autocomplete views, to the stores the user may see (``loyalty.kernel.scoping``).
- Large tables paginate without a full COUNT.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.utils.functional import cached_property

from loyalty.kernel.freetext import MESSAGES as FREE_TEXT_CODES
from loyalty.kernel.freetext import free_text_refusal
from loyalty.kernel.refusals import Refusal
from loyalty.kernel.scoping import scope_to_stores, stores_visible_to

logger = logging.getLogger("staffauth.admin")


class FreeTextValidator:
    """A form field's guard: refuses a value that free text may not hold, with the
    refusal's code (``card_number_refused``…). Logs the field's name, never the value."""

    def __init__(self, field_name: str):
        self.field_name = field_name

    def __call__(self, value) -> None:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        refusal = free_text_refusal(text)
        if refusal is not None:
            logger.warning(
                "%s in form field %s",
                refusal.code,
                self.field_name,
                extra={"event": refusal.code, "field": self.field_name},
            )
            raise ValidationError(refusal.message, code=refusal.code)


def is_free_text(field: forms.Field) -> bool:
    """Text a person types and the product keeps: a CharField (and its kinds: email,
    slug, JSON…) that is not a password."""
    return isinstance(field, forms.CharField) and not isinstance(field.widget, forms.PasswordInput)


class FreeTextFormMixin:
    """Puts a ``FreeTextValidator`` on every free-text field of the form, except those
    named in ``free_text_exempt`` (values never stored as typed, such as a one-time code)."""

    free_text_exempt: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():  # the form's own copies of its fields
            if name not in self.free_text_exempt and is_free_text(field):
                field.validators.append(FreeTextValidator(name))


def free_text_form(form_class: type[forms.BaseForm]) -> type[forms.BaseForm]:
    """``form_class`` with ``FreeTextFormMixin`` (itself if it has it already)."""
    if issubclass(form_class, FreeTextFormMixin):
        return form_class
    return type(form_class.__name__, (FreeTextFormMixin, form_class), {"__module__": form_class.__module__})


class FreeTextAdminMixin:
    """Guards every form a ModelAdmin builds (``free_text_form``). ``BaseAdmin`` has it, and
    the admin site adds it to any other admin registered on it (``free_text_admin``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.action_form = free_text_form(self.action_form)

    def get_form(self, request, obj=None, **kwargs):
        return free_text_form(super().get_form(request, obj, **kwargs))

    def get_changelist_form(self, request, **kwargs):
        return free_text_form(super().get_changelist_form(request, **kwargs))

    def get_formsets_with_inlines(self, request, obj=None):
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            formset.form = free_text_form(formset.form)  # a class made for this request
            yield formset, inline

    def response_action(self, request, queryset):
        # Django answers an invalid action form with "No action selected."; say why instead.
        form = self.action_form(request.POST, auto_id=None)
        form.fields["action"].choices = self.get_action_choices(request)
        if not form.is_valid():
            refused = [
                (name, error)
                for name, errors in form.errors.as_data().items()
                for error in errors
                if error.code in FREE_TEXT_CODES
            ]
            for name, error in refused:
                self.message_user(request, f"{form.fields[name].label or name}: {error.message}", messages.ERROR)
            if refused:
                return None
        return super().response_action(request, queryset)


def free_text_admin(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """``admin_class`` with ``FreeTextAdminMixin`` (itself if it has it already). The admin
    site applies it to every admin registered on it."""
    if issubclass(admin_class, FreeTextAdminMixin):
        return admin_class
    return type(admin_class.__name__, (FreeTextAdminMixin, admin_class), {"__module__": admin_class.__module__})


def form_refused(form: forms.BaseForm, refusal: Refusal, fields: Mapping[str, str] | None = None) -> None:
    """A service's refusal as a form error: on the field its code is about, else the form's."""
    form.add_error((fields or {}).get(refusal.code), str(refusal))


def add_form_render(modeladmin, request, form, fieldsets, *, title: str, form_url: str, extra_context=None, **more):
    """Render ``form`` (laid out in ``fieldsets``) in the admin's add page, for an add
    view that creates through a service rather than a ModelForm save: ``title``, no
    "save and add another" or "save and continue", ``more`` added to the context."""
    adminform = helpers.AdminForm(form, fieldsets, {}, model_admin=modeladmin)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "adminform": adminform,
        "object_id": None,
        "original": None,
        "is_popup": False,
        "to_field": None,
        "media": modeladmin.media + adminform.media,
        "inline_admin_formsets": [],
        "errors": helpers.AdminErrorList(form, []),
        "preserved_filters": modeladmin.get_preserved_filters(request),
        "show_save_and_add_another": False,
        "show_save_and_continue": False,
        **more,
        **(extra_context or {}),
    }
    return modeladmin.render_change_form(request, context, add=True, form_url=form_url)


def act_on_each(
    modeladmin: admin.ModelAdmin,
    request,
    objects: Iterable[Any],
    act: Callable[[Any], object],
    *,
    done: str,
    not_done: str,
    name: Callable[[Any], str] = str,
) -> int:
    """An admin action that calls one service per object (each with its own checks and
    records), then says in one message what was done (``done`` formats ``{count}``) and
    in another each refusal, named (``not_done`` leads it). Returns the count done."""
    count, refused = 0, []
    for obj in objects:
        try:
            act(obj)
        except Refusal as refusal:
            refused.append(f"{name(obj)}: {refusal}")
        else:
            count += 1
    if count:
        modeladmin.message_user(request, done.format(count=count), messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, not_done + "; ".join(refused), messages.WARNING)
    return count


class BaseAdmin(FreeTextAdminMixin, admin.ModelAdmin):
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


class VisibleStoreFilter(admin.SimpleListFilter):
    """A store filter listing only the stores the user may see, by code (Django's related
    filter would list every store's name)."""

    title = "store"
    parameter_name = "store"

    def lookups(self, request, model_admin):
        return [(str(store.pk), f"{store.code} {store.name}") for store in stores_visible_to(request.user)]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(store_id=int(value))
        return queryset


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
