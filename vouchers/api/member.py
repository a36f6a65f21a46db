"""The member's vouchers and the reward catalogue under ``/api/v1/`` (issue 6).

- ``GET rewards``: the catalogue, each reward with whether this member may buy it now;
- ``GET me/vouchers``: the member's vouchers, newest first (limit/offset, ``state``);
- ``POST me/vouchers``: buy one with points (``Idempotency-Key`` header; 201, and 200
  with ``Idempotency-Replayed: true`` for the saved result of an earlier request);
- ``GET me/vouchers/{id}``, ``GET me/vouchers/{id}/qr`` (the rotating signed token and
  its QR images, active vouchers only), ``GET me/vouchers/{id}/barcode`` (SVG),
  ``POST me/vouchers/{id}/report-lost``.

Member bearer authentication and ``Cache-Control: no-store`` on every response (``MeApi``).
Another member's voucher answers 404 like one that does not exist. The code is shown to
its member formatted (``XXXX-XXXX-XXXX-XXXX``) in response bodies only, never in a URL.
The services (``vouchers.services.issuing``) hold the rules; these views parse and present.
"""

from __future__ import annotations

import base64

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from loyalty.api.cards import card_number_refusal, idempotency_key_has_pan
from loyalty.api.errors import IdempotencyKeyRequired
from loyalty.api.serializers import StrictInputSerializer, StrictIntegerField, UtcDateTimeField
from loyalty.ledger.api.base import IDEMPOTENCY_KEY_FORMAT, REPLAYED_HEADER, idempotency_key_parameter
from members.api.base import (
    COMMON_ERRORS,
    PAGE_MAX,
    MeApi,
    NotFound,
    PageQuerySerializer,
    error_response,
    member_operation,
    paginate,
    valid_input,
)
from members.api.serializers_auth import StrictChoiceField
from members.services.sessions import session_may
from vouchers.models import Reward, Voucher
from vouchers.selectors import STATES, member_voucher_get, member_vouchers, reward_catalogue, voucher_state
from vouchers.services.codes import code_format
from vouchers.services.images import barcode_svg, qr_png, qr_svg
from vouchers.services.issuing import VoucherRefused, voucher_purchase, voucher_report_lost
from vouchers.services.tokens import qr_token_issue

TAG = "Member vouchers"
SVG = "image/svg+xml"


# --- serializers ------------------------------------------------------------------------------


@extend_schema_serializer(component_name="RewardSummary")
class RewardSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    # Not an enum: "kind" names other choice sets in the schema (spectacular's enum naming).
    kind = serializers.CharField(help_text="fixed_value, percentage or free_item.")
    value_minor = serializers.IntegerField(allow_null=True, help_text="fixed_value: the amount off, in sen.")
    percent = serializers.IntegerField(allow_null=True, help_text="percentage: 1 to 100.")
    item = serializers.CharField(help_text="free_item: what the member gets; empty otherwise.")


@extend_schema_serializer(component_name="RewardOffer")
class RewardOfferSerializer(RewardSummarySerializer):
    description = serializers.CharField()
    points_price = serializers.IntegerField()
    valid_days = serializers.IntegerField(help_text="A voucher expires this many days after it is issued.")
    available_from = UtcDateTimeField(allow_null=True)
    available_until = UtcDateTimeField(allow_null=True)
    stock_remaining = serializers.IntegerField(allow_null=True, help_text="Null: unlimited.")
    min_tier = serializers.IntegerField()
    per_member_limit = serializers.IntegerField(allow_null=True, help_text="Null: no limit.")
    held = serializers.IntegerField(help_text="Vouchers of this reward the member was issued (any state).")
    eligible = serializers.BooleanField(help_text="True when nothing in `reasons` stops the purchase now.")
    reasons = serializers.ListField(
        child=serializers.CharField(),
        help_text=(
            "Why the member may not buy it now (the purchase's refusal codes): reward_not_yet_available, "
            "tier_too_low, per_member_limit_reached, out_of_stock, insufficient_points."
        ),
    )
    step_up_required = serializers.BooleanField(help_text="Buying it needs a step-up (SMS code) for `redeem`.")


def _summary(reward: Reward) -> dict:
    return {
        "id": reward.pk,
        "name": reward.name,
        "kind": reward.kind,
        "value_minor": reward.value_minor,
        "percent": reward.percent,
        "item": reward.item,
    }


@extend_schema_serializer(component_name="MeVoucher")
class VoucherSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    code = serializers.CharField(help_text="The voucher code, grouped by four (XXXX-XXXX-XXXX-XXXX).")
    state = serializers.ChoiceField(
        choices=STATES, help_text="active, redeemed, revoked, reported (lost or stolen) or expired."
    )
    source = serializers.ChoiceField(choices=Voucher.Source.choices)
    points_paid = serializers.IntegerField()
    reward = RewardSummarySerializer()
    issued_at = UtcDateTimeField()
    expires_at = UtcDateTimeField()
    redeemed_at = UtcDateTimeField(allow_null=True)
    revoked_at = UtcDateTimeField(allow_null=True)
    reported_at = UtcDateTimeField(allow_null=True)


def _voucher(voucher: Voucher) -> dict:
    return {
        "id": voucher.id,
        "code": code_format(voucher.code),
        "state": getattr(voucher, "state", None) or voucher_state(voucher),
        "source": voucher.source,
        "points_paid": voucher.points_paid,
        "reward": _summary(voucher.reward),
        "issued_at": voucher.issued_at,
        "expires_at": voucher.expires_at,
        "redeemed_at": voucher.redeemed_at,
        "revoked_at": voucher.revoked_at,
        "reported_at": voucher.reported_at,
    }


def _voucher_response(voucher: Voucher, *, status_code: int = status.HTTP_200_OK, headers=None) -> Response:
    return Response(VoucherSerializer(_voucher(voucher)).data, status=status_code, headers=headers)


VOUCHER_ID = OpenApiParameter(
    "voucher_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="A voucher id from me/vouchers."
)
VOUCHER_NOT_FOUND = error_response("not_found: no such voucher of this member.")
IDEMPOTENCY_KEY = idempotency_key_parameter(
    "1-128 printable ASCII characters, new for each purchase. Retrying with the same key and reward "
    "answers the voucher already bought (200, Idempotency-Replayed); the same key for another reward "
    "answers 422 idempotency_key_reused."
)
REPLAYED = OpenApiParameter(
    REPLAYED_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    enum=["true"],
    response=[200],
    description="Present (`true`) when the answer is the voucher an earlier request with this key bought.",
)


class VoucherApi(MeApi):
    def voucher(self, voucher_id: str) -> Voucher:
        voucher = member_voucher_get(member=self.member, voucher_id=voucher_id)
        if voucher is None:
            raise NotFound()
        return voucher


# --- catalogue ----------------------------------------------------------------------------------


class RewardCatalogueApi(MeApi):
    """The rewards on offer, cheapest first, with what stops this member buying each."""

    @member_operation("rewards_list", RewardOfferSerializer(many=True), tag=TAG)
    def get(self, request):
        offers = [
            {
                **_summary(entry.reward),
                "description": entry.reward.description,
                "points_price": entry.reward.points_price,
                "valid_days": entry.reward.valid_days,
                "available_from": entry.reward.available_from,
                "available_until": entry.reward.available_until,
                "stock_remaining": entry.reward.stock_remaining,
                "min_tier": entry.reward.min_tier,
                "per_member_limit": entry.reward.per_member_limit,
                "held": entry.held,
                "eligible": entry.eligible,
                "reasons": entry.reasons,
                "step_up_required": entry.step_up_required,
            }
            for entry in reward_catalogue(member=self.member)
        ]
        return Response(RewardOfferSerializer(offers, many=True).data)


# --- the member's vouchers ------------------------------------------------------------------------


@extend_schema_serializer(component_name="MeVoucherQuery")
class VoucherQuerySerializer(PageQuerySerializer):
    # The refusal names the allowed values and never echoes the value sent.
    state = StrictChoiceField(
        choices=STATES,
        required=False,
        error_messages={"invalid_choice": f"Not a voucher state: one of {', '.join(STATES)}."},
        help_text="Only vouchers in this state.",
    )


class MeVouchersApi(VoucherApi):
    """The member's vouchers (newest first); buying one."""

    @extend_schema_serializer(component_name="MeVoucherPage")
    class OutputSerializer(serializers.Serializer):
        results = VoucherSerializer(many=True)
        next_offset = serializers.IntegerField(allow_null=True, help_text="Offset of the next page; null at the end.")

    @extend_schema_serializer(component_name="MeVoucherPurchase")
    class InputSerializer(StrictInputSerializer):
        reward_id = StrictIntegerField(min_value=1, max_value=2**63 - 1, help_text="A reward id from /rewards.")

    @member_operation(
        "me_vouchers",
        OutputSerializer,
        tag=TAG,
        parameters=[VoucherQuerySerializer],
        description=f"At most {PAGE_MAX} per page; `next_offset` pages on (no total count).",
        errors={400: "validation_error (limit, offset, state)"},
    )
    def get(self, request):
        query = valid_input(VoucherQuerySerializer, request.query_params.dict())
        rows, next_offset = paginate(member_vouchers(member=self.member, state=query.get("state")), query)
        results = [_voucher(v) for v in rows]
        return Response(self.OutputSerializer({"results": results, "next_offset": next_offset}).data)

    @extend_schema(
        operation_id="me_voucher_purchase",
        tags=[TAG],
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        description=(
            "Buy one voucher of the reward with points: the points, the stock and the voucher change together "
            "or not at all. Above VOUCHERS.step_up_above_points (5,000) points it needs a step-up: an SMS code "
            "verified for action `redeem` less than five minutes ago, spent by the purchase. Web sessions "
            "signed in with remember me may not buy."
        ),
        responses={
            201: OpenApiResponse(VoucherSerializer, description="Bought."),
            200: OpenApiResponse(
                VoucherSerializer, description="The voucher an earlier request with this key bought (replay)."
            ),
            **COMMON_ERRORS,
            400: error_response("idempotency_key_required, malformed_json, validation_error (reward_id)."),
            403: error_response(
                "redeem_not_allowed (web remember-me session), step_up_required (detail.actions), tier_too_low, "
                "member_not_active."
            ),
            404: error_response("reward_not_found"),
            409: error_response(
                "reward_inactive, reward_not_yet_available, reward_no_longer_available, out_of_stock, "
                "per_member_limit_reached."
            ),
            415: error_response("unsupported_media_type: send application/json."),
            422: error_response(
                "card_number_refused (the Idempotency-Key or a value looks like a card number), "
                "insufficient_points, idempotency_key_reused, or another of the ledger's refusals "
                "(daily_redemptions_exceeded, daily_redemption_share_exceeded, large_redemption_cooling_period)."
            ),
        },
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "")
        if not IDEMPOTENCY_KEY_FORMAT.match(key):
            raise IdempotencyKeyRequired()
        if idempotency_key_has_pan(key):  # the key is stored: never a card number
            raise card_number_refusal("header:Idempotency-Key")
        data = valid_input(self.InputSerializer, request.data)
        purchase = voucher_purchase(
            member=self.member, reward_id=data["reward_id"], idempotency_key=key, session=self.session
        )
        voucher = member_voucher_get(member=self.member, voucher_id=purchase.voucher.pk)
        if purchase.replayed:
            return _voucher_response(voucher, headers={REPLAYED_HEADER: "true"})
        return _voucher_response(voucher, status_code=status.HTTP_201_CREATED)


class MeVoucherApi(VoucherApi):
    @member_operation(
        "me_voucher_read", VoucherSerializer, tag=TAG, parameters=[VOUCHER_ID], errors={404: VOUCHER_NOT_FOUND}
    )
    def get(self, request, voucher_id: str):
        return _voucher_response(self.voucher(voucher_id))


@extend_schema_serializer(component_name="MeVoucherQr")
class QrSerializer(serializers.Serializer):
    voucher_id = serializers.UUIDField()
    token = serializers.CharField(help_text="The signed token the QR code holds (valid during its step only).")
    step = serializers.IntegerField(help_text="The time step the token is valid in.")
    expires_at = UtcDateTimeField(help_text="The token stops being valid then: fetch a new one.")
    svg = serializers.CharField(help_text="The QR code as an SVG document.")
    png = serializers.CharField(help_text="The QR code as a PNG image, base64.")


class MeVoucherQrApi(VoucherApi):
    """The voucher's rotating QR token (new every VOUCHERS.qr_step_seconds), to show at the till."""

    @member_operation(
        "me_voucher_qr",
        QrSerializer,
        tag=TAG,
        parameters=[VOUCHER_ID],
        errors={
            403: "redeem_not_allowed (web remember-me session), member_not_active.",
            404: VOUCHER_NOT_FOUND,
            409: "voucher_not_active: redeemed, revoked, reported lost or expired (detail.state).",
        },
    )
    def get(self, request, voucher_id: str):
        voucher = self.voucher(voucher_id)
        if voucher.state != Voucher.Status.ACTIVE:
            raise VoucherRefused("voucher_not_active", state=voucher.state)
        # The QR is what the till redeems: a remember-me web session may not show it.
        if not session_may(self.session, "redeem"):
            raise VoucherRefused("redeem_not_allowed")
        token = qr_token_issue(voucher_id=voucher.id, member_id=self.member.member_id)
        body = {
            "voucher_id": voucher.id,
            "token": token.token,
            "step": token.step,
            "expires_at": token.expires_at,
            "svg": qr_svg(token.token),
            "png": base64.b64encode(qr_png(token.token)).decode("ascii"),
        }
        return Response(QrSerializer(body).data)


class MeVoucherBarcodeApi(VoucherApi):
    """The voucher's code as a Code 128 barcode (SVG), for tills that scan barcodes."""

    def perform_content_negotiation(self, request, force=False):
        # The success is SVG (an HttpResponse of its own), errors are JSON: never 406.
        return super().perform_content_negotiation(request, force=True)

    @member_operation(
        "me_voucher_barcode",
        OpenApiResponse(OpenApiTypes.STR, description="The barcode, an SVG document."),
        tag=TAG,
        status=(200, SVG),
        parameters=[VOUCHER_ID],
        errors={404: VOUCHER_NOT_FOUND},
    )
    def get(self, request, voucher_id: str):
        voucher = self.voucher(voucher_id)
        response = HttpResponse(barcode_svg(voucher.code), content_type=SVG)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return response


class MeVoucherReportLostApi(VoucherApi):
    """Report the voucher lost or stolen: it stops validating at once (cannot be undone)."""

    terms_exempt = "security: a member stops a lost voucher being used whatever the terms"

    @member_operation(
        "me_voucher_report_lost",
        VoucherSerializer,
        tag=TAG,
        request=None,
        parameters=[VOUCHER_ID],
        errors={
            404: VOUCHER_NOT_FOUND,
            409: "voucher_not_active: redeemed, revoked, already reported or expired (detail.state).",
        },
    )
    def post(self, request, voucher_id: str):
        voucher = self.voucher(voucher_id)
        try:
            voucher_report_lost(member=self.member, voucher_id=voucher.pk)
        except VoucherRefused as refusal:
            if refusal.code == "voucher_not_found":
                raise NotFound() from None
            raise
        return _voucher_response(self.voucher(voucher_id))
