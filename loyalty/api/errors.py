"""One error shape for every API response, and the API's own refusals.

Every error an API view answers is ``{"error": {"code", "message", "detail"?}}``:
``code`` is a stable snake_case identifier clients branch on, ``message`` is for
people, ``detail`` (optional) carries field errors or the field a refusal is about.
The ledger's refusals come back from the services in the same shape already.

Messages never quote the request (a header or body could hold a card number or
personal data): built-in DRF errors get fixed messages here instead of DRF's, some of
which echo the Content-Type or method sent.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from loyalty.kernel import freetext
from loyalty.kernel.refusals import Refusal
from loyalty.kernel.statuses import REFUSAL_STATUS, error_body, refusal_status

logger = logging.getLogger("django.request")

# DRF's built-in exceptions: default code -> (our stable code, fixed message).
BUILTIN = {
    "not_authenticated": (
        "authentication_required",
        "Authenticate the request: tills sign it, members send their access token.",
    ),
    "authentication_failed": ("authentication_failed", "The request could not be authenticated."),
    "permission_denied": ("permission_denied", "You may not do this."),
    "not_found": ("not_found", "Not found."),
    "method_not_allowed": ("method_not_allowed", "This method is not allowed here."),
    "not_acceptable": ("not_acceptable", "This API answers application/json only."),
    "unsupported_media_type": ("unsupported_media_type", "Send the request body as application/json."),
    "throttled": ("rate_limited", "Too many requests; retry later."),
    "parse_error": ("malformed_json", "The request body is not valid JSON."),
}
VALIDATION_CODE = "validation_error"
VALIDATION_MESSAGE = "The request is invalid; see detail."
# A field error with one of these codes names the whole refusal (the till branches on it).
PROMOTED_FIELD_CODES = ("invalid_loyalty_number",)


def refusal_response(refusal: Refusal) -> Response:
    """A domain refusal as the API's error answer (the handler's, for views that catch)."""
    headers = {"Retry-After": str(max(1, int(refusal.retry_after)))} if refusal.retry_after is not None else None
    return Response(
        error_body(refusal.code, str(refusal), dict(refusal.facts) or None),
        status=refusal_status(refusal),
        headers=headers,
    )


class ApiRefusal(exceptions.APIException):
    """A refusal of the API edge itself (a missing header, an unknown loyalty number, a
    body too large...), before any service runs: a stable code and an optional ``detail``
    object. Its status comes from the one table (``REFUSAL_STATUS``), like a domain
    refusal's; a code not listed there answers 400."""

    default_code = "bad_request"
    default_detail = "The request was refused."

    def __init__(self, message: str | None = None, *, detail: dict | None = None):
        super().__init__(message or self.default_detail, self.default_code)
        self.status_code = REFUSAL_STATUS.get(self.default_code, type(self).status_code)
        self.extra = detail


class IdempotencyKeyRequired(ApiRefusal):
    default_code = "idempotency_key_required"
    default_detail = "Send an Idempotency-Key header: 1 to 128 printable ASCII characters."


class MemberNotFound(ApiRefusal):
    default_code = "member_not_found"
    default_detail = "No member has this loyalty number."


class CardNumberRefused(ApiRefusal):
    default_code = freetext.CARD_NUMBER
    default_detail = freetext.MESSAGES[freetext.CARD_NUMBER]


class BidiControlRefused(ApiRefusal):
    default_code = freetext.BIDI_CONTROL
    default_detail = freetext.MESSAGES[freetext.BIDI_CONTROL]


class InvisibleCharacterRefused(ApiRefusal):
    default_code = freetext.INVISIBLE_CHARACTER
    default_detail = freetext.MESSAGES[freetext.INVISIBLE_CHARACTER]


class PayloadTooLarge(ApiRefusal):
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class IpNotAllowed(ApiRefusal):
    default_code = "ip_not_allowed"
    default_detail = "This till may not call from this address."


def plain_errors(detail):
    """DRF's nested ErrorDetail structure as plain JSON (as the handler shows field errors)."""
    if isinstance(detail, dict):
        return {str(k): plain_errors(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [plain_errors(v) for v in detail]
    return str(detail)


def _field_errors(detail) -> dict:
    """DRF's nested ErrorDetail structure as plain JSON: {field: [messages] | {...}}."""
    if isinstance(detail, dict):
        return plain_errors(detail)
    return {"non_field_errors": plain_errors(detail if isinstance(detail, list) else [detail])}


def error_codes(codes) -> list[str]:
    """Every code in DRF's nested ``get_codes()`` structure."""
    found, stack = [], [codes]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            found.append(str(item))
    return found


def _describe(exc: exceptions.APIException) -> tuple[str, str, dict | None]:
    if isinstance(exc, ApiRefusal):
        return exc.default_code, str(exc.detail), exc.extra
    if isinstance(exc, exceptions.ValidationError):
        codes = error_codes(exc.get_codes())
        code = next((c for c in PROMOTED_FIELD_CODES if c in codes), VALIDATION_CODE)
        message = "The loyalty number is malformed." if code != VALIDATION_CODE else VALIDATION_MESSAGE
        return code, message, _field_errors(exc.detail)
    code = getattr(exc.detail, "code", None) or exc.default_code
    if code in BUILTIN:
        return BUILTIN[code][0], BUILTIN[code][1], None
    # Raised by our own code with an explicit code and a message of ours.
    return str(code), str(exc.detail), None


def api_exception_handler(exc, context):
    """DRF ``EXCEPTION_HANDLER``: every error in the one shape, with the right status.

    An unexpected exception is logged (the log filter redacts card numbers) and
    answered with a generic 500 in the same shape, carrying the request id to quote.
    """
    from rest_framework.views import set_rollback  # here: rest_framework.views imports our parser

    if isinstance(exc, Refusal):
        set_rollback()
        return refusal_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if not isinstance(exc, exceptions.APIException):
        request = context.get("request")
        path = getattr(request, "path", "") if request is not None else ""
        logger.error(
            "Internal Server Error: %s",
            path,
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"status_code": 500, "request": getattr(request, "_request", None)},
        )
        set_rollback()
        request_id = getattr(getattr(request, "_request", None), "request_id", "")
        return Response(
            error_body(
                "server_error",
                "Something went wrong on our side. Quote the request id if you report it.",
                {"request_id": request_id} if request_id else None,
            ),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if (wait := getattr(exc, "wait", None)) is not None:
        headers["Retry-After"] = str(max(1, int(wait)))
    code, message, detail = _describe(exc)
    set_rollback()
    return Response(error_body(code, message, detail), status=exc.status_code, headers=headers)
