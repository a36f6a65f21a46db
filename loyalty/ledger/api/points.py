"""The till's points endpoints: earn for a purchase, returns, the member's balance.

See ``loyalty.ledger.api.base`` for what every request goes through. Write responses are
the ledger's ``Outcome`` verbatim (a replay adds ``Idempotency-Replayed: true``).
"""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from loyalty.api.errors import (
    error_body,
)
from loyalty.api.serializers import (
    BalanceSerializer,
    LoyaltyNumberField,
    OperationSerializer,
    PastDateTimeField,
    StrictBooleanField,
    StrictInputSerializer,
    UtcDateTimeField,
    amount_minor_field,
    items_field,
    points_field,
    receipt_number_field,
    receipt_ref_field,
    tender_ref_field,
)
from loyalty.kernel.access_log import access_record
from loyalty.ledger.api.base import (
    TillApi,
    TillWriteApi,
    balance_of,
    member_by_loyalty_number,
    receipt_ref_for,
    till_operation,
    write_operation,
)
from loyalty.ledger.operations import points_earn_purchase, points_earn_reverse
from loyalty.ledger.tilldata import till_data
from staffauth.net import client_ip

logger = logging.getLogger("loyalty.api.till")


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
        items = items_field()
        tender_ref = tender_ref_field(
            required=False,
            help_text="The payment processor's token for how the purchase was paid (never a card number: "
            "refused with 422 card_number_refused). Stored only as a keyed hash; a return refunded "
            "on another tender is refused (refund_tender_mismatch).",
        )

    @extend_schema_serializer(component_name="Purchase")
    class OutputSerializer(OperationSerializer):
        operation_id = serializers.UUIDField(required=False, help_text="Absent when the purchase earned no points.")
        kind = serializers.CharField(required=False)
        receipt_ref = serializers.CharField(help_text="STORE/TILL/RECEIPT: the receipt's programme-wide reference.")
        expires_on = serializers.DateField(required=False, help_text="When these points expire.")
        pending_until = UtcDateTimeField(
            required=False, help_text="With a return window configured: when the points become spendable."
        )
        tier = serializers.IntegerField(required=False, help_text="The member's tier after this purchase.")

    @write_operation(
        "pos_purchase_create",
        OutputSerializer,
        request=InputSerializer,
        examples=[
            OpenApiExample(
                "A purchase",
                request_only=True,
                value={
                    "loyalty_number": "9900000000000127",
                    "receipt_number": "R-1001",
                    "amount_minor": 12500,
                    "occurred_at": "2026-01-31T14:05:00+08:00",
                },
            ),
            OpenApiExample(
                "A purchase with its item lines and tender token",
                request_only=True,
                value={
                    "loyalty_number": "9900000000000127",
                    "receipt_number": "R-1002",
                    "amount_minor": 12500,
                    "items": [
                        {"sku": "SKU-COFFEE-250G", "qty": 2, "amount_minor": 5000},
                        {"sku": "SKU-MUG-BLUE", "qty": 1, "amount_minor": 7500},
                    ],
                    "tender_ref": "tok_visa_8f3a2c91d0",
                },
            ),
            OpenApiExample(
                "Points earned (kept pending through the return window)",
                response_only=True,
                status_codes=["201"],
                value={
                    "balance": {"available": 1200, "held": 0, "pending": 125},
                    "kind": "earn",
                    "loyalty_number": "9900000000000127",
                    "operation_id": "3f2b1c9e-8d4a-4e6f-9b2a-1c3d5e7f9a0b",
                    "pending_until": "2026-02-14T06:05:00Z",
                    "points": 125,
                    "receipt_ref": "KL01/DEMO/R-1001",
                    "tier": 1,
                },
            ),
        ],
        errors={
            200: OpenApiResponse(OutputSerializer, description="The amount earns no points; nothing written."),
            404: "member_not_found",
            409: "receipt_already_used",
        },
    )
    def post(self, request):
        key, data, member = self.member_input(self.InputSerializer)
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
            till=till_data(items=data.get("items"), tender_ref=data.get("tender_ref")),
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

    Optional till data: ``items`` (the returned lines), ``tender_ref`` (the refund's
    payment token: one other than the purchase's is refused, 409 ``refund_tender_mismatch``
    with ``refund_advice`` ``refuse``, unless ``LOYALTY_RETURN_TENDER_MISMATCH`` is
    ``allow_and_flag``) and ``receipt_presented``. A return without a recorded purchase
    (404 ``purchase_not_found``) is recorded for the fraud team, as every refusal is.
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
        items = items_field()
        tender_ref = tender_ref_field(
            required=False,
            help_text="The payment processor's token for the refund's tender (never a card number). "
            "Another tender than the purchase's is refused (409 refund_tender_mismatch) by default.",
        )
        receipt_presented = StrictBooleanField(
            required=False, help_text="Whether the customer showed the original receipt."
        )

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
        refund_advice = serializers.ChoiceField(
            choices=["flagged"],
            required=False,
            help_text="Present when the refund's tender differs from the purchase's and the programme allows "
            "it (LOYALTY_RETURN_TENDER_MISMATCH=allow_and_flag): the return is booked and flagged for review.",
        )

    @write_operation(
        "pos_return_create",
        OutputSerializer,
        request=InputSerializer,
        examples=[
            OpenApiExample(
                "A return of one item, receipt shown, refunded on the purchase's tender",
                request_only=True,
                value={
                    "loyalty_number": "9900000000000127",
                    "receipt_number": "R-1002",
                    "amount_minor": 7500,
                    "items": [{"sku": "SKU-MUG-BLUE", "qty": 1, "amount_minor": 7500}],
                    "tender_ref": "tok_visa_8f3a2c91d0",
                    "receipt_presented": True,
                },
            ),
            OpenApiExample(
                "Points taken back",
                response_only=True,
                status_codes=["201"],
                value={
                    "balance": {"available": 1125, "held": 0, "pending": 0},
                    "kind": "reverse_earn",
                    "loyalty_number": "9900000000000127",
                    "operation_id": "7a1d3c5e-2b4f-4a6c-8e0d-9f1b3d5c7e9a",
                    "points": 75,
                    "receipt_ref": "KL01/DEMO/R-1002",
                    "reversed": 75,
                    "shortfall": 0,
                    "tier": 1,
                },
            ),
        ],
        errors={
            200: OpenApiResponse(OutputSerializer, description="The amount is worth no points; nothing written."),
            404: "member_not_found, purchase_not_found",
            409: "refund_tender_mismatch (detail.refund_advice: refuse): refund to the purchase's tender",
        },
    )
    def post(self, request):
        key, data, member = self.member_input(self.InputSerializer)
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
            till=till_data(
                items=data.get("items"),
                tender_ref=data.get("tender_ref"),
                receipt_presented=data.get("receipt_presented"),
            ),
        )
        return self.respond(outcome)


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

    @till_operation(
        "pos_member_balance",
        OutputSerializer,
        request=InputSerializer,
        examples=[
            OpenApiExample("A look-up", request_only=True, value={"loyalty_number": "9900000000000127"}),
            OpenApiExample(
                "The balance, as the member's app shows it",
                response_only=True,
                status_codes=["200"],
                value={
                    "balance": {"available": 1200, "held": 300, "pending": 125},
                    "loyalty_number": "9900000000000127",
                },
            ),
        ],
        errors={
            400: "malformed_json, validation_error, invalid_loyalty_number",
            404: "member_not_found",
            422: "card_number_refused (a card number where the loyalty number goes, or anywhere in the body)",
        },
    )
    def post(self, request):
        data = self.input(self.InputSerializer)
        member = member_by_loyalty_number(data["loyalty_number"])
        # Access log: which till looked up which member (by number; the number is not kept).
        access_record("till_lookup", request=request, member_id=member.pk, obj=self.till, parameters={"by": "number"})
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
