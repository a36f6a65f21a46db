"""Till redemptions seen from both ends, under ``/api/v1/`` (issue 6, "POS Redemption Controls").

The member (bearer access token, ``Cache-Control: no-store``, ``MeApi``):

- ``GET me/redemptions/pending``: the member's till redemptions waiting for their
  authorisation (what the app shows before the member confirms);
- ``POST me/redemptions/{hold_id}/confirm``: the member authorises a till redemption of
  theirs in the app (a session that may redeem; above ``VOUCHERS["step_up_above_points"]``
  a ``redeem`` step-up is spent). Another member's hold answers 404 like none.

The till (signed; ``loyalty.ledger.api``):

- ``POST pos/redemptions/{hold_id}/authorise``: the SMS code read to the cashier;
- ``POST pos/offline/redemptions``: redemptions a till attempted while offline, queued
  for a Store Manager's approval, never honoured as they stand (``vouchers.services.offline``).

Mounted by one include in ``loyalty/api/urls.py``, before the till's catch-all.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from loyalty.api.parsers import StrictJSONParser
from loyalty.api.serializers import (
    LoyaltyNumberField,
    PastDateTimeField,
    StrictCharField,
    StrictInputSerializer,
    UtcDateTimeField,
    named_serializer,
    points_field,
)
from loyalty.ledger.api.base import (
    IDEMPOTENCY_KEY_PARAMETER,
    REPLAYED_HEADER,
    TillWriteApi,
    replayed_header,
    till_operation,
)
from loyalty.ledger.api.redemptions import SHIFT_PARAMETER
from members.api.base import MeApi, member_operation, valid_input
from vouchers.services.offline import offline_redemption_submit
from vouchers.services.shifts import shift_for_request
from vouchers.services.till_points import member_redemption_confirm, member_redemptions_pending


@extend_schema_serializer(component_name="MeTillRedemption")
class MemberRedemptionSerializer(serializers.Serializer):
    hold_id = serializers.UUIDField()
    points = serializers.IntegerField()
    store = serializers.CharField(help_text="The store's code.")
    store_name = serializers.CharField()
    till = serializers.CharField()
    created_at = UtcDateTimeField()
    expires_at = UtcDateTimeField(help_text="The till's hold lapses then unless captured.")
    authorised = serializers.BooleanField()
    authorised_via = serializers.CharField(help_text='"sms_code", "app" or "" (not yet).')
    authorised_at = UtcDateTimeField(allow_null=True)
    step_up_required = serializers.BooleanField(help_text="Confirming needs a step-up (SMS code) for `redeem`.")


def _redemption(record) -> dict:
    return {
        "hold_id": record.hold_operation_id,
        "points": record.points,
        "store": record.store.code,
        "store_name": record.store.name,
        "till": record.till.code,
        "created_at": record.created_at,
        "expires_at": record.hold_operation.hold_expires_at,
        "authorised": record.authorised_at is not None,
        "authorised_via": record.authorised_via,
        "authorised_at": record.authorised_at,
        "step_up_required": record.points > settings.VOUCHERS.get("step_up_above_points", 5000),
    }


class MemberRedemptionsPendingApi(MeApi):
    """The member's till redemptions waiting for their authorisation, newest first."""

    @extend_schema_serializer(component_name="MeTillRedemptionsPending")
    class OutputSerializer(serializers.Serializer):
        results = MemberRedemptionSerializer(many=True)

    @member_operation(
        "me_redemptions_pending", OutputSerializer, summary="Till redemptions waiting for my authorisation"
    )
    def get(self, request):
        records = list(member_redemptions_pending(member=self.member)[:20])
        return Response(self.OutputSerializer({"results": [_redemption(r) for r in records]}).data)


class MemberRedemptionConfirmApi(MeApi):
    """Authorise a till redemption of mine (the cashier then completes it)."""

    parser_classes = [StrictJSONParser]

    InputSerializer = named_serializer("MeTillRedemptionConfirm", StrictInputSerializer)

    @member_operation(
        "me_redemption_confirm",
        OpenApiResponse(MemberRedemptionSerializer, description="Authorised (or already authorised)."),
        summary="Confirm a till redemption in the app",
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                "hold_id",
                OpenApiTypes.UUID,
                OpenApiParameter.PATH,
                description="The hold_id of the till redemption (GET me/redemptions/pending).",
            )
        ],
        errors={
            400: "validation_error, malformed_json",
            403: "redeem_not_allowed (web remember-me session), step_up_required (detail.actions), member_not_active",
            404: "not_found: no such till redemption of this member.",
            409: "hold_not_open: already captured, voided or lapsed.",
        },
    )
    def post(self, request, hold_id: str):
        valid_input(self.InputSerializer, request.data if request.data else {})
        record = member_redemption_confirm(member=self.member, session=self.session, hold_id=hold_id)
        return Response(MemberRedemptionSerializer(_redemption(record)).data, status=status.HTTP_200_OK)


# --- offline redemptions (the till) ---------------------------------------------------------------


OFFLINE_REPLAYED = replayed_header([202], "record")


class OfflineRedemptionSubmitApi(TillWriteApi):
    """A redemption the till attempted while offline: never honoured as it stands. It is
    queued for a Store Manager's approval online (then carried out with every normal
    check, or rejected), and the member is told it awaits verification. Idempotent per
    till and Idempotency-Key. Offline earns go to POST purchases with their
    ``occurred_at``."""

    @extend_schema_serializer(component_name="OfflineRedemptionRequest")
    class InputSerializer(StrictInputSerializer):
        loyalty_number = LoyaltyNumberField()
        points = points_field(required=False, help_text="Points the member asked to redeem (or voucher_code).")
        voucher_code = StrictCharField(
            required=False, max_length=64, help_text="The voucher code typed or read from the barcode (or points)."
        )
        attempted_at = PastDateTimeField(help_text="When the till attempted it, offline (ISO 8601 with offset).")

        def validate(self, attrs):
            if ("points" in attrs) == ("voucher_code" in attrs):
                raise serializers.ValidationError("Give exactly one of points and voucher_code.", code="one_of")
            return attrs

    @extend_schema_serializer(component_name="OfflineRedemptionQueued")
    class OutputSerializer(serializers.Serializer):
        pending_id = serializers.UUIDField()
        status = serializers.CharField(help_text="pending, approved or rejected.")
        honoured = serializers.BooleanField(help_text="Always false: nothing was redeemed by this request.")
        points = serializers.IntegerField(allow_null=True)
        voucher_id = serializers.UUIDField(allow_null=True)
        attempted_at = UtcDateTimeField()
        received_at = UtcDateTimeField()
        member_notified = serializers.BooleanField(help_text="The member was told it awaits verification.")

    @till_operation(
        "pos_offline_redemption_submit",
        OpenApiResponse(OutputSerializer, description="Queued (or replayed: see Idempotency-Replayed)."),
        status=202,
        request=InputSerializer,
        parameters=[SHIFT_PARAMETER, IDEMPOTENCY_KEY_PARAMETER, OFFLINE_REPLAYED],
        errors={
            400: "idempotency_key_required, malformed_json, validation_error, invalid_loyalty_number, code_malformed, "
            "code_check_failed",
            404: "member_not_found, voucher_not_found (none of this member's)",
            422: "idempotency_key_reused, card_number_refused",
        },
    )
    def post(self, request):
        key, data, member = self.member_input(self.InputSerializer)
        submitted = offline_redemption_submit(
            till=self.till,
            shift=shift_for_request(request),
            member=member,
            idempotency_key=key,
            attempted_at=data["attempted_at"],
            points=data.get("points"),
            voucher_code=data.get("voucher_code"),
        )
        pending = submitted.pending
        body = {
            "pending_id": pending.pk,
            "status": pending.status,
            "honoured": False,
            "points": pending.points,
            "voucher_id": pending.voucher_id,
            "attempted_at": pending.attempted_at,
            "received_at": pending.received_at,
            "member_notified": True,
        }
        headers = {REPLAYED_HEADER: "true"} if submitted.replayed else None
        return Response(self.OutputSerializer(body).data, status=status.HTTP_202_ACCEPTED, headers=headers)
