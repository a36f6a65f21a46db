"""Access logging hooks (COMPLIANCE.md §5) for the lower layers.

The writer of access events is ``compliance.access.record`` (the compliance app, a higher
layer, installs it here at start-up). Lower layers call ``access_record`` and hand out files
only through ``download_response``, the one place a ``Content-Disposition`` header is made:
every download becomes an access event with the file's SHA-256. Without an installed
recorder both refuse (fail closed: no unlogged access)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

_recorder: Callable[..., Any] | None = None


def install(recorder: Callable[..., Any]) -> None:
    global _recorder
    _recorder = recorder


def access_record(kind: str, **fields: Any) -> Any:
    """One access event (see compliance.access.record for the fields)."""
    if _recorder is None:
        raise ImproperlyConfigured("No access recorder installed (is the compliance app installed?).")
    return _recorder(kind, **fields)


def download_response(
    request: Any,
    content: bytes,
    *,
    filename: str,
    content_type: str,
    report_type: str,
    **fields: Any,
) -> HttpResponse:
    """An attachment response for ``content``, recorded first as a ``download`` access event
    (report type, the caller's fields, the file's SHA-256)."""
    access_record(
        "download", request=request, report_type=report_type,
        file_sha256=hashlib.sha256(content).hexdigest(), **fields,
    )  # fmt: skip
    response = HttpResponse(content, content_type=content_type)
    safe = "".join(c for c in filename if c.isalnum() or c in "._-") or "download"
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


class AccessLoggedAdminMixin:
    """The admin mixin of access logging. Put it first in a ModelAdmin's bases:

    - ``access_view_kind`` (``member_view`` or ``report``): a successful GET of the change
      view records that kind, with the object, ``access_member(obj)`` and
      ``access_report_type``;
    - with ``PostedSearchAdminMixin``, ``access_searched`` (called by its ``posted_search_find``) records ``member_search`` with the kind
      of search (``access_search_kind(term)``) and the hit count, never the term;
    - ``access_config = True``: every save and delete records ``config_change`` (who changed
      which object and how; the diff itself is the audit log's).
    """

    access_view_kind = ""
    access_report_type = ""
    access_config = False

    def access_member(self, obj: Any) -> int | None:
        return getattr(obj, "member_id", None)

    def access_search_kind(self, term: str) -> str:
        return "email" if "@" in term else "text"

    def change_view(self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        if self.access_view_kind and request.method == "GET" and getattr(response, "status_code", None) == 200:
            from django.contrib.admin.utils import unquote

            obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
            if obj is not None:
                access_record(
                    self.access_view_kind, request=request, obj=obj, member_id=self.access_member(obj),
                    report_type=self.access_report_type,
                )  # fmt: skip
        return response

    def access_searched(self, request: Any, term: str, found: Any) -> None:
        """Records a search (call from ``posted_search_find``): its kind and hit count."""
        access_record(
            "member_search", request=request, member_ids=[pk for pk in found.pks if isinstance(pk, int)],
            parameters={"by": self.access_search_kind(term), "hits": len(found.pks)}, rows=len(found.pks),
        )  # fmt: skip

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        if self.access_config:
            changed = len(form.changed_data) if form is not None else 0
            access_record(
                "config_change", request=request, obj=obj,
                parameters={"action": "change" if change else "add", "fields_changed": changed},
            )  # fmt: skip

    def delete_model(self, request: Any, obj: Any) -> None:
        if self.access_config:
            access_record("config_change", request=request, obj=obj, parameters={"action": "delete"})
        super().delete_model(request, obj)  # type: ignore[misc]
