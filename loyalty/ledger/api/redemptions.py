"""Points redemption at the till: hold, member authorisation, capture, void.

They run through ``vouchers.till_points``: the hold and the capture need a staff member
on shift at the till (``X-Staff-Shift``, 403 ``no_shift``), the hold applies the role
limit or a manager override, and the capture is refused (409
``member_authorisation_required``) until the member has authorised the redemption. A
refusal of those controls is not saved under the Idempotency-Key (a retry is judged
again); the ledger's answers are.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from loyalty.api.serializers import (
    LoyaltyNumberField,
    OperationSerializer,
    StrictCharField,
    StrictInputSerializer,
    UtcDateTimeField,
    named_serializer,
    points_field,
)
from loyalty.ledger.api.base import (
    StaffCredentialsSerializer,
    TillApi,
    TillWriteApi,
    error_doc,
    hold_of_store,
    otp_field,
    till_operation,
    write_operation,
)
from vouchers.services.shifts import HEADER as SHIFT_HEADER
from vouchers.services.shifts import shift_for_request
from vouchers.services.till_points import (
    till_redemption_authorise_code,
    till_redemption_capture,
    till_redemption_hold,
    till_redemption_void,
)

SHIFT_PARAMETER = OpenApiParameter(
    SHIFT_HEADER,
    {"type": "string", "minLength": 1, "maxLength": 256},
    OpenApiParameter.HEADER,
    required=False,
    description="The shift token answered by POST /api/v1/pos/shifts (the staff member working this till).",
)


@extend_schema_serializer(component_name="RedemptionOverride")
class OverrideSerializer(StaffCredentialsSerializer):
    otp = otp_field("The current code of the approving manager's authenticator app.")


@extend_schema_serializer(component_name="RedemptionAuthorisation")
class AuthorisationOfferSerializer(serializers.Serializer):
    required = serializers.BooleanField(help_text="Always true: no capture before the member authorises.")
    methods = serializers.ListField(
        child=serializers.CharField(),
        help_text="sms_code (the member reads the SMS code to the cashier: POST .../authorise) and/or app "
        "(the member confirms in the app).",
    )
    challenge_id = serializers.UUIDField(allow_null=True, help_text="The SMS challenge to answer with the code.")
    expires_at = UtcDateTimeField(allow_null=True, help_text="When the SMS code expires.")
    sms = serializers.CharField(
        help_text="sent, no_phone, or why no code was sent (otp_rate_limited, otp_locked): then only the app."
    )


def _without_secrets(data) -> dict:
    """The request body for the idempotency fingerprint, the override's password and code
    left out: a hash over them would be a guessable record of a credential."""
    if not isinstance(data, dict):
        return {}
    body = dict(data)
    if isinstance(body.get("override"), dict):
        body["override"] = {"username": body["override"].get("username")}
    return body


class RedemptionHoldApi(TillWriteApi):
    """Reserve points for a redemption (phase one) and ask the member to authorise it.

    Needs a staff member on shift at this till (X-Staff-Shift). A cashier redeems below
    ROLE_LIMITS.redeem_below.cashier (500) points, a store manager below 2,000; above,
    a manager override (a second person's credentials and code) in ``override``. Staff
    may not redeem to their own member account during their shift, nor to a colleague's
    who is on shift. A hold is of VOUCHERS.redeem_min_points (100) to redeem_max_points
    (50,000) points, and must fit in the store's daily cap (VOUCHERS.store_daily_redeem_points,
    points and vouchers redeemed at the store that day; 0: no cap), checked again at the
    capture. The member is texted a code bound to this hold; the capture is
    refused until they authorise it (the code read to the cashier, or the app). Capture
    or void the hold next; an unsettled hold lapses after ``LOYALTY_HOLD_MINUTES``.
    """

    @extend_schema_serializer(component_name="RedemptionRequest")
    class InputSerializer(StrictInputSerializer):
        loyalty_number = LoyaltyNumberField()
        points = points_field(help_text="Points to hold.")
        override = OverrideSerializer(
            required=False, help_text="A manager's credentials, for a redemption at or above the cashier's limit."
        )

    @extend_schema_serializer(component_name="Redemption")
    class OutputSerializer(OperationSerializer):
        hold_id = serializers.UUIDField(help_text="Capture or void the hold with this id.")
        expires_at = UtcDateTimeField(help_text="When the hold lapses unless captured.")
        authorisation = AuthorisationOfferSerializer(
            required=False, help_text="How the member authorises the redemption (absent for older holds)."
        )

    @write_operation(
        "pos_redemption_hold",
        OutputSerializer,
        request=InputSerializer,
        parameters=[SHIFT_PARAMETER],
        errors={
            403: "no_shift, limit_exceeded (detail: points, limit, override_required), override_invalid "
            "(detail.reason: override_credentials_invalid, override_not_permitted, override_limit_exceeded, "
            "override_same_person), self_redemption_refused, member_staff_on_shift, member_not_active, "
            "store_daily_limit_reached (detail: limit, used, points), ip_not_allowed",
            404: "member_not_found",
            422: "below_minimum_redemption (detail: points, minimum), above_maximum_redemption (detail: points, "
            "maximum), card_number_refused, idempotency_key_reused, or a ledger refusal "
            "(insufficient_points, ...)",
            429: "override_locked_out, rate_limited",
        },
    )
    def post(self, request):
        key, data, member = self.member_input(self.InputSerializer)
        fingerprint = {"path": request.path, "body": _without_secrets(request.data)}
        return self.respond(
            till_redemption_hold(
                till=self.till,
                shift=shift_for_request(request),
                member=member,
                points=data["points"],
                idempotency_key=key,
                override=data.get("override"),
                fingerprint=fingerprint,
                request=request._request,
            )
        )


HOLD_ID_PARAMETER = OpenApiParameter(
    "hold_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The hold_id a redemption answered."
)
SETTLE_ERRORS = {
    404: error_doc("hold_not_found (or a hold of another store)"),
    409: error_doc("hold_not_open: already captured, voided or lapsed"),
}


class RedemptionAuthoriseApi(TillApi):
    """The member authorises the redemption: the cashier enters the code the member
    received by SMS for this hold. Three guesses per code; the number's daily limit of
    wrong codes applies. Authorising an authorised hold answers it again."""

    @extend_schema_serializer(component_name="RedemptionAuthoriseRequest")
    class InputSerializer(StrictInputSerializer):
        challenge_id = serializers.UUIDField(help_text="The challenge_id the hold answered.")
        code = StrictCharField(
            max_length=12,
            free_text=False,  # digits only, checked and never stored
            validators=[RegexValidator(r"\A[0-9]+\Z", "Digits only.", code="invalid_code")],
            help_text="The code the member received by SMS.",
        )

    @extend_schema_serializer(component_name="RedemptionAuthorised")
    class OutputSerializer(serializers.Serializer):
        hold_id = serializers.UUIDField()
        authorised = serializers.BooleanField()
        authorised_via = serializers.CharField(help_text="sms_code or app.")
        authorised_at = UtcDateTimeField()

    @till_operation(
        "pos_redemption_authorise",
        OutputSerializer,
        request=InputSerializer,
        parameters=[HOLD_ID_PARAMETER],
        errors={
            400: "malformed_json, validation_error",
            404: "hold_not_found (or a hold of another store)",
            409: "hold_not_open, otp_used, no_phone_on_file",
            422: "otp_wrong_code, otp_invalid (another challenge), otp_expired, otp_too_many_guesses, "
            "card_number_refused",
            429: "otp_locked (Retry-After), rate_limited",
        },
    )
    def post(self, request, hold_id: str):
        data = self.input(self.InputSerializer)
        record = till_redemption_authorise_code(
            till=self.till, hold_id=hold_id, challenge_id=data["challenge_id"], code=data["code"]
        )
        body = {
            "hold_id": record.hold_operation_id,
            "authorised": True,
            "authorised_via": record.authorised_via,
            "authorised_at": record.authorised_at,
        }
        return Response(self.OutputSerializer(body).data)


@extend_schema_serializer(component_name="RedemptionReceipt")
class ReceiptSerializer(serializers.Serializer):
    redemption = serializers.CharField(help_text="points")
    hold_id = serializers.UUIDField()
    capture_id = serializers.UUIDField()
    points_redeemed = serializers.IntegerField()
    balance_remaining = serializers.IntegerField(help_text="Points the member can spend after this redemption.")
    balance_held = serializers.IntegerField(help_text="Points still held by other redemptions in progress.")
    balance_pending = serializers.IntegerField(
        help_text="Deprecated: the same figure as balance_held (held points, not the return window's pending "
        "ones); read balance_held. Removed in v2."
    )
    loyalty_number = serializers.CharField(help_text="Masked: the first two and last four digits.")
    store = serializers.CharField()
    till = serializers.CharField()
    redeemed_at = UtcDateTimeField()
    authorised_via = serializers.CharField(help_text="sms_code or app.")
    authorised_at = UtcDateTimeField()
    cashier_staff_id = serializers.IntegerField(help_text="The staff member who took the hold.")
    override = serializers.BooleanField(help_text="True when a manager override approved it.")
    override_by_staff_id = serializers.IntegerField(allow_null=True, help_text="The approving manager's staff id.")


class RedemptionCaptureApi(TillWriteApi):
    """Settle an authorised hold (phase two) for all its points or fewer; the rest is
    released. Needs a staff member on shift at this till; answers the receipt. Refused
    ``store_daily_limit_reached`` when the store's daily cap would be passed (nothing is
    captured; void the hold)."""

    @extend_schema_serializer(component_name="CaptureRequest")
    class InputSerializer(StrictInputSerializer):
        points = points_field(required=False, help_text="Points to capture (at most the hold); default all.")

    @extend_schema_serializer(component_name="Capture")
    class OutputSerializer(OperationSerializer):
        loyalty_number = serializers.CharField(help_text="Masked: the first two and last four digits.")
        hold_id = serializers.UUIDField()
        released = serializers.IntegerField(help_text="Held points given back to the member.")
        receipt = ReceiptSerializer(required=False, help_text="What the till prints (absent for older holds).")

    @write_operation(
        "pos_redemption_capture",
        OutputSerializer,
        request=InputSerializer,
        parameters=[HOLD_ID_PARAMETER, SHIFT_PARAMETER],
        errors={
            **SETTLE_ERRORS,
            403: "no_shift, self_redemption_refused, store_daily_limit_reached (detail: limit, used, points), "
            "ip_not_allowed",
            409: "member_authorisation_required (the member has not authorised it yet), hold_not_open "
            "(already captured, voided or lapsed)",
        },
    )
    def post(self, request, hold_id: str):
        key = self.idempotency_key()
        data = self.input(self.InputSerializer)
        hold = hold_of_store(hold_id, self.till)
        return self.respond(
            till_redemption_capture(
                till=self.till,
                shift=shift_for_request(request),
                hold_id=hold,
                idempotency_key=key,
                points=data.get("points"),
                fingerprint=self.fingerprint(),
            )
        )


class RedemptionVoidApi(TillWriteApi):
    """Cancel a hold: every held point goes back to the member."""

    InputSerializer = named_serializer("VoidRequest", StrictInputSerializer)

    @extend_schema_serializer(component_name="Void")
    class OutputSerializer(OperationSerializer):
        hold_id = serializers.UUIDField()
        released = serializers.IntegerField(help_text="Held points given back to the member.")

    @write_operation(
        "pos_redemption_void",
        OutputSerializer,
        request=InputSerializer,
        parameters=[HOLD_ID_PARAMETER],
        errors={**SETTLE_ERRORS},
    )
    def post(self, request, hold_id: str):
        key = self.idempotency_key()
        self.input(self.InputSerializer)
        hold = hold_of_store(hold_id, self.till)
        return self.respond(
            till_redemption_void(till=self.till, hold_id=hold, idempotency_key=key, fingerprint=self.fingerprint())
        )
