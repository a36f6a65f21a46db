"""The till (POS) API: one APIView per operation, each calling one ledger service.

Every request goes through, in this order:

1. signature authentication (401), the till's IP allow-list (403) and its rate (429);
2. the card-number guard over the raw body, the Idempotency-Key header and path
   values (422 ``card_number_refused``), before anything is parsed for use;
3. for writes, the ``Idempotency-Key`` header (400 ``idempotency_key_required``);
4. the JSON body: ``application/json`` only (415), valid JSON (400 ``malformed_json``),
   the view's InputSerializer (400 ``validation_error`` / ``invalid_loyalty_number``);
5. the member by loyalty number (404 ``member_not_found``), then the service.

A loyalty number travels only in a signed body, never in a URL (access logs and proxies
keep URLs): the balance look-up is ``POST members/balance``; the path form it replaced
answers 410 ``balance_lookup_retired`` (``pos_balance_path_retired``).

Points redemption (hold, authorise, capture, void) runs through ``vouchers.till_points``:
the hold and the capture need a staff member on shift at the till (``X-Staff-Shift``,
403 ``no_shift``), the hold applies the role limit or a manager override, and the capture
is refused (409 ``member_authorisation_required``) until the member has authorised the
redemption (the SMS code read to the cashier, or the app). A refusal of those controls
is not saved under the Idempotency-Key (a retry is judged again); the ledger's answers are.

Write responses are the service's ``Outcome`` verbatim: its status and its body, so a
replay under the same key answers byte for byte what the first request did, with an
extra ``Idempotency-Replayed: true`` header. The OutputSerializers document that body.
"""

from __future__ import annotations

import logging
import re
import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.auth import TillPermission, TillRateThrottle, TillSignatureAuthentication
from loyalty.api.cards import card_numbers_refuse
from loyalty.api.errors import (
    ApiRefusal,
    IdempotencyKeyRequired,
    MemberNotFound,
    error_body,
)
from loyalty.api.parsers import StrictJSONParser
from loyalty.api.serializers import (
    BalanceSerializer,
    ErrorSerializer,
    LoyaltyNumberField,
    OperationSerializer,
    PastDateTimeField,
    StrictCharField,
    StrictInputSerializer,
    amount_minor_field,
    points_field,
    receipt_number_field,
    receipt_ref_field,
)
from loyalty.exceptions import HoldNotFound
from loyalty.models import LedgerOperation, Till
from loyalty.selectors import member_balance
from loyalty.services import (
    Actor,
    Outcome,
    points_earn_purchase,
    points_earn_reverse,
)
from members.models import Member
from staffauth.net import client_ip
from vouchers.shifts import HEADER as SHIFT_HEADER
from vouchers.shifts import shift_for_request
from vouchers.till_points import (
    TillPointsRefused,
    till_redemption_authorise_code,
    till_redemption_capture,
    till_redemption_hold,
    till_redemption_void,
)

logger = logging.getLogger("loyalty.api.till")

IDEMPOTENCY_KEY_FORMAT = re.compile(r"\A[ -~]{1,128}\Z")
REPLAYED_HEADER = "Idempotency-Replayed"
TAG = "Till (POS)"

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    # The format the view enforces (IDEMPOTENCY_KEY_FORMAT), so clients and generated
    # requests know what a valid key is.
    {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]{1,128}$"},
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "1-128 printable ASCII characters, unique per till and write. Retrying with the same key and body "
        "returns the saved result; the same key with another body answers 422 idempotency_key_reused."
    ),
)
REPLAYED_RESPONSE_HEADER = OpenApiParameter(
    REPLAYED_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    enum=["true"],
    # The statuses a saved outcome can have: successes and the ledger's refusals.
    response=[200, 201, 403, 404, 409, 422],
    description="Present (`true`) when the answer is the saved result of an earlier request with this key.",
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


COMMON_ERRORS = {
    401: _error("Missing or invalid signature headers, unknown or inactive till, timestamp outside the window."),
    403: _error("The till's IP allow-list refuses the caller, or the member's account is not active."),
    413: _error("Body larger than TILL_MAX_BODY_BYTES."),
    415: _error("Content-Type is not application/json."),
    422: _error("card_number_refused, idempotency_key_reused, or a ledger refusal (insufficient_points, ...)."),
    429: _error("Too many requests from this till."),
}


def write_responses(success: type[serializers.Serializer], extra: dict | None = None) -> dict:
    return {
        201: OpenApiResponse(success, description="Applied (or replayed: see Idempotency-Replayed)."),
        **COMMON_ERRORS,
        400: _error("idempotency_key_required, malformed_json, validation_error, invalid_loyalty_number"),
        **(extra or {}),
    }


# --- Selectors -------------------------------------------------------------------------------


def member_by_loyalty_number(number: str) -> Member:
    member = Member.objects.filter(loyalty_number=number).first()
    if member is None:
        raise MemberNotFound()
    return member


def balance_of(member: Member) -> dict:
    """The member's balance; zero for a member who has never earned (no account yet)."""
    balance = member_balance(member)
    if balance is None:
        return {"available": 0, "pending": 0}
    return {"available": balance.available, "pending": balance.debits_pending}


def hold_of_store(hold_id: str, till: Till) -> uuid.UUID:
    """The id of a hold taken at the till's store; 404 otherwise.

    Hold ids are deterministic (uuid5 of the till and its key), so they are not
    secrets: a till may settle only its own store's holds.
    """
    try:
        parsed = uuid.UUID(hold_id)
    except ValueError:
        raise HoldNotFound() from None
    if not LedgerOperation.objects.filter(pk=parsed, kind=LedgerOperation.Kind.HOLD, store_id=till.store_id).exists():
        raise HoldNotFound()
    return parsed


def receipt_ref_for(till: Till, receipt_number: str) -> str:
    return f"{till.store.code}/{till.code}/{receipt_number}"


# --- Base views ----------------------------------------------------------------------------


class TillApi(APIView):
    """A till-signed endpoint."""

    authentication_classes = [TillSignatureAuthentication]
    permission_classes = [TillPermission]
    throttle_classes = [TillRateThrottle]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    @property
    def till(self) -> Till:
        return self.request.auth

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, allow-list, rate
        card_numbers_refuse(request, path_values=kwargs, till=request.auth)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"  # balances and member numbers: never cached
        return response

    def input(self, serializer_class: type[serializers.Serializer]) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class TillWriteApi(TillApi):
    def idempotency_key(self) -> str:
        key = self.request.headers.get("Idempotency-Key", "")
        if not IDEMPOTENCY_KEY_FORMAT.match(key):
            raise IdempotencyKeyRequired()
        return key

    def actor(self) -> Actor:
        return Actor(till=self.till)

    def fingerprint(self) -> dict:
        """The whole request (path and body) for the idempotency payload hash: the same
        key with any other request is refused, even where the points would match."""
        data = self.request.data if isinstance(self.request.data, dict) else {}
        return {"path": self.request.path, "body": data}

    @staticmethod
    def respond(outcome: Outcome) -> Response:
        headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
        return Response(outcome.body, status=outcome.status_code, headers=headers)


# --- Endpoints -----------------------------------------------------------------------------


class PurchaseCreateApi(TillWriteApi):
    """Earn points for a purchase. One earn per receipt (store/till/receipt number), ever."""

    @extend_schema_serializer(component_name="PurchaseRequest")
    class InputSerializer(StrictInputSerializer):
        loyalty_number = LoyaltyNumberField()
        receipt_number = receipt_number_field()
        amount_minor = amount_minor_field(help_text="Amount paid, in minor units (cents/sen).")
        occurred_at = PastDateTimeField(
            required=False, help_text="When the purchase happened (ISO 8601 with offset); defaults to now."
        )

    @extend_schema_serializer(component_name="Purchase")
    class OutputSerializer(OperationSerializer):
        operation_id = serializers.UUIDField(required=False, help_text="Absent when the purchase earned no points.")
        kind = serializers.CharField(required=False)
        receipt_ref = serializers.CharField(help_text="STORE/TILL/RECEIPT: the receipt's programme-wide reference.")
        expires_on = serializers.DateField(required=False, help_text="When these points expire.")
        pending_until = serializers.DateTimeField(
            required=False, help_text="With a return window configured: when the points become spendable."
        )
        tier = serializers.IntegerField(required=False, help_text="The member's tier after this purchase.")

    @extend_schema(
        operation_id="pos_purchase_create",
        tags=[TAG],
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER],
        responses=write_responses(
            OutputSerializer,
            {
                200: OpenApiResponse(OutputSerializer, description="The amount earns no points; nothing written."),
                404: _error("member_not_found"),
                409: _error("receipt_already_used"),
            },
        ),
    )
    def post(self, request):
        key = self.idempotency_key()
        data = self.input(self.InputSerializer)
        member = member_by_loyalty_number(data["loyalty_number"])
        receipt_ref = receipt_ref_for(self.till, data["receipt_number"])
        # The points are the ledger's to work out, at the tier read under the member's
        # lock: the key's fingerprint is the request as sent (issue 11, D4).
        outcome = points_earn_purchase(
            member=member,
            amount_minor=data["amount_minor"],
            receipt_ref=receipt_ref,
            actor=self.actor(),
            idempotency_key=key,
            fingerprint=self.fingerprint(),
            effective_at=data.get("occurred_at"),
        )
        return self.respond(outcome)


class ReturnCreateApi(TillWriteApi):
    """Take back points for returned goods (partial or whole).

    The purchase is named either by ``receipt_number`` (a receipt of this till) or by
    ``original_receipt_ref`` (``STORE/TILL/RECEIPT``, for a purchase made at another till
    or store of the programme). The amount is ``points`` (exact: the purchase's answer
    gave them) or ``amount_minor`` (the same share of the purchase's points as of its
    amount). Never more than the purchase earned in total; points already spent are not
    clawed below zero (the shortfall is flagged for review).
    """

    @extend_schema_serializer(component_name="ReturnRequest")
    class InputSerializer(StrictInputSerializer):
        loyalty_number = LoyaltyNumberField()
        receipt_number = receipt_number_field(required=False)
        original_receipt_ref = receipt_ref_field(
            required=False,
            help_text="STORE/TILL/RECEIPT of a purchase made at another till (instead of receipt_number).",
        )
        points = points_field(required=False, help_text="Points to take back (or give amount_minor).")
        amount_minor = amount_minor_field(required=False, help_text="Returned amount in minor units (or points).")

        def validate(self, attrs):
            if ("receipt_number" in attrs) == ("original_receipt_ref" in attrs):
                raise serializers.ValidationError(
                    "Give exactly one of receipt_number and original_receipt_ref.", code="one_receipt"
                )
            if ("points" in attrs) == ("amount_minor" in attrs):
                raise serializers.ValidationError("Give exactly one of points and amount_minor.", code="one_amount")
            return attrs

    @extend_schema_serializer(component_name="Return")
    class OutputSerializer(OperationSerializer):
        operation_id = serializers.UUIDField(required=False, help_text="Absent when nothing was returned.")
        kind = serializers.CharField(required=False)
        receipt_ref = serializers.CharField()
        reversed = serializers.IntegerField(help_text="Points taken back from the member.")
        shortfall = serializers.IntegerField(help_text="Points already spent (flagged for review).")
        pending_reduced = serializers.IntegerField(
            required=False, help_text="For a purchase still pending: points taken off before release."
        )
        tier = serializers.IntegerField(required=False, help_text="The member's tier after this return.")

    @extend_schema(
        operation_id="pos_return_create",
        tags=[TAG],
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER],
        responses=write_responses(
            OutputSerializer,
            {
                200: OpenApiResponse(OutputSerializer, description="The amount is worth no points; nothing written."),
                404: _error("member_not_found, purchase_not_found"),
            },
        ),
    )
    def post(self, request):
        key = self.idempotency_key()
        data = self.input(self.InputSerializer)
        member = member_by_loyalty_number(data["loyalty_number"])
        receipt_ref = data.get("original_receipt_ref") or receipt_ref_for(self.till, data["receipt_number"])
        # By amount, the ledger works out the points under the member's lock (the same
        # share of the purchase's points as of its amount, whatever the tier is now).
        outcome = points_earn_reverse(
            member=member,
            receipt_ref=receipt_ref,
            points=data.get("points"),
            amount_minor=data.get("amount_minor"),
            actor=self.actor(),
            idempotency_key=key,
            fingerprint=self.fingerprint(),
        )
        return self.respond(outcome)


# --- Points redemption: hold, member authorisation, capture, void (vouchers.till_points) ----------

SHIFT_PARAMETER = OpenApiParameter(
    SHIFT_HEADER,
    {"type": "string", "minLength": 1, "maxLength": 256},
    OpenApiParameter.HEADER,
    required=False,
    description="The shift token answered by POST /api/v1/pos/shifts (the staff member working this till).",
)


class TillPointsRefusal(ApiRefusal):
    """A refusal of the till's redemption controls, with its own code and status."""

    def __init__(self, refusal: TillPointsRefused):
        super().__init__(str(refusal), detail=refusal.detail or None)
        self.default_code = refusal.code  # instance attribute: the error handler reads it
        self.status_code = refusal.status
        if refusal.retry_after is not None:
            self.wait = refusal.retry_after  # the handler turns it into Retry-After


@extend_schema_serializer(component_name="RedemptionOverride")
class OverrideSerializer(StrictInputSerializer):
    username = StrictCharField(max_length=150)
    # No staff password is shorter than the policy's minimum or longer than its maximum.
    # Credentials are checked, never stored: not free text.
    password = StrictCharField(
        min_length=getattr(settings, "STAFF_PASSWORD_MIN_LENGTH", 12), max_length=128, free_text=False
    )
    otp = StrictCharField(
        min_length=6,
        max_length=16,
        free_text=False,
        help_text="The current code of the approving manager's authenticator app.",
    )


@extend_schema_serializer(component_name="RedemptionAuthorisation")
class AuthorisationOfferSerializer(serializers.Serializer):
    required = serializers.BooleanField(help_text="Always true: no capture before the member authorises.")
    methods = serializers.ListField(
        child=serializers.CharField(),
        help_text="sms_code (the member reads the SMS code to the cashier: POST .../authorise) and/or app "
        "(the member confirms in the app).",
    )
    challenge_id = serializers.UUIDField(allow_null=True, help_text="The SMS challenge to answer with the code.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the SMS code expires.")
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


def _refusing(call):
    try:
        return call()
    except TillPointsRefused as refusal:
        raise TillPointsRefusal(refusal) from None


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
        expires_at = serializers.DateTimeField(help_text="When the hold lapses unless captured.")
        authorisation = AuthorisationOfferSerializer(
            required=False, help_text="How the member authorises the redemption (absent for older holds)."
        )

    @extend_schema(
        operation_id="pos_redemption_hold",
        tags=[TAG],
        request=InputSerializer,
        parameters=[SHIFT_PARAMETER, IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER],
        responses=write_responses(
            OutputSerializer,
            {
                403: _error(
                    "no_shift, limit_exceeded (detail: points, limit, override_required), override_invalid "
                    "(detail.reason: override_credentials_invalid, override_not_permitted, override_limit_exceeded, "
                    "override_same_person), self_redemption_refused, member_staff_on_shift, member_not_active, "
                    "store_daily_limit_reached (detail: limit, used, points), ip_not_allowed"
                ),
                404: _error("member_not_found"),
                422: _error(
                    "below_minimum_redemption (detail: points, minimum), above_maximum_redemption (detail: points, "
                    "maximum), card_number_refused, idempotency_key_reused, or a ledger refusal "
                    "(insufficient_points, ...)"
                ),
                429: _error("override_locked_out, rate_limited"),
            },
        ),
    )
    def post(self, request):
        key = self.idempotency_key()
        data = self.input(self.InputSerializer)
        member = member_by_loyalty_number(data["loyalty_number"])
        fingerprint = {"path": request.path, "body": _without_secrets(request.data)}
        return self.respond(
            _refusing(
                lambda: till_redemption_hold(
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
        )


HOLD_ID_PARAMETER = OpenApiParameter(
    "hold_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The hold_id a redemption answered."
)
SETTLE_ERRORS = {
    404: _error("hold_not_found (or a hold of another store)"),
    409: _error("hold_not_open: already captured, voided or lapsed"),
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
        authorised_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="pos_redemption_authorise",
        tags=[TAG],
        request=InputSerializer,
        parameters=[HOLD_ID_PARAMETER],
        responses={
            200: OutputSerializer,
            **COMMON_ERRORS,
            400: _error("malformed_json, validation_error"),
            404: _error("hold_not_found (or a hold of another store)"),
            409: _error("hold_not_open, otp_used, no_phone_on_file"),
            422: _error(
                "otp_wrong_code, otp_invalid (another challenge), otp_expired, otp_too_many_guesses, "
                "card_number_refused"
            ),
            429: _error("otp_locked (Retry-After), rate_limited"),
        },
    )
    def post(self, request, hold_id: str):
        data = self.input(self.InputSerializer)
        record = _refusing(
            lambda: till_redemption_authorise_code(
                till=self.till, hold_id=hold_id, challenge_id=data["challenge_id"], code=data["code"]
            )
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
    balance_pending = serializers.IntegerField(help_text="Points still held by other open redemptions.")
    loyalty_number = serializers.CharField(help_text="Masked: the first two and last four digits.")
    store = serializers.CharField()
    till = serializers.CharField()
    redeemed_at = serializers.DateTimeField()
    authorised_via = serializers.CharField(help_text="sms_code or app.")
    authorised_at = serializers.DateTimeField()
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

    @extend_schema(
        operation_id="pos_redemption_capture",
        tags=[TAG],
        request=InputSerializer,
        parameters=[HOLD_ID_PARAMETER, SHIFT_PARAMETER, IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER],
        responses=write_responses(
            OutputSerializer,
            {
                **SETTLE_ERRORS,
                403: _error(
                    "no_shift, self_redemption_refused, store_daily_limit_reached (detail: limit, used, points), "
                    "ip_not_allowed"
                ),
                409: _error(
                    "member_authorisation_required (the member has not authorised it yet), hold_not_open "
                    "(already captured, voided or lapsed)"
                ),
            },
        ),
    )
    def post(self, request, hold_id: str):
        key = self.idempotency_key()
        data = self.input(self.InputSerializer)
        hold = hold_of_store(hold_id, self.till)
        return self.respond(
            _refusing(
                lambda: till_redemption_capture(
                    till=self.till,
                    shift=shift_for_request(request),
                    hold_id=hold,
                    idempotency_key=key,
                    points=data.get("points"),
                    fingerprint=self.fingerprint(),
                )
            )
        )


class RedemptionVoidApi(TillWriteApi):
    """Cancel a hold: every held point goes back to the member."""

    @extend_schema_serializer(component_name="VoidRequest")
    class InputSerializer(StrictInputSerializer):
        pass

    @extend_schema_serializer(component_name="Void")
    class OutputSerializer(OperationSerializer):
        hold_id = serializers.UUIDField()
        released = serializers.IntegerField(help_text="Held points given back to the member.")

    @extend_schema(
        operation_id="pos_redemption_void",
        tags=[TAG],
        request=InputSerializer,
        parameters=[HOLD_ID_PARAMETER, IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER],
        responses=write_responses(OutputSerializer, SETTLE_ERRORS),
    )
    def post(self, request, hold_id: str):
        key = self.idempotency_key()
        self.input(self.InputSerializer)
        hold = hold_of_store(hold_id, self.till)
        return self.respond(
            till_redemption_void(till=self.till, hold_id=hold, idempotency_key=key, fingerprint=self.fingerprint())
        )


class MemberBalanceApi(TillApi):
    """A member's points balance, looked up by the loyalty number in the signed body.

    A POST, so the number (or a card number typed by mistake) never goes in a URL, where
    access logs and proxies would keep it (issue 11, D7). A read: no Idempotency-Key.
    The retired path form ``GET members/{loyalty_number}/balance`` answers 410
    (``balance_lookup_retired``).
    """

    @extend_schema_serializer(component_name="MemberBalanceRequest")
    class InputSerializer(StrictInputSerializer):
        loyalty_number = LoyaltyNumberField()

    @extend_schema_serializer(component_name="MemberBalance")
    class OutputSerializer(serializers.Serializer):
        loyalty_number = serializers.CharField()
        balance = BalanceSerializer()

    @extend_schema(
        operation_id="pos_member_balance",
        tags=[TAG],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **COMMON_ERRORS,
            400: _error("malformed_json, validation_error, invalid_loyalty_number"),
            404: _error("member_not_found"),
            422: _error("card_number_refused (a card number where the loyalty number goes, or anywhere in the body)"),
        },
    )
    def post(self, request):
        data = self.input(self.InputSerializer)
        member = member_by_loyalty_number(data["loyalty_number"])
        data = self.OutputSerializer({"loyalty_number": member.loyalty_number, "balance": balance_of(member)}).data
        return Response(data)


@csrf_exempt
def pos_not_found(request, *args, **kwargs):
    """Any other path under the till API: a 404 in the API's error shape, not an HTML page.
    Writes nothing and reveals nothing, so it needs no signature."""
    response = JsonResponse(error_body("not_found", "Not found."), status=404)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
def pos_balance_path_retired(request, *args, **kwargs):
    """The retired ``GET members/{loyalty_number}/balance``: 410, whatever the method or
    the value, signed or not. The value in the path is never read, echoed or logged (the
    one log line names neither path nor value, and Django's request log, which would
    name the path, is skipped); look balances up with ``POST members/balance``."""
    logger.warning(
        "till balance look-up by the retired path form",
        extra={"event": "till_balance_path_retired", "ip": client_ip(request)},
    )
    response = JsonResponse(
        error_body(
            "balance_lookup_retired",
            "Balance look-ups by path are retired: POST /api/v1/pos/members/balance with "
            '{"loyalty_number": ...} in the signed body. Numbers never go in URLs.',
        ),
        status=410,
    )
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # django.request would log the path, number and all
    return response
