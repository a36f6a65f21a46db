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

from loyalty import freetext
from loyalty.kernel.refusals import Refusal

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


# --- The one table: a refusal's code -> the HTTP status the API answers it with -------------
# Every domain refusal (``loyalty.kernel.refusals.Refusal``) a service raises reaches a
# client through this table; a code not listed answers 422. A "family:code" row wins over
# the plain code for that family's refusals (see ``Refusal.family``). Sections by the
# service family that raises the codes; a code shared by families sits in its first one.
REFUSAL_STATUS: dict[str, int] = {
    # generic
    "refused": 422,
    "permission_denied": 403,
    "not_found": 404,
    "validation_error": 400,
    # the ledger
    "insufficient_points": 422,
    "member_not_active": 403,
    "receipt_already_used": 409,
    "purchase_not_found": 404,
    "return_exceeds_purchase": 422,
    "hold_not_found": 404,
    "hold_not_open": 409,
    "capture_exceeds_hold": 422,
    "redemption_not_found": 404,
    "refund_exceeds_redemption": 422,
    "idempotency_key_reused": 422,
    "velocity_limit": 422,
    "daily_earn_transactions_exceeded": 422,
    "daily_earn_points_exceeded": 422,
    "daily_redemptions_exceeded": 422,
    "daily_redemption_share_exceeded": 422,
    "large_redemption_cooling_period": 422,
    # member sign-in: one-time codes and sessions
    "otp_rate_limited": 429,
    "otp_sender_rate_limited": 429,
    "otp_locked": 429,
    "otp_invalid": 401,
    "otp_expired": 401,
    "otp_wrong_code": 401,
    "otp_used": 409,
    "otp_too_many_guesses": 403,
    "otp_required": 401,
    "session_refused": 401,
    "session_ended": 401,
    "session_timed_out": 401,
    "token_invalid": 401,
    "token_expired": 401,
    "refresh_token_reused": 401,
    "device_mismatch": 401,
    "device_blocked": 403,
    "impossible_travel": 403,
    "credentials_invalid": 401,
    # members: passwords, profile, contact details, consents
    "password_locked": 429,
    "password_not_set": 409,
    "current_password_required": 403,
    "current_password_wrong": 403,
    "change_details_not_allowed": 403,
    "step_up_required": 403,
    "pii_erased": 409,
    "empty_update": 400,
    "invalid_phone": 400,
    "phone_taken": 409,
    "no_phone_on_file": 409,
    "essential_consent_required": 400,
    "link_invalid": 400,
    "link_cancelled": 410,
    "link_expired": 410,
    "link_used": 409,
    "verification_cancelled": 410,
    "verification_expired": 410,
    "verification_used": 409,
    "taken": 409,
    # vouchers: rewards and issuing
    "reward_not_found": 404,
    "voucher_not_found": 404,
    "reward_inactive": 409,
    "reward_not_yet_available": 409,
    "reward_no_longer_available": 409,
    "out_of_stock": 409,
    "per_member_limit_reached": 409,
    "voucher_not_active": 409,
    "tier_too_low": 403,
    "redeem_not_allowed": 403,
    "goodwill_not_permitted": 403,
    "goodwill_above_limit": 403,
    "own_member_account": 403,
    "reason_required": 400,
    # the till: shifts, redemption, overrides, offline redemptions, points at the till
    "shift_required": 403,
    "no_shift": 403,
    "voucher_input_invalid": 400,
    "redemption_input_invalid": 400,
    "member_identification_required": 400,
    "code_malformed": 400,
    "code_check_failed": 400,
    "qr_malformed": 422,
    "qr_unknown_key": 422,
    "qr_signature_invalid": 422,
    "qr_expired": 422,
    "qr_not_yet_valid": 422,
    "voucher_already_redeemed": 409,
    "voucher_expired": 410,
    "voucher_revoked": 410,
    "voucher_reported": 410,
    "role_limit_exceeded": 403,
    "limit_exceeded": 403,
    "override_same_person": 403,
    "override_store_mismatch": 403,
    "override_insufficient": 403,
    "override_invalid": 403,
    "override_credentials_invalid": 403,
    "override_not_permitted": 403,
    "override_limit_exceeded": 403,
    "override_locked_out": 429,
    "store_daily_limit_reached": 403,
    "member_staff_on_shift": 403,
    "self_redemption_refused": 403,
    "own_attempt": 403,
    "staff_credentials_invalid": 403,
    "staff_locked_out": 429,
    "staff_not_at_store": 403,
    "staff_not_permitted": 403,
    "above_maximum_redemption": 422,
    "below_minimum_redemption": 422,
    "member_authorisation_required": 409,
    "already_decided": 409,
    # the till asks the member for a one-time code: a wrong one is an unprocessable
    # request of the till's, not a failed sign-in of its own
    "till:otp_invalid": 422,
    "till:otp_expired": 422,
    "till:otp_wrong_code": 422,
    "till:otp_too_many_guesses": 422,
}
DEFAULT_REFUSAL_STATUS = 422


def refusal_status(refusal: Refusal) -> int:
    """The HTTP status of a domain refusal, from the one table."""
    if refusal.family and (found := REFUSAL_STATUS.get(f"{refusal.family}:{refusal.code}")):
        return found
    return REFUSAL_STATUS.get(refusal.code, DEFAULT_REFUSAL_STATUS)


def refusal_response(refusal: Refusal) -> Response:
    """A domain refusal as the API's error answer (the handler's, for views that catch)."""
    headers = {"Retry-After": str(max(1, int(refusal.retry_after)))} if refusal.retry_after is not None else None
    return Response(
        error_body(refusal.code, str(refusal), dict(refusal.facts) or None),
        status=refusal_status(refusal),
        headers=headers,
    )


class ApiRefusal(exceptions.APIException):
    """A refusal of this API with a stable code and an optional ``detail`` object."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request was refused."

    def __init__(self, message: str | None = None, *, detail: dict | None = None):
        super().__init__(message or self.default_detail, self.default_code)
        self.extra = detail


class IdempotencyKeyRequired(ApiRefusal):
    default_code = "idempotency_key_required"
    default_detail = "Send an Idempotency-Key header: 1 to 128 printable ASCII characters."


class MemberNotFound(ApiRefusal):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "member_not_found"
    default_detail = "No member has this loyalty number."


class CardNumberRefused(ApiRefusal):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = freetext.CARD_NUMBER
    default_detail = freetext.MESSAGES[freetext.CARD_NUMBER]


class BidiControlRefused(ApiRefusal):
    default_code = freetext.BIDI_CONTROL
    default_detail = freetext.MESSAGES[freetext.BIDI_CONTROL]


class InvisibleCharacterRefused(ApiRefusal):
    default_code = freetext.INVISIBLE_CHARACTER
    default_detail = freetext.MESSAGES[freetext.INVISIBLE_CHARACTER]


class PayloadTooLarge(ApiRefusal):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class IpNotAllowed(ApiRefusal):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "ip_not_allowed"
    default_detail = "This till may not call from this address."


def error_body(code: str, message: str, detail: dict | None = None) -> dict:
    body = {"error": {"code": code, "message": message}}
    if detail:
        body["error"]["detail"] = detail
    return body


def _field_errors(detail) -> dict:
    """DRF's nested ErrorDetail structure as plain JSON: {field: [messages] | {...}}."""

    def plain(value):
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return str(value)

    if isinstance(detail, dict):
        return plain(detail)
    return {"non_field_errors": plain(detail if isinstance(detail, list) else [detail])}


def _codes(codes) -> list[str]:
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
        codes = _codes(exc.get_codes())
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
