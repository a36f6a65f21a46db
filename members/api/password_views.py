"""The member's optional password: sign in with it, set or change it, remove it.

Thin callers of ``members.services.passwords``. ``POST /api/v1/auth/password/login`` is a sign-in
endpoint (anyone; the same token body as the OTP sign-in); ``PUT`` and ``DELETE
/api/v1/me/password`` are the signed-in member's (bearer token; a web remember-me
session may not). Every answer carries ``Cache-Control: no-store``. A password travels
only in a request body; it is never logged, echoed or put in an error.

No view runs in a transaction that a refusal rolls back: a wrong password is counted
(and committed) before the refusal is raised.

Refusals and their statuses:

- 400 ``validation_error`` (per-field ``detail``; for ``new_password`` the rule's code:
  ``password_too_short``, ``password_too_long``, ``password_needs_letter``,
  ``password_needs_digit``, ``password_needs_symbol``, ``password_too_common``,
  ``password_contains_phone``, ``password_reused``), ``malformed_json``, ``invalid_phone``;
- 401 ``credentials_invalid`` (unknown number, no password, or a wrong one: one answer),
  ``otp_required`` (the password was right but this sign-in needs an SMS code: a new or
  blocked device, a new place, tier 3 and above);
- 403 ``current_password_wrong``, ``current_password_required``, ``step_up_required``,
  ``change_details_not_allowed``; ``device_blocked``, ``impossible_travel``,
  ``member_not_active``;
- 409 ``password_not_set``; 415 ``unsupported_media_type``; 422 ``card_number_refused``;
- 429 ``password_locked`` with ``Retry-After`` (too many failed sign-ins today).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from loyalty.api.serializers import StrictCharField, StrictInputSerializer, UtcDateTimeField
from members.api.auth_views import (
    BAD_BODY,
    DEVICE_CARD_NUMBER,
    NO_STORE,
    NOT_JSON,
    RETRY_AFTER,
    InvalidPhone,
    MemberAuthApi,
    sign_in_operation,
)
from members.api.base import (
    InvalidInput,
    MeApi,
    member_operation,
    request_ip,
    valid_input,
)
from members.api.serializers_auth import (
    TokensOutputSerializer,
    channel_option_errors,
    phone_field,
    session_option_fields,
)
from members.services.passwords import (
    MAX_LENGTH,
    PasswordInvalid,
    member_password_remove,
    member_password_set,
    password_login,
)
from members.services.pii import InvalidMemberData

# A hard cap on what is hashed at all; the rules allow MAX_LENGTH characters.
PASSWORD_INPUT_MAX = 1024


def _invalid(refusal: PasswordInvalid, field: str = "new_password") -> InvalidInput:
    """A broken password rule, as the field's validation error (other refusals answer themselves)."""
    return InvalidInput(detail={field: {"code": refusal.code, "message": str(refusal)}})


def password_field(**kwargs) -> StrictCharField:
    # Not free text: never stored as typed (hashed), and any character is allowed in a password.
    return StrictCharField(max_length=PASSWORD_INPUT_MAX, style={"input_type": "password"}, free_text=False, **kwargs)


# --- sign in -------------------------------------------------------------------------------------


class PasswordLoginInputSerializer(StrictInputSerializer):
    phone = phone_field()
    password = password_field(min_length=1)
    channel, device, remember_me, biometric = session_option_fields()

    def validate(self, attrs):
        if errors := channel_option_errors(attrs):
            raise serializers.ValidationError(errors)
        return attrs


class PasswordLoginApi(MemberAuthApi):
    @sign_in_operation(
        "member_auth_password_login",
        OpenApiResponse(TokensOutputSerializer, description="Signed in."),
        summary="Sign in with the phone number and password",
        description="The password is one factor. It opens a session only from a device already registered and "
        "not blocked, from a place the member signed in from before, for a member below tier 3; "
        "otherwise the answer is 401 `otp_required` and the client signs in with an SMS code "
        "(/api/v1/auth/otp/request). An unknown number, a member without a password and a wrong "
        "password all answer 401 `credentials_invalid`; each counts towards the number's daily "
        "limit of failed sign-ins (shared with wrong SMS codes), after which sign-in is locked "
        "until the end of the day (429 `password_locked`).",
        request=PasswordLoginInputSerializer,
        retry_after=True,
        errors={
            400: BAD_BODY,
            401: "credentials_invalid; otp_required (sign in with an SMS code instead).",
            403: "device_blocked, impossible_travel, member_not_active.",
            415: NOT_JSON,
            422: DEVICE_CARD_NUMBER,
            429: "password_locked: too many failed sign-ins today for this number.",
        },
    )
    def post(self, request):
        data, phone = self.phone_input(PasswordLoginInputSerializer)
        try:
            tokens = password_login(phone=phone, password=data["password"], **self.opening(request, data))
        except InvalidMemberData:
            raise InvalidPhone() from None
        return self.tokens(tokens)


# --- set, change, remove -------------------------------------------------------------------------


@extend_schema_serializer(component_name="MePasswordChanged")
class PasswordChangedSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["password_set", "password_changed", "password_removed"], help_text="What was done."
    )
    changed_at = UtcDateTimeField()
    sessions_ended = serializers.IntegerField(help_text="How many of the member's other sessions were ended.")


class MePasswordApi(MeApi):
    """The member's optional password."""

    @extend_schema_serializer(component_name="MePasswordSet")
    class InputSerializer(StrictInputSerializer):
        new_password = password_field(
            help_text=(
                f"8 to {MAX_LENGTH} characters with a letter, a digit and a symbol; not a common password, "
                "not the phone number, not one of the last 5."
            )
        )
        current_password = password_field(
            required=False,
            help_text="To change a password. Without it, a step-up for password_reset (or, first password, password_set).",
        )

    @member_operation(
        "me_password_set",
        OpenApiResponse(PasswordChangedSerializer, description="The password was set or changed."),
        summary="Set, change or reset the password",
        description="A first password needs a step-up for `password_set` (an SMS code verified less than five "
        "minutes ago). Changing it needs `current_password` (a wrong one counts as a failed sign-in) "
        "or a step-up for `password_reset`. The step-up is spent. All the member's other sessions "
        "are ended and the member is notified.",
        request=InputSerializer,
        parameters=[RETRY_AFTER, NO_STORE],
        errors={
            400: "validation_error: detail is {field: {code, message}}; for new_password one of "
            "password_too_short, password_too_long, password_needs_letter, password_needs_digit, "
            "password_needs_symbol, password_too_common, password_contains_phone, password_reused.",
            403: "change_details_not_allowed (web remember-me session), step_up_required (detail.actions), "
            "current_password_required (detail.actions), current_password_wrong, member_not_active.",
            415: NOT_JSON,
            429: "password_locked: too many failed sign-ins today for this number.",
        },
    )
    def put(self, request):
        data = valid_input(self.InputSerializer, request.data)
        try:
            change = member_password_set(
                member=self.member,
                new_password=data["new_password"],
                current_password=data.get("current_password") or None,
                session=self.session,
                ip=request_ip(request),
            )
        except PasswordInvalid as refusal:
            raise _invalid(refusal) from None
        return Response(PasswordChangedSerializer(change).data)

    @member_operation(
        "me_password_remove",
        OpenApiResponse(PasswordChangedSerializer, description="The password was removed."),
        summary="Remove the password",
        description="Sign-in by SMS code only from then on. Needs a step-up for `password_remove`, which is spent. "
        "All the member's other sessions are ended and the member is notified.",
        request=None,
        parameters=[NO_STORE],
        errors={
            403: "change_details_not_allowed (web remember-me session), step_up_required (detail.actions), "
            "member_not_active.",
            409: "password_not_set: the member has no password.",
        },
    )
    def delete(self, request):
        try:
            change = member_password_remove(member=self.member, session=self.session, ip=request_ip(request))
        except PasswordInvalid as refusal:
            raise _invalid(refusal) from None
        return Response(PasswordChangedSerializer(change).data)


urlpatterns = [
    path("auth/password/login", PasswordLoginApi.as_view(), name="member-auth-password-login"),
    path("me/password", MePasswordApi.as_view(), name="me-password"),
]
