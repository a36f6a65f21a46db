"""Request and response shapes of the member sign-in endpoints (``/api/v1/auth/``).

Input is strict, as on the till API: strings must be JSON strings, booleans JSON
booleans, unknown fields are refused, every string has a length limit. A phone number
is only checked for shape here; whether it is a valid number is the view's question
(``members.services.pii.phone_normalise``), answered with its own code, ``invalid_phone``.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from loyalty.api.serializers import StrictCharField, StrictInputSerializer, StrictIntegerField, UtcDateTimeField
from members.models import Consent, MemberSession, OtpChallenge

PHONE_MAX = 32
CODE_MAX = 12
FINGERPRINT_MAX = 256
LABEL_MAX = 120
REFRESH_TOKEN_MAX = 128

# The purposes a member may ask for here; step-up and new-number codes belong to /me.
SIGN_IN_PURPOSES = [OtpChallenge.Purpose.LOGIN.value, OtpChallenge.Purpose.ENROL.value]


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false`` only (DRF would take ``"yes"``, ``1``, ``"on"``…)."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictUUIDField(serializers.UUIDField):
    """A UUID as a JSON string only (DRF would take an integer)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 36:
            self.fail("invalid", value=None)
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """A JSON string among the choices; the refusal does not echo the input."""

    default_error_messages = {"invalid_choice": "Not one of the allowed values."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice")
        return super().to_internal_value(data)


def phone_field() -> StrictCharField:
    # Not free text: parsed to E.164 (members.services.pii.phone_normalise) or refused, and a long
    # international number can pass for a card number (+49 15x…: 13 digits from a 4).
    return StrictCharField(
        max_length=PHONE_MAX,
        free_text=False,
        help_text="The member's mobile number, E.164 (+60123456789) or a Malaysian national form.",
    )


class OtpRequestInputSerializer(StrictInputSerializer):
    phone = phone_field()
    purpose = StrictChoiceField(
        choices=SIGN_IN_PURPOSES,
        help_text="`login` for an enrolled number, `enrol` to join the programme.",
    )
    device_fingerprint = StrictCharField(
        required=False,
        min_length=1,
        max_length=FINGERPRINT_MAX,
        free_text=False,  # only its hash is kept (members.services.otp_caps), never the text
        help_text=(
            "The app's device fingerprint (the one sent with the code): codes are capped per device as well "
            "as per number and per client address."
        ),
    )


@extend_schema_serializer(component_name="MemberOtpChallenge")
class OtpRequestOutputSerializer(serializers.Serializer):
    challenge_id = serializers.UUIDField(help_text="Send back with the code to /api/v1/auth/otp/verify.")
    expires_at = UtcDateTimeField(help_text="The code is valid until then.")


class DeviceInputSerializer(StrictInputSerializer):
    fingerprint = StrictCharField(
        min_length=1,
        free_text=False,
        max_length=FINGERPRINT_MAX,
        help_text="A stable identifier of the device or browser; stored only as a keyed hash.",
    )
    label = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=LABEL_MAX,
        default="",
        help_text="A name for the device shown to the member, e.g. 'Pixel 8'.",
    )


ESSENTIAL_CONSENT_REQUIRED = "essential_consent_required"
ESSENTIAL_CONSENT_MESSAGE = (
    "Enrolment needs your agreement to essential processing (what running the membership requires): "
    "send consents.essential true."
)


@extend_schema_field({"type": "boolean", "enum": [True]})
class EssentialConsentField(StrictBooleanField):
    """``true`` only: enrolment needs the essential processing consent. Missing or
    ``false`` is refused with the code ``essential_consent_required``."""

    default_error_messages = {ESSENTIAL_CONSENT_REQUIRED: ESSENTIAL_CONSENT_MESSAGE}

    def validate_empty_values(self, data):
        if data is serializers.empty:
            self.fail(ESSENTIAL_CONSENT_REQUIRED)
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if super().to_internal_value(data) is not True:
            self.fail(ESSENTIAL_CONSENT_REQUIRED)
        return True


def opt_in_field(purpose: str) -> StrictBooleanField:
    return StrictBooleanField(
        required=False, default=False, help_text=f"{Consent.Purpose(purpose).label}: an opt-in, false unless true."
    )


@extend_schema_serializer(component_name="MemberEnrolmentConsents")
class EnrolmentConsentsInputSerializer(StrictInputSerializer):
    """The consents given at enrolment, each purpose separately."""

    essential = EssentialConsentField(
        help_text="Must be true: the processing needed to run the membership (refused with essential_consent_required)."
    )
    sms_marketing = opt_in_field(Consent.Purpose.SMS_MARKETING)
    email_marketing = opt_in_field(Consent.Purpose.EMAIL_MARKETING)
    analytics = opt_in_field(Consent.Purpose.ANALYTICS)
    data_sharing = opt_in_field(Consent.Purpose.DATA_SHARING)
    personalisation = opt_in_field(Consent.Purpose.PERSONALISATION)


def sms_code_field() -> StrictCharField:
    """The code a member received by SMS: digits only, checked and never stored."""
    return StrictCharField(
        max_length=CODE_MAX,
        free_text=False,
        validators=[RegexValidator(r"\A[0-9]+\Z", "Digits only.", code="invalid_code")],
        help_text="The code received by SMS.",
    )


def session_option_fields() -> tuple:
    """The fields of the session a sign-in opens, in this order: ``channel, device,
    remember_me, biometric = session_option_fields()`` (checked by channel_option_errors)."""
    return (
        StrictChoiceField(choices=MemberSession.Channel.values, help_text="Where the member signs in."),
        DeviceInputSerializer(),
        StrictBooleanField(required=False, default=False, help_text="Web only: a 30-day session of lower privilege."),
        StrictBooleanField(
            required=False, default=False, help_text="App only: a 7-day session unlocked by the device's biometrics."
        ),
    )


def channel_option_errors(attrs: dict) -> dict:
    """A sign-in body's session options that its channel does not have (remember me is
    the web's, biometric unlock the app's), as field errors."""
    errors = {}
    if attrs.get("remember_me") and attrs.get("channel") != MemberSession.Channel.WEB:
        errors["remember_me"] = serializers.ErrorDetail("Only for the web channel.", code="not_for_channel")
    if attrs.get("biometric") and attrs.get("channel") != MemberSession.Channel.APP:
        errors["biometric"] = serializers.ErrorDetail("Only for the app channel.", code="not_for_channel")
    return errors


class OtpVerifyInputSerializer(StrictInputSerializer):
    challenge_id = StrictUUIDField(help_text="From /api/v1/auth/otp/request.")
    phone = phone_field()
    code = sms_code_field()
    purpose = StrictChoiceField(choices=SIGN_IN_PURPOSES, help_text="The purpose the code was requested for.")
    channel, device, remember_me, biometric = session_option_fields()
    consents = EnrolmentConsentsInputSerializer(
        required=False,
        help_text=(
            "Purpose `enrol` only, and required there (`essential` true). Refused with `login`: consents are "
            "changed at /api/v1/me/preferences."
        ),
    )
    terms_version = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        help_text=(
            "Purpose `enrol` only: the version of the terms and conditions (GET /api/v1/terms) shown to the member "
            "and accepted by them. Recorded as their acceptance (channel `enrolment`). Refused with 409 "
            "`terms_not_current` when another version is in force (nothing is created, the code is not used)."
        ),
    )

    def validate(self, attrs):
        errors = {}
        if attrs.get("purpose") == OtpChallenge.Purpose.ENROL and "consents" not in attrs:
            errors["consents"] = serializers.ErrorDetail(ESSENTIAL_CONSENT_MESSAGE, code=ESSENTIAL_CONSENT_REQUIRED)
        if attrs.get("purpose") == OtpChallenge.Purpose.LOGIN and "consents" in attrs:
            errors["consents"] = serializers.ErrorDetail(
                "Consents are given at enrolment; change them at /api/v1/me/preferences.", code="not_for_purpose"
            )
        if attrs.get("purpose") == OtpChallenge.Purpose.LOGIN and "terms_version" in attrs:
            errors["terms_version"] = serializers.ErrorDetail(
                "Terms are accepted at /api/v1/me/terms/accept once signed in.", code="not_for_purpose"
            )
        errors.update(channel_option_errors(attrs))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


@extend_schema_serializer(component_name="MemberSessionTokens")
class TokensOutputSerializer(serializers.Serializer):
    access_token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`.")
    access_expires_at = UtcDateTimeField()
    refresh_token = serializers.CharField(help_text="Single use: trade it at /api/v1/auth/refresh from this device.")
    session_id = serializers.UUIDField()
    new_device = serializers.BooleanField(help_text="True at the first sign-in from this device.")


class RefreshInputSerializer(StrictInputSerializer):
    refresh_token = StrictCharField(min_length=1, max_length=REFRESH_TOKEN_MAX, free_text=False)
    device_fingerprint = StrictCharField(
        min_length=1,
        max_length=FINGERPRINT_MAX,
        free_text=False,
        help_text="The fingerprint the session was opened with.",
    )
