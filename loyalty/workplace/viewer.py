"""Who is looking: the viewer a list column or a read-only field links for.

Django calls an admin's display methods with the object alone, and an admin instance
serves every request (threads included), so the request cannot be kept on ``self``.
``ViewerAdminMixin`` sets the viewer in a context variable for the time of the view,
renders the page inside it (a TemplateResponse would otherwise render after the view
returned, the variable reset), and display methods read it with ``current_viewer()``
to pass to ``display.member_link`` and the like: a link only for a viewer who may open
the page behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_viewer: ContextVar = ContextVar("workplace_viewer", default=None)


def current_viewer():
    """The staff user the page being rendered is for: the one ``viewer_as`` set, else the
    signed-in user of the request being served; None in tasks and commands."""
    viewer = _viewer.get()
    if viewer is None:
        from staffauth.context import current_request

        user = getattr(current_request(), "user", None)
        viewer = user if getattr(user, "is_authenticated", False) else None
    return viewer


def guard_readonly_links() -> None:
    """Django's read-only foreign-key fields link to the related record's admin page
    whatever the viewer may open (a store manager's request page linked its reason, a
    page that answers 403). Link only for a viewer who may view that record."""
    from django.contrib.admin import helpers

    original = helpers.AdminReadonlyField.get_admin_url
    if getattr(original, "viewer_guarded", False):
        return

    def get_admin_url(self, remote_field, remote_obj):
        from loyalty.workplace.display import may_view

        if may_view(current_viewer(), remote_obj):
            return original(self, remote_field, remote_obj)
        return str(remote_obj)

    get_admin_url.viewer_guarded = True  # type: ignore[attr-defined]
    helpers.AdminReadonlyField.get_admin_url = get_admin_url  # type: ignore[method-assign]


@contextmanager
def viewer_as(user) -> Iterator[None]:
    token = _viewer.set(user)
    try:
        yield
    finally:
        _viewer.reset(token)


def _rendered(response):
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    return response


class ViewerAdminMixin:
    """Sets ``current_viewer()`` for the changelist, change (read-only) and history pages."""

    def changelist_view(self, request, extra_context=None):
        with viewer_as(request.user):
            return _rendered(super().changelist_view(request, extra_context))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        with viewer_as(request.user):
            return _rendered(super().change_view(request, object_id, form_url, extra_context))
