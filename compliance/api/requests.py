"""The member's data-subject requests under ``/api/v1/me`` (COMPLIANCE.md §4).

- ``POST me/data-requests`` ``{kind, purposes?, fields?}``: a request (access, correction,
  erasure, consent_withdrawal). A correction names its ``fields``: a phone or email is
  corrected by the member's verified change (``PATCH me``, then the code or link), which
  completes the request when it lands; staff correct a name or birth date. The session alone is not enough: the member first verifies a
  step-up code for ``data_request`` (``POST me/step-up``), which this spends (403
  ``step_up_required`` otherwise). A consent withdrawal takes effect at once.
- ``GET me/data-requests``: the member's requests, newest first.
- ``POST me/data-requests/<id>/confirm`` ``{code}``: confirms a request staff took on
  the member's behalf, with the code sent to the registered contact.
- ``POST me/data-requests/<id>/cancel`` ``{reason}``: cancels an open request (an erasure
  during its 7-day grace period).
- ``POST me/data-export`` ``{token}``: the one-time download of an access request's ZIP
  (the token from the link, in the body: never in a URL), with a fresh step-up.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.response import Response

from compliance import requests as dsr
from compliance.models import DataSubjectRequest
from loyalty.api.errors import ApiRefusal
from loyalty.api.parsers import StrictJSONParser
from loyalty.api.serializers import StrictCharField, StrictInputSerializer, UtcDateTimeField
from loyalty.kernel.access_log import download_response
from members.api.base import MeApi, member_operation, valid_input
from members.models import Consent


class RequestNotFound(ApiRefusal):
    default_code = "not_found"
    default_detail = "No such request."


class RequestInput(StrictInputSerializer):
    kind = serializers.ChoiceField(choices=DataSubjectRequest.Kind.choices)
    purposes = serializers.ListField(
        child=serializers.ChoiceField(choices=[p for p in Consent.Purpose.values if p != "essential"]),
        required=False, max_length=10,
    )  # fmt: skip
    fields = serializers.ListField(
        child=serializers.ChoiceField(choices=dsr.CORRECTION_FIELDS), required=False, min_length=1, max_length=4,
        help_text="Correction only: the fields to correct. A phone number or email address is corrected through "
        "the verified change (PATCH /api/v1/me, then the code or link): the request completes when it lands. "
        "Staff correct a name or birth date (say what is wrong when they call).",
    )  # fmt: skip

    def validate(self, attrs):
        if "fields" in attrs and attrs["kind"] != DataSubjectRequest.Kind.CORRECTION:
            raise serializers.ValidationError(
                {"fields": serializers.ErrorDetail("Correction only.", code="not_for_kind")}
            )
        return attrs


class CodeInput(StrictInputSerializer):
    code = StrictCharField(max_length=40, free_text=False)


class ReasonInput(StrictInputSerializer):
    reason = StrictCharField(max_length=500)


class TokenInput(StrictInputSerializer):
    token = StrictCharField(max_length=100, free_text=False)


class RequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    kind = serializers.CharField()
    channel = serializers.CharField()
    state = serializers.CharField()
    received_at = UtcDateTimeField()
    due_at = UtcDateTimeField()
    grace_ends_at = UtcDateTimeField(allow_null=True)
    refusal_code = serializers.CharField()
    refusal_reason = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField(), source="detail.fields", default=list)
    corrected = serializers.ListField(child=serializers.CharField(), source="detail.corrected", default=list)


class RequestListSerializer(serializers.Serializer):
    results = RequestSerializer(many=True)


class DataRequestsApi(MeApi):
    terms_exempt = "data-subject requests (PDPA rights do not depend on accepting the terms)"
    parser_classes = [StrictJSONParser]

    @member_operation("me_data_requests", RequestListSerializer)
    def get(self, request):
        rows = DataSubjectRequest.objects.filter(member=self.member).order_by("-received_at")[:50]
        return Response(RequestListSerializer({"results": list(rows)}).data)

    @member_operation(
        "me_data_request_create", RequestSerializer, request=RequestInput,
        errors={400: "validation_error", 403: "step_up_required: verify a step-up for data_request first."},
    )  # fmt: skip
    def post(self, request):
        data = valid_input(RequestInput, request.data)
        detail = {"purposes": data["purposes"]} if data.get("purposes") else {}
        if data.get("fields"):
            detail["fields"] = sorted(set(data["fields"]))
        created = dsr.request_submit_by_member(member=self.member, kind=data["kind"], detail=detail)
        return Response(RequestSerializer(created).data, status=status.HTTP_201_CREATED)


class _OneRequestApi(MeApi):
    terms_exempt = "data-subject requests (PDPA rights do not depend on accepting the terms)"
    parser_classes = [StrictJSONParser]

    def own(self, pk: str) -> DataSubjectRequest:
        number = int(pk) if pk.isascii() and pk.isdigit() and len(pk) < 12 else None
        found = DataSubjectRequest.objects.filter(pk=number, member=self.member).first() if number else None
        if found is None:
            raise RequestNotFound()
        return found


class DataRequestConfirmApi(_OneRequestApi):
    @member_operation(
        "me_data_request_confirm", RequestSerializer, request=CodeInput,
        errors={400: "validation_error", 404: "not_found", 409: "bad_transition", 422: "wrong_code"},
    )  # fmt: skip
    def post(self, request, pk: str):
        code = valid_input(CodeInput, request.data)["code"]
        return Response(RequestSerializer(dsr.request_confirm_by_member(request_id=self.own(pk).pk, code=code)).data)


class DataRequestCancelApi(_OneRequestApi):
    @member_operation(
        "me_data_request_cancel",
        RequestSerializer,
        request=ReasonInput,
        errors={400: "validation_error", 404: "not_found", 409: "bad_transition"},
    )
    def post(self, request, pk: str):
        reason = valid_input(ReasonInput, request.data)["reason"]
        done = dsr.request_cancel(request_id=self.own(pk).pk, by_member=self.member, reason=reason)
        return Response(RequestSerializer(done).data)


class DataExportApi(MeApi):
    terms_exempt = "data-subject requests: the access request's download"
    parser_classes = [StrictJSONParser]

    @member_operation(
        "me_data_export_download",
        OpenApiResponse(OpenApiTypes.BINARY, description="The member's data: a ZIP (application/zip)."),
        request=TokenInput,
        errors={400: "validation_error", 403: "step_up_required", 404: "export_not_found: unknown, used or expired"},
    )  # fmt: skip
    def post(self, request):
        token = valid_input(TokenInput, request.data)["token"]
        body = dsr.export_download(member=self.member, token=token)
        return download_response(
            request, body, filename="my-data.zip", content_type="application/zip",
            report_type="member_data_export", member_id=self.member.pk,
        )  # fmt: skip


urlpatterns = [
    path("me/data-requests", DataRequestsApi.as_view(), name="me-data-requests"),
    path("me/data-requests/<str:pk>/confirm", DataRequestConfirmApi.as_view(), name="me-data-request-confirm"),
    path("me/data-requests/<str:pk>/cancel", DataRequestCancelApi.as_view(), name="me-data-request-cancel"),
    path("me/data-export", DataExportApi.as_view(), name="me-data-export"),
]
