"""The signed-in member's preferences and record of consent under ``/api/v1/me``.

- ``GET me/preferences``: every purpose (essential processing; communications: SMS and
  email marketing; analytics; data sharing; personalisation) with whether it is
  granted, under which consent text version and since when. A purpose never recorded
  is not granted.
- ``PATCH me/preferences``: a partial change, ``{purpose: true|false}``; each change
  is recorded (``members.services.consents.consents_record``, source ``member``, with the
  session's id). Essential processing cannot be withdrawn here (400
  ``essential_consent_required``: closing the account or erasure is the way). A web
  remember-me session may withdraw but not grant (403 ``change_details_not_allowed``).
- ``GET me/consents``: the record of consent, newest first, paged like
  ``me/security-log``.

Authentication, ``no-store`` and the error shapes are those of ``members.api.base``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from loyalty.api.errors import ApiRefusal
from loyalty.api.serializers import StrictInputSerializer, UtcDateTimeField
from members.api.base import (
    InvalidInput,
    MeApi,
    MePageApi,
    member_operation,
    page_operation,
    page_serializer,
    request_ip,
    valid_input,
)
from members.api.serializers_auth import StrictBooleanField
from members.models import Consent, ConsentRecord
from members.services.consents import (
    MESSAGES,
    ConsentRefused,
    consent_version,
    consents_record,
    member_consent_records,
    member_consents,
)

Purpose = Consent.Purpose
ESSENTIAL_CONSENT_REQUIRED = "essential_consent_required"


# --- refusals --------------------------------------------------------------------------------


class EssentialConsentRequired(ApiRefusal):
    """400: withdrawing essential processing; ``detail`` names the field, as validation does."""

    default_code = ESSENTIAL_CONSENT_REQUIRED
    default_detail = MESSAGES[ESSENTIAL_CONSENT_REQUIRED]

    def __init__(self, detail: dict | None = None):
        essential = {"essential": {"code": ESSENTIAL_CONSENT_REQUIRED, "message": MESSAGES[ESSENTIAL_CONSENT_REQUIRED]}}
        super().__init__(detail=detail or essential)


# --- shapes ----------------------------------------------------------------------------------


@extend_schema_field({"type": "boolean", "enum": [True]})
class EssentialField(StrictBooleanField):
    """``true`` only (re-confirming); ``false`` is refused with ``essential_consent_required``."""

    default_error_messages = {ESSENTIAL_CONSENT_REQUIRED: MESSAGES[ESSENTIAL_CONSENT_REQUIRED]}

    def to_internal_value(self, data):
        if super().to_internal_value(data) is not True:
            self.fail(ESSENTIAL_CONSENT_REQUIRED)
        return True


def _choice(purpose: str) -> StrictBooleanField:
    return StrictBooleanField(required=False, help_text=f"{Purpose(purpose).label}: true grants, false withdraws.")


@extend_schema_serializer(component_name="MePreferencesUpdate")
class PreferencesInputSerializer(StrictInputSerializer):
    """A partial change: only the purposes sent change (unknown fields are refused)."""

    essential = EssentialField(
        required=False, help_text="Only true (re-confirm); false is refused: close the account or ask for erasure."
    )
    sms_marketing = _choice(Purpose.SMS_MARKETING)
    email_marketing = _choice(Purpose.EMAIL_MARKETING)
    analytics = _choice(Purpose.ANALYTICS)
    data_sharing = _choice(Purpose.DATA_SHARING)
    personalisation = _choice(Purpose.PERSONALISATION)


@extend_schema_serializer(component_name="MePreference")
class PreferenceSerializer(serializers.Serializer):
    granted = serializers.BooleanField(help_text="False when never recorded.")
    version = serializers.CharField(allow_null=True, help_text="The consent text version; null when never recorded.")
    updated_at = UtcDateTimeField(allow_null=True, help_text="When last changed; null when never recorded.")


def _purpose_field(purpose: str) -> PreferenceSerializer:
    return PreferenceSerializer(help_text=Purpose(purpose).label)


@extend_schema_serializer(component_name="MePreferences")
class PreferencesSerializer(serializers.Serializer):
    consent_version = serializers.CharField(help_text="The consent text version a change is recorded under now.")
    essential = _purpose_field(Purpose.ESSENTIAL)
    sms_marketing = _purpose_field(Purpose.SMS_MARKETING)
    email_marketing = _purpose_field(Purpose.EMAIL_MARKETING)
    analytics = _purpose_field(Purpose.ANALYTICS)
    data_sharing = _purpose_field(Purpose.DATA_SHARING)
    personalisation = _purpose_field(Purpose.PERSONALISATION)


def _preferences(member) -> dict:
    body = {"consent_version": consent_version()}
    for purpose, state in member_consents(member).items():
        body[purpose] = {"granted": state.granted, "version": state.version, "updated_at": state.updated_at}
    return body


@extend_schema_serializer(component_name="MeConsentRecord")
class ConsentRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    # A string, not an enum: a second enum named "purpose" would collide in the schema
    # with the sign-in purposes (no ENUM_NAME_OVERRIDES entry for it yet).
    purpose = serializers.CharField(help_text=f"The purpose: {', '.join(Purpose.values)}.")
    granted = serializers.BooleanField(help_text="True: granted; false: withdrawn (or declined at enrolment).")
    version = serializers.CharField(help_text="The consent text version the member was shown.")
    source = serializers.ChoiceField(
        choices=ConsentRecord.Source.choices,
        help_text="enrolment, member (app or web), staff (on the member's request).",
    )
    created_at = UtcDateTimeField()


# --- views -----------------------------------------------------------------------------------


class MePreferencesApi(MeApi):
    """The member's consents per purpose; changes to them."""

    terms_exempt = "consent choices: withdrawing consent is a data-subject right (PDPA s.16)"

    @member_operation("me_preferences", PreferencesSerializer)
    def get(self, request):
        return Response(PreferencesSerializer(_preferences(self.member)).data)

    @member_operation(
        "me_preferences_update",
        PreferencesSerializer,
        request=PreferencesInputSerializer,
        errors={
            400: "validation_error: detail is {field: {code, message}} (invalid, unknown_field); "
            "essential_consent_required: essential processing cannot be withdrawn here.",
            403: "change_details_not_allowed (a web remember-me session may only withdraw), member_not_active.",
        },
    )
    def patch(self, request):
        try:
            choices = dict(valid_input(PreferencesInputSerializer, request.data))
        except InvalidInput as refusal:
            detail = refusal.extra or {}
            if detail.get("essential", {}).get("code") == ESSENTIAL_CONSENT_REQUIRED:
                raise EssentialConsentRequired(detail) from None  # every field's error, as validation_error
            raise
        if choices:
            try:
                consents_record(
                    member=self.member,
                    choices=choices,
                    source=ConsentRecord.Source.MEMBER,
                    session=self.session,
                    ip=request_ip(request),
                )
            except ConsentRefused as refusal:
                if refusal.code == ESSENTIAL_CONSENT_REQUIRED:
                    raise EssentialConsentRequired() from None  # named by its field, as validation does
                raise
        return Response(PreferencesSerializer(_preferences(self.member)).data)


class MeConsentsApi(MePageApi):
    """The member's record of consent, newest first (limit/offset; no total count)."""

    OutputSerializer = page_serializer("MeConsentRecordPage", ConsentRecordSerializer)

    @page_operation("me_consents", OutputSerializer)
    def get(self, request):
        return self.page(member_consent_records(self.member))


urlpatterns = [
    path("me/preferences", MePreferencesApi.as_view(), name="me-preferences"),
    path("me/consents", MeConsentsApi.as_view(), name="me-consents"),
]
