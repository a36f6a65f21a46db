"""How large a request body an API takes: one reading of the body, for both APIs.

The till API takes at most ``TILL_MAX_BODY_BYTES``, the member API (everything else under
``/api/``) at most ``MEMBER_API_MAX_BODY_BYTES``. A larger body answers 413
``payload_too_large`` before anything parses it, whether the size is declared
(``Content-Length``) or only found by reading (a chunked body buffered by an ASGI
server). Django's own cap (``DATA_UPLOAD_MAX_MEMORY_SIZE``) is never what answers: its
``RequestDataTooBig`` would reach DRF's handler as a 500.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http.request import RawPostDataException
from rest_framework import exceptions

from loyalty.api.errors import PayloadTooLarge

TILL_API_PREFIX = "/api/v1/pos/"


def api_body_limit(path: str) -> int:
    """The largest body, in bytes, the API serving ``path`` takes."""
    return settings.TILL_MAX_BODY_BYTES if path.startswith(TILL_API_PREFIX) else settings.MEMBER_API_MAX_BODY_BYTES


def body_read(request, *, limit: int) -> bytes:
    """The request body (a Django ``HttpRequest``), read once and cached by Django.
    Raises PayloadTooLarge (413) past ``limit`` bytes, ParseError if the stream was
    already consumed."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(detail={"max_bytes": limit})
    try:
        body = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(detail={"max_bytes": limit}) from None
    except RawPostDataException:
        raise exceptions.ParseError() from None
    if len(body) > limit:
        raise PayloadTooLarge(detail={"max_bytes": limit})
    return body


def till_body_read(request) -> bytes:
    """The body of a till request (at most ``TILL_MAX_BODY_BYTES``); see ``body_read``."""
    return body_read(request, limit=settings.TILL_MAX_BODY_BYTES)
