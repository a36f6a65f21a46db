"""The till's voucher endpoints under ``/api/v1/pos/`` (signed like every till request).

- ``POST shifts``: clock in (username, password, TOTP code); answers the shift token
  the till sends as ``X-Staff-Shift`` with every voucher request.
- ``POST shifts/end``: clock out (the shift named by ``X-Staff-Shift``).
- ``POST vouchers/validate``: every check, nothing consumed.
- ``POST vouchers/redeem``: consume the voucher (``Idempotency-Key`` header; a retry
  answers the saved receipt with ``Idempotency-Replayed: true``); above the cashier's
  limit, with a manager override in the body.
- ``GET vouchers/public-key``: the Ed25519 keys that verify QR tokens offline.

Refusals (``{"error": {"code", "message", "detail"?}}``), the same for validate and redeem:

- 400: ``voucher_input_invalid`` (not exactly one of code and qr_token),
  ``member_identification_required``, ``code_malformed``, ``code_check_failed``,
  ``validation_error`` / ``invalid_loyalty_number``, ``idempotency_key_required``;
- 403: ``shift_required``, ``member_not_active``, ``role_limit_exceeded``,
  ``override_*``, ``own_member_account``, ``member_staff_on_shift``;
  clock-in: ``staff_credentials_invalid``, ``staff_not_permitted``, ``staff_not_at_store``;
- 404: ``voucher_not_found`` (no such voucher, or not this member's: one answer);
- 409: ``voucher_already_redeemed``;
- 410: ``voucher_expired``, ``voucher_revoked``, ``voucher_reported``;
- 422: ``qr_malformed``, ``qr_unknown_key``, ``qr_signature_invalid``, ``qr_expired``,
  ``qr_not_yet_valid``, ``idempotency_key_reused``, ``card_number_refused``;
- 429: ``staff_locked_out``, ``override_locked_out``, ``rate_limited``.

Codes, tokens and passwords never appear in a response's error, a log or a URL.
"""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from loyalty.api.serializers import (
    BalanceSerializer,
    LoyaltyNumberField,
    StrictCharField,
    StrictInputSerializer,
    UtcDateTimeField,
    named_serializer,
)
from loyalty.ledger.api.base import (
    IDEMPOTENCY_KEY_PARAMETER,
    REPLAYED_HEADER,
    StaffCredentialsSerializer,
    TillApi,
    TillWriteApi,
    replayed_header,
    till_operation,
)
from loyalty.ledger.api.redemptions import SHIFT_PARAMETER
from vouchers.services.redemption import override_for_voucher, voucher_redeem, voucher_validate
from vouchers.services.shifts import ShiftRefused, max_hours, shift_end, shift_for_request, shift_start
from vouchers.services.tokens import public_keys

REPLAYED_PARAMETER = replayed_header([201], "receipt")


# A voucher operation's own errors, after the till's (COMMON_ERRORS).
VOUCHER_ERRORS = {
    400: "voucher_input_invalid, member_identification_required, code_malformed, code_check_failed, "
    "validation_error, invalid_loyalty_number",
    403: "shift_required, member_not_active, role_limit_exceeded, override_same_person, override_store_mismatch, "
    "override_insufficient, override_credentials_invalid, override_not_permitted, override_limit_exceeded, "
    "store_daily_limit_reached (detail: limit, used, points), own_member_account, member_staff_on_shift, "
    "ip_not_allowed",
    404: "voucher_not_found: no such voucher, or not the presented member's",
    409: "voucher_already_redeemed",
    410: "voucher_expired, voucher_revoked, voucher_reported",
    422: "qr_malformed, qr_unknown_key, qr_signature_invalid, qr_expired, qr_not_yet_valid, "
    "idempotency_key_reused, card_number_refused",
    429: "override_locked_out, rate_limited",
}


def _code_field():
    return StrictCharField(
        required=False, max_length=64, help_text="The voucher code as typed or read from the barcode (16 symbols)."
    )


def _qr_field():
    return StrictCharField(
        required=False, max_length=256, free_text=False, help_text="The QR token scanned from the member's app."
    )


class _VoucherInput(StrictInputSerializer):
    code = _code_field()
    qr_token = _qr_field()
    loyalty_number = LoyaltyNumberField(
        required=False, help_text="The member identified at the till; required with a typed code."
    )


@extend_schema_serializer(component_name="TillRewardSummary")
class RewardSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField(help_text="fixed_value, percentage or free_item.")
    value_minor = serializers.IntegerField(allow_null=True)
    percent = serializers.IntegerField(allow_null=True)
    item = serializers.CharField()
    points_price = serializers.IntegerField()


@extend_schema_serializer(component_name="TillVoucherSummary")
class VoucherSummarySerializer(serializers.Serializer):
    voucher_id = serializers.UUIDField()
    code = serializers.CharField(help_text="Masked: the last four symbols only.")
    reward = RewardSummarySerializer()
    expires_at = UtcDateTimeField()


def _shift(request):
    return shift_for_request(request)


class ShiftStartApi(TillApi):
    """Clock in at this till: a staff user's username, password and TOTP code."""

    InputSerializer = named_serializer("ShiftStartRequest", StaffCredentialsSerializer)

    @extend_schema_serializer(component_name="ShiftStarted")
    class OutputSerializer(serializers.Serializer):
        shift_id = serializers.IntegerField()
        token = serializers.CharField(help_text="Send as X-Staff-Shift; shown once.")
        staff_id = serializers.IntegerField()
        started_at = UtcDateTimeField()
        expires_at = UtcDateTimeField(help_text="The shift ends by itself at this time at the latest.")

    @till_operation(
        "pos_shift_start",
        OutputSerializer,
        status=201,
        request=InputSerializer,
        errors={
            400: "validation_error",
            403: "staff_credentials_invalid, staff_not_permitted, staff_not_at_store, ip_not_allowed",
            429: "staff_locked_out, rate_limited",
        },
    )
    def post(self, request):
        data = self.input(self.InputSerializer)
        started = shift_start(
            till=self.till,
            username=data["username"],
            password=data["password"],
            otp_token=data["otp"],
            request=request._request,
        )
        shift = started.shift
        body = {
            "shift_id": shift.pk,
            "token": started.token,
            "staff_id": shift.staff_id,
            "started_at": shift.started_at,
            "expires_at": shift.started_at + timedelta(hours=max_hours()),
        }
        return Response(self.OutputSerializer(body).data, status=201)


class ShiftEndApi(TillApi):
    """Clock out: ends the shift named by X-Staff-Shift; its token stops working."""

    InputSerializer = named_serializer("ShiftEndRequest", StrictInputSerializer)

    @extend_schema_serializer(component_name="ShiftEnded")
    class OutputSerializer(serializers.Serializer):
        shift_id = serializers.IntegerField()
        ended_at = UtcDateTimeField()

    @till_operation(
        "pos_shift_end",
        OutputSerializer,
        request=InputSerializer,
        parameters=[SHIFT_PARAMETER],
        errors={400: "validation_error", 403: "shift_required, ip_not_allowed"},
    )
    def post(self, request):
        self.input(self.InputSerializer)
        shift = _shift(request)
        if shift is None:
            raise ShiftRefused("shift_required")
        shift = shift_end(shift=shift, request=request._request)
        return Response(self.OutputSerializer({"shift_id": shift.pk, "ended_at": shift.ended_at}).data)


class VoucherValidateApi(TillApi):
    """Check a voucher (every check of a redemption) without consuming it. Logged."""

    InputSerializer = named_serializer("VoucherValidateRequest", _VoucherInput)

    @extend_schema_serializer(component_name="VoucherValidation")
    class OutputSerializer(serializers.Serializer):
        valid = serializers.BooleanField()
        voucher = VoucherSummarySerializer()

    @till_operation(
        "pos_voucher_validate",
        OutputSerializer,
        request=InputSerializer,
        parameters=[SHIFT_PARAMETER],
        errors=VOUCHER_ERRORS,
    )
    def post(self, request):
        data = self.input(self.InputSerializer)
        validation = voucher_validate(
            till=self.till,
            shift=_shift(request),
            code=data.get("code"),
            qr_token=data.get("qr_token"),
            member_loyalty_number=data.get("loyalty_number"),
        )
        return Response(self.OutputSerializer({"valid": True, "voucher": validation.summary}).data)


OverrideSerializer = named_serializer("ManagerOverride", StaffCredentialsSerializer)


@extend_schema_serializer(component_name="VoucherReceipt")
class ReceiptSerializer(serializers.Serializer):
    class MemberSerializer(serializers.Serializer):
        loyalty_number = serializers.CharField(help_text="Masked: the first two and last four digits.")

    redemption_id = serializers.IntegerField()
    voucher = VoucherSummarySerializer()
    member = MemberSerializer()
    balance = BalanceSerializer(help_text="The member's points after this redemption.")
    store = serializers.CharField()
    till = serializers.CharField()
    shift_id = serializers.IntegerField()
    override = serializers.BooleanField(help_text="True when a manager override approved it.")
    redeemed_at = UtcDateTimeField()


class VoucherRedeemApi(TillWriteApi):
    """Redeem a voucher: single use, idempotent per till and Idempotency-Key."""

    @extend_schema_serializer(component_name="VoucherRedeemRequest")
    class InputSerializer(_VoucherInput):
        override = OverrideSerializer(
            required=False, help_text="A manager's credentials, for a voucher above the cashier's limit."
        )

    @till_operation(
        "pos_voucher_redeem",
        OpenApiResponse(ReceiptSerializer, description="Redeemed (or replayed: see Idempotency-Replayed)."),
        status=201,
        request=InputSerializer,
        parameters=[SHIFT_PARAMETER, IDEMPOTENCY_KEY_PARAMETER, REPLAYED_PARAMETER],
        errors={
            **VOUCHER_ERRORS,
            400: "idempotency_key_required, voucher_input_invalid, member_identification_required, code_malformed, "
            "code_check_failed, validation_error, invalid_loyalty_number",
        },
    )
    def post(self, request):
        key = self.idempotency_key()
        data = self.input(self.InputSerializer)
        shift = _shift(request)
        presented = {
            "code": data.get("code"),
            "qr_token": data.get("qr_token"),
            "member_loyalty_number": data.get("loyalty_number"),
        }
        override = None
        if "override" in data:
            credentials = data["override"]
            override = override_for_voucher(
                till=self.till,
                shift=shift,
                username=credentials["username"],
                password=credentials["password"],
                otp_token=credentials["otp"],
                request=request._request,
                **presented,
            )
        result = voucher_redeem(till=self.till, shift=shift, idempotency_key=key, override=override, **presented)
        headers = {REPLAYED_HEADER: "true"} if result.replayed else None
        return Response(result.receipt, status=201, headers=headers)


@extend_schema_serializer(component_name="VoucherPublicKey")
class PublicKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    algorithm = serializers.CharField()
    public_key = serializers.CharField(help_text="Standard base64 of the raw 32-byte key.")
    pem = serializers.CharField(help_text="SubjectPublicKeyInfo, PEM.")


class VoucherPublicKeysApi(TillApi):
    """The Ed25519 public keys that verify voucher QR tokens (current first). Tills
    cache them and check a token's signature and time step offline; redemption is
    always online."""

    @extend_schema_serializer(component_name="VoucherPublicKeys")
    class OutputSerializer(serializers.Serializer):
        keys = PublicKeySerializer(many=True)

    @till_operation("pos_voucher_public_keys", OpenApiResponse(OutputSerializer))
    def get(self, request):
        return Response({"keys": public_keys()})
