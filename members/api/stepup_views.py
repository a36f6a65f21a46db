"""Step-up verification for the signed-in member: ``/api/v1/me/step-up``.

A step-up is an SMS code sent to the member's registered number and verified for one
named action; it then covers that action once, for ``MEMBER_AUTH["step_up_seconds"]``
(5 minutes), and the service carrying the action out spends it
(``members.services.otp.otp_step_up_consume``). The spec's MFA triggers that need one: changing
the email or phone, setting, resetting or removing the password, redeeming more than
5,000 points. A verified step-up also passes the fraud score's step-up requirement
(``members.services.restrictions.member_step_up_pass``: the member's next redemption or
contact change asked for one).

The code goes only to the number on file (the member cannot choose where it goes), and
the limits of every SMS code apply: 5 codes an hour per number, 3 guesses per code, 10
wrong codes a day lock the number.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from loyalty.api.errors import ApiRefusal
from loyalty.api.parsers import StrictJSONParser
from loyalty.api.serializers import StrictInputSerializer, UtcDateTimeField
from members.api.auth_views import RETRY_AFTER
from members.api.base import MeApi, member_operation, request_ip, valid_input
from members.api.serializers_auth import StrictChoiceField, StrictUUIDField, sms_code_field
from members.services.otp import otp_request
from members.services.pii import MemberPiiErased, member_pii_read
from members.services.restrictions import member_step_up_verify

# The actions a member may verify a step-up for (each names what will spend it).
STEP_UP_ACTIONS = (
    "change_email",
    "change_phone",
    "password_set",
    "password_reset",
    "password_remove",
    "redeem",
    "restriction_lift",  # a low-risk spending freeze (members.services.restrictions)
    "data_request",  # a data-subject request or an export download (compliance.api.requests)
)


class NoPhone(ApiRefusal):
    default_code = "no_phone_on_file"
    default_detail = "There is no phone number on this account to send a code to."


class StepUpApi(MeApi):
    terms_exempt = "the step-up code data-subject requests, the data export and contact changes need"
    parser_classes = [StrictJSONParser]

    def phone(self) -> str:
        try:
            phone = member_pii_read(self.member).phone
        except MemberPiiErased:
            phone = None
        if not phone:
            raise NoPhone()
        return phone


class StepUpRequestApi(StepUpApi):
    @extend_schema_serializer(component_name="StepUpRequest")
    class InputSerializer(StrictInputSerializer):
        action = StrictChoiceField(choices=STEP_UP_ACTIONS, help_text="What the step-up will authorise.")

    @extend_schema_serializer(component_name="StepUpChallenge")
    class OutputSerializer(serializers.Serializer):
        challenge_id = serializers.UUIDField(help_text="Send back with the code to me/step-up/verify.")
        expires_at = UtcDateTimeField()

    @member_operation(
        "me_step_up_request",
        OutputSerializer,
        status=202,
        summary="Text a step-up code to the registered number",
        request=InputSerializer,
        parameters=[RETRY_AFTER],
        errors={
            400: "validation_error: detail is {field: {code, message}}.",
            409: "no_phone_on_file",
            429: "otp_rate_limited, otp_locked (Retry-After in seconds).",
        },
    )
    def post(self, request):
        action = valid_input(self.InputSerializer, request.data)["action"]
        result = otp_request(phone=self.phone(), purpose="step_up", action=action, ip=request_ip(request))
        body = {"challenge_id": result.challenge_id, "expires_at": result.expires_at}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class StepUpVerifyApi(StepUpApi):
    @extend_schema_serializer(component_name="StepUpVerify")
    class InputSerializer(StrictInputSerializer):
        challenge_id = StrictUUIDField()
        code = sms_code_field()
        action = StrictChoiceField(choices=STEP_UP_ACTIONS)

    @extend_schema_serializer(component_name="StepUpVerified")
    class OutputSerializer(serializers.Serializer):
        action = serializers.CharField()
        valid_until = UtcDateTimeField(help_text="Carry the action out before then; it is spent on use.")

    @member_operation(
        "me_step_up_verify",
        OutputSerializer,
        summary="Verify a step-up code for its action",
        request=InputSerializer,
        parameters=[RETRY_AFTER],
        errors={
            400: "validation_error",
            401: "otp_wrong_code, otp_invalid (another challenge, number or action), otp_expired.",
            403: "otp_too_many_guesses, member_not_active.",
            409: "otp_used, no_phone_on_file.",
            429: "otp_locked (Retry-After in seconds).",
        },
    )
    def post(self, request):
        data = valid_input(self.InputSerializer, request.data)
        challenge = member_step_up_verify(
            member=self.member, challenge_id=data["challenge_id"], phone=self.phone(), code=data["code"],
            action=data["action"],
        )  # fmt: skip
        valid_until = challenge.verified_at + timedelta(seconds=settings.MEMBER_AUTH["step_up_seconds"])
        return Response(self.OutputSerializer({"action": data["action"], "valid_until": valid_until}).data)


urlpatterns = [
    path("me/step-up", StepUpRequestApi.as_view(), name="me-step-up"),
    path("me/step-up/verify", StepUpVerifyApi.as_view(), name="me-step-up-verify"),
]
