"""Member API of consumer protection, under ``api/v1/``.

- ``GET terms``: the terms in force (public).
- ``GET me/terms``: which version the member accepted, and whether they must accept the
  current one (``acceptance_required``: the app shows the terms at sign-in until then).
- ``POST me/terms/accept``: accept the current version (naming it).
- ``GET/POST me/complaints``: the member's complaints (newest first); file one.
- ``GET me/complaints/<id>``: one complaint with the responses sent to the member
  (internal notes never appear).

Refusals answer ``{code, message}`` with the status of ``loyalty.kernel.statuses``.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import consumer
from compliance.models import Complaint, ComplaintEvent, TermsAcceptance
from loyalty.api.schema import operation
from loyalty.api.serializers import StrictCharField, StrictInputSerializer, StrictIntegerField, UtcDateTimeField
from members.api.base import MeApi, NotFound, PageQuerySerializer, id_parameter, member_operation, paginate, valid_input

TAG = "Terms and complaints"


@extend_schema_serializer(component_name="Terms")
class TermsSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField(help_text="Plain text or Markdown.")
    effective_from = UtcDateTimeField()


class TermsApi(APIView):
    """The terms and conditions in force (public)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @operation("terms_current", TAG, TermsSerializer, common={}, errors={404: "terms_not_found: none in force."})
    def get(self, request):
        current = consumer.terms_current()
        if current is None:
            raise consumer.ConsumerRefused("terms_not_found", "No terms are in force.")
        return Response(TermsSerializer(current).data)


@extend_schema_serializer(component_name="MeTerms")
class MeTermsSerializer(serializers.Serializer):
    current_version = serializers.IntegerField(allow_null=True)
    accepted_version = serializers.IntegerField(allow_null=True)
    accepted_at = UtcDateTimeField(allow_null=True)
    acceptance_required = serializers.BooleanField(
        help_text="True when the member has not accepted the terms in force: show them and ask."
    )


def _me_terms(member) -> dict:
    current = consumer.terms_current()
    accepted = consumer.terms_accepted(member)
    return {
        "current_version": current.version if current else None,
        "accepted_version": accepted.version.version if accepted else None,
        "accepted_at": accepted.accepted_at if accepted else None,
        "acceptance_required": consumer.terms_acceptance_required(member),
    }


class MeTermsApi(MeApi):
    @member_operation("me_terms", MeTermsSerializer, tag=TAG)
    def get(self, request):
        return Response(MeTermsSerializer(_me_terms(self.member)).data)


class MeTermsAcceptApi(MeApi):
    terms_exempt = "accepting the terms is the way through the gate"

    @extend_schema_serializer(component_name="MeTermsAccept")
    class InputSerializer(StrictInputSerializer):
        version = StrictIntegerField(min_value=1, max_value=2**31 - 1, help_text="The version shown to the member.")

    @member_operation(
        "me_terms_accept",
        MeTermsSerializer,
        tag=TAG,
        request=InputSerializer,
        errors={
            400: "validation_error",
            404: "terms_not_found: none in force.",
            409: "terms_not_current: a newer version is in force (detail.current_version).",
        },
    )
    def post(self, request):
        data = valid_input(self.InputSerializer, request.data)
        consumer.terms_accept(member=self.member, version=data["version"], channel=TermsAcceptance.Channel.API)
        return Response(MeTermsSerializer(_me_terms(self.member)).data)


@extend_schema_serializer(component_name="ComplaintResponse")
class ResponseSerializer(serializers.Serializer):
    at = UtcDateTimeField()
    text = serializers.CharField()


@extend_schema_serializer(component_name="Complaint")
class ComplaintSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    kind = serializers.ChoiceField(choices=Complaint.Kind.choices)
    subject = serializers.CharField()
    state = serializers.ChoiceField(choices=Complaint.State.choices)
    received_at = UtcDateTimeField()
    respond_by = UtcDateTimeField()
    resolve_by = UtcDateTimeField()


@extend_schema_serializer(component_name="ComplaintDetail")
class ComplaintDetailSerializer(ComplaintSerializer):
    body = serializers.CharField()
    responses = ResponseSerializer(many=True)


def _complaint(complaint: Complaint, *, detail: bool = False) -> dict:
    row = {
        "id": complaint.pk,
        "reference": f"C-{complaint.pk}",
        "kind": complaint.kind,
        "subject": complaint.subject,
        "state": complaint.state,
        "received_at": complaint.received_at,
        "respond_by": complaint.respond_by,
        "resolve_by": complaint.resolve_by,
    }
    if detail:
        row["body"] = complaint.body
        row["responses"] = [
            {"at": e.at, "text": e.text} for e in complaint.events.filter(kind=ComplaintEvent.Kind.RESPONSE)
        ]
    return row


class MeComplaintsApi(MeApi):
    terms_exempt = "complaints: a member may complain, about the terms too, without accepting them"

    @extend_schema_serializer(component_name="MeComplaintPage")
    class OutputSerializer(serializers.Serializer):
        results = ComplaintSerializer(many=True)
        next_offset = serializers.IntegerField(allow_null=True)

    @extend_schema_serializer(component_name="MeComplaintFile")
    class InputSerializer(StrictInputSerializer):
        kind = serializers.ChoiceField(choices=Complaint.Kind.choices)
        subject = StrictCharField(max_length=consumer.SUBJECT_MAX)
        body = StrictCharField(max_length=consumer.BODY_MAX, help_text="Never include a card number.")
        ledger_operation_id = StrictIntegerField(min_value=1, max_value=2**63 - 1, required=False)
        voucher_id = StrictIntegerField(min_value=1, max_value=2**63 - 1, required=False)
        store_id = StrictIntegerField(min_value=1, max_value=2**31 - 1, required=False)

    @member_operation(
        "me_complaints", OutputSerializer, tag=TAG, parameters=[PageQuerySerializer], errors={400: "validation_error"}
    )
    def get(self, request):
        query = valid_input(PageQuerySerializer, request.query_params.dict())
        rows, next_offset = paginate(self.member.complaints.order_by("-received_at", "-pk"), query)
        return Response(
            self.OutputSerializer({"results": [_complaint(c) for c in rows], "next_offset": next_offset}).data
        )

    @member_operation(
        "me_complaint_file",
        ComplaintDetailSerializer,
        tag=TAG,
        status=201,
        request=InputSerializer,
        errors={
            400: "validation_error",
            422: "card_number_refused (remove the card number), related_not_found (a record not the member's)",
            429: "complaint_rate_limited: too many complaints today (Retry-After).",
        },
    )
    def post(self, request):
        data = valid_input(self.InputSerializer, request.data)
        complaint = consumer.complaint_file(member=self.member, **data)
        return Response(
            ComplaintDetailSerializer(_complaint(complaint, detail=True)).data, status=status.HTTP_201_CREATED
        )


class MeComplaintApi(MeApi):
    @member_operation(
        "me_complaint",
        ComplaintDetailSerializer,
        tag=TAG,
        parameters=[id_parameter("complaint_id", OpenApiTypes.INT)],
        errors={404: "not_found"},
    )
    def get(self, request, complaint_id: str):
        if not complaint_id.isascii() or not complaint_id.isdigit() or len(complaint_id) > 18:
            raise NotFound()
        complaint = self.member.complaints.filter(pk=int(complaint_id)).first()
        if complaint is None:
            raise NotFound()
        return Response(ComplaintDetailSerializer(_complaint(complaint, detail=True)).data)
