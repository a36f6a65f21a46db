"""Member sign-in endpoints under /api/v1/auth/ (OTP request and verify, refresh, logout).

Thin callers of ``members.services.otp``, ``members.services.signin`` and ``members.services.sessions``: parse, call
one service, present the result. Every answer (errors included) carries ``Cache-Control: no-store``; tokens,
codes and phone numbers travel only in bodies and headers, never in a URL, and are never
logged. The client address given to the services is the project's one answer to "who is
calling" (``staffauth.net.client_ip``, trusting ``TRUSTED_PROXY_COUNT`` proxies).

No view runs in a transaction that a refusal rolls back: the services commit what a
refusal records (a counted wrong guess, an ended session, a revoked token family) before
they raise.

Refusals and their statuses:

- 400 ``validation_error`` (per-field ``detail``), ``malformed_json``, ``invalid_phone``;
  ``essential_consent_required`` (enrolment without ``consents.essential`` true: the
  field's error code, named for the whole refusal; ``detail`` as for validation_error);
- 401 ``otp_wrong_code``, ``otp_invalid``, ``otp_expired``; ``token_invalid``,
  ``refresh_token_reused``, ``device_mismatch``, ``session_ended``, ``session_timed_out``
  (the credential presented does not, or no longer, prove who the caller is);
- 403 ``otp_too_many_guesses`` (that code is dead: request a new one), ``device_blocked``,
  ``impossible_travel``, ``member_not_active``;
- 409 ``otp_used`` (the challenge was already consumed), ``phone_taken`` (enrolment of a
  number that was enrolled meanwhile);
- 415 ``unsupported_media_type``; 422 ``card_number_refused`` (a device label);
- 429 ``otp_rate_limited`` (this number), ``otp_sender_rate_limited`` (this client address
  or device), ``otp_locked``, with ``Retry-After`` in seconds.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.errors import ApiRefusal, error_codes, plain_errors
from loyalty.api.parsers import StrictJSONParser
from loyalty.api.schema import operation
from members.api.authentication import IsMember, MemberTokenAuthentication
from members.api.base import error_response
from members.api.serializers_auth import (
    ESSENTIAL_CONSENT_MESSAGE,
    ESSENTIAL_CONSENT_REQUIRED,
    OtpRequestInputSerializer,
    OtpRequestOutputSerializer,
    OtpVerifyInputSerializer,
    RefreshInputSerializer,
    TokensOutputSerializer,
)
from members.services.consents import ConsentRefused
from members.services.otp import otp_request
from members.services.pii import InvalidMemberData, phone_normalise
from members.services.sessions import SessionOpening, SessionTokens, session_end, session_refresh
from members.services.signin import member_sign_in
from members.services.terms import terms_current_version
from staffauth.net import client_ip

TAG = "Member sign-in"

# --- Refusals ----------------------------------------------------------------------------------


class InvalidPhone(ApiRefusal):
    default_code = "invalid_phone"
    default_detail = "Enter a valid phone number."

    def __init__(self):
        super().__init__(detail={"phone": [self.default_detail]})


class PhoneTaken(ApiRefusal):
    default_code = "phone_taken"
    default_detail = "This number is already enrolled. Sign in instead."


class TermsNotCurrent(ApiRefusal):
    """Enrolment naming a version of the terms that is not the one in force (409)."""

    default_code = "terms_not_current"
    default_detail = "Accept the current version of the terms (GET /api/v1/terms)."


class EssentialConsentRequired(ApiRefusal):
    """Enrolment without the essential consent: 400 whose code is the field's."""

    default_code = ESSENTIAL_CONSENT_REQUIRED
    default_detail = ESSENTIAL_CONSENT_MESSAGE


# --- Schema helpers ----------------------------------------------------------------------------


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before asking again.",
)
NO_STORE = OpenApiParameter(
    "Cache-Control",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    enum=["no-store"],
    response=True,
    description="Every answer: never cache.",
)
BAD_BODY = error_response("validation_error (per-field detail), malformed_json, invalid_phone.")
BAD_VERIFY_BODY = error_response(
    "validation_error (per-field detail), malformed_json, invalid_phone; essential_consent_required (enrol "
    "without consents.essential true; nothing is created and the code is not used)."
)
DEVICE_CARD_NUMBER = error_response("card_number_refused: the device label looks like a payment card number.")
NOT_JSON = error_response("unsupported_media_type: the body must be application/json.")


def sign_in_operation(operation_id: str, ok, *, tag: str = TAG, retry_after: bool = False, **options):
    """The ``extend_schema`` of a sign-in endpoint (no bearer token: no common errors), never
    cached; ``retry_after`` where a refusal says when to try again."""
    parameters = [RETRY_AFTER, NO_STORE] if retry_after else [NO_STORE]
    return operation(operation_id, tag, ok, common={}, parameters=parameters, **options)


SESSION_401 = "token_invalid, refresh_token_reused, device_mismatch, session_ended, session_timed_out."


# --- Views -------------------------------------------------------------------------------------


class MemberAuthApi(APIView):
    """An endpoint of the sign-in flow: anyone may call it; JSON in and out; never cached."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"  # tokens and challenges: never cached
        return response

    def input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @staticmethod
    def phone(value: str) -> str:
        """The number in E.164, or 400 ``invalid_phone``."""
        try:
            return phone_normalise(value)
        except InvalidMemberData:
            raise InvalidPhone() from None

    def phone_input(self, serializer_class) -> tuple[dict, str]:
        """The valid body and its ``phone`` in E.164 (400 ``invalid_phone``)."""
        data = self.input(serializer_class)
        return data, self.phone(data["phone"])

    @staticmethod
    def opening(request, data: dict) -> SessionOpening:
        """The session a sign-in body asks for (channel, device, remember me...), from the caller's address."""
        device = data["device"]
        return SessionOpening(
            channel=data["channel"],
            device_fingerprint=device["fingerprint"],
            device_label=device["label"],
            ip=client_ip(request),
            remember_me=data["remember_me"],
            biometric=data["biometric"],
        )

    @staticmethod
    def tokens(tokens: SessionTokens, status_code: int = status.HTTP_200_OK) -> Response:
        body = {
            "access_token": tokens.access_token,
            "access_expires_at": tokens.access_expires_at,
            "refresh_token": tokens.refresh_token,
            "session_id": tokens.session_id,
            "new_device": tokens.new_device,
        }
        return Response(TokensOutputSerializer(body).data, status=status_code)


class OtpRequestApi(MemberAuthApi):
    @sign_in_operation(
        "member_auth_otp_request",
        OpenApiResponse(OtpRequestOutputSerializer, description="Challenge created."),
        status=202,
        summary="Send a sign-in or enrolment code by SMS",
        description="Creates a challenge and sends a code to the number when it may receive one (`login`: an "
        "enrolled number; `enrol`: a number nobody is enrolled with). The answer is the same either "
        "way, so it does not tell whether a number is enrolled. Codes are capped per number, per client "
        "address and per device (`device_fingerprint`, when sent) each hour.",
        request=OtpRequestInputSerializer,
        retry_after=True,
        errors={
            400: BAD_BODY,
            415: NOT_JSON,
            429: "otp_rate_limited (too many codes for this number this hour), otp_sender_rate_limited (too many "
            "codes from this address or device this hour), otp_locked (too many wrong codes today).",
        },
    )
    def post(self, request):
        data, phone = self.phone_input(OtpRequestInputSerializer)
        result = otp_request(
            phone=phone, purpose=data["purpose"], ip=client_ip(request), device=data.get("device_fingerprint")
        )
        body = {"challenge_id": result.challenge_id, "expires_at": result.expires_at}
        return Response(OtpRequestOutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class OtpVerifyApi(MemberAuthApi):
    def input(self, serializer_class) -> dict:
        """As every sign-in endpoint, but a missing or false ``consents.essential`` names
        the refusal ``essential_consent_required`` (clients branch on it)."""
        try:
            return super().input(serializer_class)
        except ValidationError as exc:
            if ESSENTIAL_CONSENT_REQUIRED in error_codes(exc.get_codes()):
                raise EssentialConsentRequired(detail=plain_errors(exc.detail)) from None
            raise

    @sign_in_operation(
        "member_auth_otp_verify",
        OpenApiResponse(TokensOutputSerializer, description="Signed in."),
        summary="Sign in (or enrol) with the code",
        description="Checks the code (at most 3 guesses per code, 10 wrong codes per number per day). With "
        "purpose `login` it opens a session for the enrolled member (200); with `enrol` it creates "
        "the member, records their consents (`consents`: `essential` must be true, each opt-in "
        "separately, false unless sent true) and opens their first session (201). The body is checked "
        "before the code, so a refused body does not use a guess or the code. `consents` is refused with "
        "`login`. A first sign-in from a device registers it and alerts the member (`new_device`).",
        request=OtpVerifyInputSerializer,
        retry_after=True,
        errors={
            201: OpenApiResponse(TokensOutputSerializer, description="Enrolled and signed in."),
            400: BAD_VERIFY_BODY,
            401: "otp_wrong_code, otp_invalid (unknown challenge, or another number or purpose), otp_expired.",
            403: "otp_too_many_guesses, device_blocked, impossible_travel, member_not_active.",
            409: "otp_used (the code was already used), phone_taken (enrolment: already enrolled), "
            "terms_not_current (enrolment: `terms_version` is not the version in force; the code is not used).",
            415: NOT_JSON,
            422: DEVICE_CARD_NUMBER,
            429: "otp_locked: too many wrong codes today for this number.",
        },
    )
    def post(self, request):
        # The whole body (consents included) is checked before the code: a refused body
        # must not spend a guess or the challenge.
        data, phone = self.phone_input(OtpVerifyInputSerializer)
        terms_version = data.get("terms_version")
        if terms_version is not None and terms_version != terms_current_version():
            raise TermsNotCurrent(detail={"current_version": terms_current_version()})
        try:
            signed_in = member_sign_in(
                challenge_id=data["challenge_id"],
                phone=phone,
                code=data["code"],
                purpose=data["purpose"],
                consents=data.get("consents"),
                terms_version=terms_version,
                **self.opening(request, data),
            )
        except InvalidMemberData as refusal:
            if refusal.errors.get("phone", ("",))[0] == "taken":
                raise PhoneTaken() from None
            raise InvalidPhone() from None
        except ConsentRefused:  # the serializer refuses this first; never a 500
            raise EssentialConsentRequired() from None
        return self.tokens(signed_in.tokens, status.HTTP_201_CREATED if signed_in.enrolled else status.HTTP_200_OK)


class RefreshApi(MemberAuthApi):
    @sign_in_operation(
        "member_auth_refresh",
        OpenApiResponse(TokensOutputSerializer, description="A new access and refresh token."),
        summary="Trade a refresh token for a new pair",
        description="Refresh tokens are single use and bound to the device the session was opened on. Presenting "
        "one that was already used ends the session and revokes every token of it "
        "(`refresh_token_reused`).",
        request=RefreshInputSerializer,
        errors={400: BAD_BODY, 401: SESSION_401, 403: "device_blocked, member_not_active.", 415: NOT_JSON},
    )
    def post(self, request):
        data = self.input(RefreshInputSerializer)
        tokens = session_refresh(refresh_token=data["refresh_token"], device_fingerprint=data["device_fingerprint"])
        return self.tokens(tokens)


class LogoutApi(MemberAuthApi):
    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]

    @sign_in_operation(
        "member_auth_logout",
        OpenApiResponse(description="Signed out."),
        status=204,
        summary="End this session",
        description="Ends the session of the access token at once: the access and refresh tokens stop working.",
        request=None,
        errors={401: "authentication_required, or the access token's refusal: " + SESSION_401},
    )
    def post(self, request):
        session_end(session=request.auth, reason="logout")
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("auth/otp/request", OtpRequestApi.as_view(), name="member-auth-otp-request"),
    path("auth/otp/verify", OtpVerifyApi.as_view(), name="member-auth-otp-verify"),
    path("auth/refresh", RefreshApi.as_view(), name="member-auth-refresh"),
    path("auth/logout", LogoutApi.as_view(), name="member-auth-logout"),
]
