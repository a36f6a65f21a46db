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
    """The staff user the page being rendered is for, or None outside an admin view."""
    return _viewer.get()


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
