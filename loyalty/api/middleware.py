"""The door: what is refused (or withheld) before any view, parser or log line sees it.

``ApiRequestGuardMiddleware`` runs right after the request id is set. On every request
a card number in the ``User-Agent`` header (stored with security events and lockout
records) is replaced by ``[REDACTED]``. Under ``/api/`` it answers in the API's error
shape (``{"error": {...}}``):

- 422 ``card_number_refused`` when a query parameter's name or value looks like a card
  number (``loyalty.kernel.pan``); ``detail.field`` is ``query:<name>``. URLs are logged (access
  logs, proxies), so a card number must not get past the door in one; this refusal logs
  the parameter's name only.
- 413 ``payload_too_large`` when the body is larger than the API takes
  (``loyalty.api.limits``), declared or not (chunked).
"""

from __future__ import annotations

from django.http import JsonResponse
from rest_framework.exceptions import APIException

from loyalty.api.cards import card_number_refusal
from loyalty.api.errors import error_body
from loyalty.api.limits import api_body_limit, body_read
from loyalty.kernel.pan import contains_pan, redact_pans

API_PREFIX = "/api/"


def _refusal_response(exc: APIException) -> JsonResponse:
    response = JsonResponse(
        error_body(exc.default_code, str(exc.detail), getattr(exc, "extra", None)), status=exc.status_code
    )
    response["Cache-Control"] = "no-store"
    return response


def query_card_field(request) -> str | None:
    """``query:<name>`` of the first query parameter whose name or value looks like a
    card number, or None. A name that is itself one is withheld."""
    for name, values in request.GET.lists():
        if contains_pan(name):
            return "query:[name withheld]"
        if any(contains_pan(value) for value in values):
            return f"query:{name[:64]}"
    return None


class ApiRequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if agent := request.META.get("HTTP_USER_AGENT"):
            request.META["HTTP_USER_AGENT"] = redact_pans(agent)
        if request.path_info.startswith(API_PREFIX):
            try:
                if (field := query_card_field(request)) is not None:
                    raise card_number_refusal(field)
                body_read(request, limit=api_body_limit(request.path_info))
            except APIException as exc:
                return _refusal_response(exc)
        return self.get_response(request)
