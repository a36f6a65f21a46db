"""The API edge's one table: a refusal's code -> the HTTP status the API answers it with,
and the one error body.

Every domain refusal (``loyalty.kernel.refusals.Refusal``) a service raises reaches a
client through ``loyalty.api.errors``, which answers with this table. It lives in the
kernel, not in ``loyalty/api/``, because one more part needs it below the API: the
ledger's idempotency store saves the API's answer (status and body) under the key in the
same transaction as the operation, so that a retry replays it byte for byte.
"""

from __future__ import annotations

from typing import Any

from loyalty.kernel.refusals import Refusal

# A code not listed answers 422. A "family:code" row wins over the plain code for that
# family's refusals (see ``Refusal.family``); a "family:*" row is that family's status for
# every code without a row of its own. Sections by the
# service family that raises the codes; a code shared by families sits in its first one.
REFUSAL_STATUS: dict[str, int] = {
    # generic
    "refused": 422,
    "permission_denied": 403,
    "not_found": 404,
    "validation_error": 400,
    # the API edge itself, before any service runs (loyalty.api.errors.ApiRefusal)
    "bad_request": 400,
    "idempotency_key_required": 400,
    "member_not_found": 404,
    "card_number_refused": 422,
    "bidi_control_refused": 400,
    "invisible_character_refused": 400,
    "payload_too_large": 413,
    "ip_not_allowed": 403,
    "too_many_not_found": 429,
    # the ledger
    "insufficient_points": 422,
    "member_not_active": 403,
    "account_restricted": 403,
    "receipt_already_used": 409,
    "purchase_not_found": 404,
    "return_exceeds_purchase": 422,
    "refund_tender_mismatch": 409,
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
    # compliance: data-subject requests (compliance.requests)
    "data_request:bad_transition": 409,
    "data_request:export_not_found": 404,
    "data_request:grace_period": 409,
    "data_request:permission_denied": 403,
    "data_request:correction_field": 400,
    "data_request:correction_not_asked": 400,
    "data_request:invalid_value": 400,
    "data_request:pii_erased": 409,
    # members: the fraud team's restrictions (members.services.restrictions)
    "case_ref_invalid": 400,
    "not_restricted": 409,
    "lift_not_allowed": 403,
    "pii_erased": 409,
    "empty_update": 400,
    "invalid_phone": 400,
    "phone_taken": 409,
    "terms_not_current": 409,  # enrolment naming terms not in force (members.api.auth_views)
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
    # manual adjustments (staff pages only: the admin shows the message, the status
    # classifies the refusal)
    "adjustments:points_invalid": 400,
    "adjustments:justification_required": 422,
    "adjustments:verification_required": 422,
    "adjustments:verification_in_future": 422,
    "adjustments:document_required": 422,
    "adjustments:document_too_large": 422,
    "adjustments:document_type_refused": 422,
    "adjustments:reason_inactive": 422,
    "adjustments:not_allowed": 403,
    "adjustments:own_account": 403,
    "adjustments:own_request": 403,
    "adjustments:store_required": 403,
    "adjustments:insufficient_points": 409,
    "adjustments:rejection_reason_required": 400,
    "adjustments:not_found": 404,
    "adjustments:not_pending": 409,
    "adjustments:expired": 409,
    # the ledger refused an approved request's posting: a conflict, whatever its code
    "adjustment_posting:*": 409,
    # the till asks the member for a one-time code: a wrong one is an unprocessable
    # request of the till's, not a failed sign-in of its own
    "till:otp_invalid": 422,
    "till:otp_expired": 422,
    "till:otp_wrong_code": 422,
    "till:otp_too_many_guesses": 422,
    # consumer protection (compliance.consumer): terms and complaints
    "consumer:terms_not_found": 404,
    "consumer:terms_not_current": 409,
    "consumer:terms_published": 409,
    "consumer:terms_superseded": 409,
    "consumer:terms_acceptance_required": 403,
    "consumer:not_allowed": 403,
    "consumer:store_required": 403,
    "consumer:not_found": 404,
    "consumer:complaint_closed": 409,
    "consumer:complaint_rate_limited": 429,
    "consumer:kind_invalid": 400,
    "consumer:subject_required": 400,
    "consumer:body_required": 400,
    "consumer:subject_too_long": 400,
    "consumer:body_too_long": 400,
}
DEFAULT_REFUSAL_STATUS = 422


def refusal_status(refusal: Refusal) -> int:
    """The HTTP status of a domain refusal, from the one table."""
    if refusal.family:
        for key in (f"{refusal.family}:{refusal.code}", f"{refusal.family}:*"):
            if found := REFUSAL_STATUS.get(key):
                return found
    return REFUSAL_STATUS.get(refusal.code, DEFAULT_REFUSAL_STATUS)


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", "detail"?}}``."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if detail:
        body["error"]["detail"] = detail
    return body
