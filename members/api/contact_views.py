"""Confirming and managing email and phone changes (issue 5; ``members.services.contact``).

- ``POST auth/email/confirm`` {token}: no sign-in needed (the link's token is the proof;
  it reaches the app in the link's URL fragment, never in a URL a server sees). Ends all
  the member's sessions. Answers no personal data.
- ``POST me/phone/confirm`` {verification_id, challenge_id, code}: the signed-in member
  enters the code sent to the new number. Ends the member's other sessions.
- ``GET me/contact-changes``: the member's pending changes, masked values only.
- ``POST me/contact-changes/{verification_id}/cancel``.

Refusals: 400 ``validation_error``, ``link_invalid``; 401/403/409/429 the SMS code's
refusals as at sign-in (``otp_*``); 404 ``not_found`` (not this member's change);
409 ``taken`` (another member got the value meanwhile), ``link_used``,
``verification_used``, ``pii_erased``; 410 ``link_expired``, ``link_cancelled``
(superseded by a newer change, or cancelled), ``verification_expired``,
``verification_cancelled``. Every answer is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from loyalty.api.serializers import StrictCharField, StrictInputSerializer
from members.api.auth_views import RETRY_AFTER, MemberAuthApi, sign_in_operation
from members.api.base import MeApi, by_id_operation, id_parameter, member_operation, request_ip, valid_input
from members.api.me_views import ContactChangeSerializer, ProfileSerializer, profile_data
from members.api.serializers_auth import StrictUUIDField, sms_code_field
from members.services.contact import (
    TOKEN_MAX,
    contact_change_cancel,
    contact_changes_pending,
    contact_email_confirm,
    contact_phone_confirm,
)


class EmailConfirmApi(MemberAuthApi):
    """Confirm a new email address with the link's token."""

    @extend_schema_serializer(component_name="MemberEmailConfirm")
    class InputSerializer(StrictInputSerializer):
        token = StrictCharField(
            max_length=TOKEN_MAX, free_text=False, help_text="The token from the link's #token= fragment."
        )

    @extend_schema_serializer(component_name="MemberEmailConfirmed")
    class OutputSerializer(serializers.Serializer):
        changed = serializers.ChoiceField(choices=["email"], help_text="What was changed.")

    @sign_in_operation(
        "member_auth_email_confirm",
        OutputSerializer,
        summary="Confirm a new email address (the link's token)",
        description="Applies the email change the token belongs to: the old address is told, the new one is "
        "written, and all the member's sessions end (sign in again). A link works once, within 24 "
        "hours, and only while it is the member's latest email change.",
        request=InputSerializer,
        errors={
            400: "validation_error (token), link_invalid (no such link).",
            409: "link_used (already confirmed), taken (another member has this address), pii_erased.",
            410: "link_expired, link_cancelled (replaced by a newer change, or cancelled).",
            415: "unsupported_media_type: the body must be application/json.",
        },
    )
    def post(self, request):
        data = valid_input(self.InputSerializer, request.data)
        contact_email_confirm(token=data["token"], ip=request_ip(request))
        return Response(self.OutputSerializer({"changed": "email"}).data)


class MePhoneConfirmApi(MeApi):
    """Confirm a new phone number with the code sent to it."""

    terms_exempt = "the verified-contact flow of a correction (PDPA s.22)"

    @extend_schema_serializer(component_name="MePhoneConfirm")
    class InputSerializer(StrictInputSerializer):
        verification_id = StrictUUIDField(help_text="The change's id (from PATCH me's pending).")
        challenge_id = StrictUUIDField(help_text="The change's challenge_id.")
        code = sms_code_field()

    @member_operation(
        "me_phone_confirm",
        ProfileSerializer,
        summary="Confirm a new phone number (the SMS code)",
        description="Applies the phone change: the old number is told, the new one is written, and the member's "
        "other sessions end. Answers the profile with the new number.",
        request=InputSerializer,
        parameters=[RETRY_AFTER],
        errors={
            400: "validation_error (verification_id, challenge_id, code).",
            401: "otp_wrong_code, otp_invalid (not this change's challenge), otp_expired; or no valid "
            "bearer token / session.",
            403: "otp_too_many_guesses, member_not_active.",
            404: "not_found: no such change of this member.",
            409: "verification_used, otp_used, taken (another member has this number), pii_erased.",
            410: "verification_expired, verification_cancelled (replaced by a newer change, or cancelled).",
            429: "otp_locked: too many wrong codes today for the new number.",
        },
    )
    def post(self, request):
        data = valid_input(self.InputSerializer, request.data)
        member = contact_phone_confirm(
            member=self.member,
            verification_id=data["verification_id"],
            challenge_id=data["challenge_id"],
            code=data["code"],
            session=self.session,
            ip=request_ip(request),
        )
        return Response(ProfileSerializer(profile_data(member)).data)


class MeContactChangesApi(MeApi):
    """The member's pending email and phone changes."""

    @member_operation("me_contact_changes", ContactChangeSerializer(many=True))
    def get(self, request):
        return Response(ContactChangeSerializer(contact_changes_pending(self.member), many=True).data)


@extend_schema_serializer(component_name="MeContactChangeCancelled")
class CancelledSerializer(serializers.Serializer):
    cancelled = serializers.IntegerField(help_text="1 when the change was pending (now cancelled), else 0.")


class MeContactChangeCancelApi(MeApi):
    """Cancel one pending change: its link or code stops working."""

    terms_exempt = "the verified-contact flow of a correction (PDPA s.22)"

    @by_id_operation(
        "me_contact_change_cancel", CancelledSerializer, id_parameter("verification_id", OpenApiTypes.UUID), "change"
    )
    def post(self, request, verification_id: str):
        cancelled = contact_change_cancel(member=self.member, verification_id=verification_id, ip=request_ip(request))
        return Response(CancelledSerializer({"cancelled": int(cancelled)}).data)


urlpatterns = [
    path("auth/email/confirm", EmailConfirmApi.as_view(), name="auth-email-confirm"),
    path("me/phone/confirm", MePhoneConfirmApi.as_view(), name="me-phone-confirm"),
    path("me/contact-changes", MeContactChangesApi.as_view(), name="me-contact-changes"),
    path(
        "me/contact-changes/<str:verification_id>/cancel",
        MeContactChangeCancelApi.as_view(),
        name="me-contact-change-cancel",
    ),
]
