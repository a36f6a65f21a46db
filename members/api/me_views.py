"""The signed-in member's own data under ``/api/v1/me`` (issue 5, "Member API").

Every view authenticates with the member's bearer access token (a live session,
checked on every request) and reads or changes only ``request.user.member``'s rows:
an id of another member's device or session answers 404, exactly like an id that
does not exist. Every response, errors included, carries ``Cache-Control: no-store``.
No personal data or token is ever taken from, or put into, a URL.

Changing the email or phone (``PATCH me``) needs a step-up (an SMS code verified for
``change_email`` / ``change_phone`` less than five minutes ago, spent by the change) and
then proof that the member controls the new address (``members.services.contact``): the answer
is 200 with the profile still showing the old value and ``pending`` listing the
verification(s) this request started. The email is changed when the link sent to the
new address is opened (``POST auth/email/confirm``), the phone when the code sent to
the new number is entered (``POST me/phone/confirm``); only then is the old address
notified and are the sessions ended. Removing the email (null or "") needs the step-up
and applies at once. The other fields change at once, in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from loyalty.api.errors import ApiRefusal
from loyalty.api.serializers import StrictCharField, StrictInputSerializer, UtcDateTimeField
from loyalty.ledger.selectors import member_balance_figures, member_operations, member_points_expiring
from members.api.base import (
    InvalidInput,
    MeApi,
    MePageApi,
    NotFound,
    by_id_operation,
    id_parameter,
    member_operation,
    page_operation,
    page_serializer,
    request_ip,
    valid_input,
)
from members.models import ContactVerification, Member, MemberDevice, MemberSecurityEvent, MemberSession
from members.services.contact import ContactChangeStarted, ContactRefused, contact_changes_pending
from members.services.pii import InvalidMemberData, member_pii_read
from members.services.profile import member_profile_update
from members.services.sessions import device_block, member_sessions, session_end, sessions_end_all

EXPIRING_SOON_DAYS = 90
# A hard cap before any normalisation (the services enforce each field's own limit).
INPUT_MAX = 1_000


# --- refusals ------------------------------------------------------------------------------


class EmptyUpdate(ApiRefusal):
    default_code = "empty_update"
    default_detail = "Send at least one field to change."


# --- profile -------------------------------------------------------------------------------


@extend_schema_serializer(component_name="MeProfile")
class ProfileSerializer(serializers.Serializer):
    loyalty_number = serializers.CharField()
    member_id = serializers.UUIDField(help_text="Pseudonymous id.")
    name = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True, help_text="E.164.")
    email = serializers.CharField(allow_null=True)
    address = serializers.CharField(allow_null=True)
    birth_date = serializers.DateField(allow_null=True)
    preferred_channel = serializers.CharField(help_text='"sms", "email" or "" (none chosen).')
    tier = serializers.IntegerField()
    status = serializers.CharField()
    pii_erased = serializers.BooleanField(help_text="True once the member's personal data was erased.")


def profile_data(member: Member) -> dict:
    pii = member_pii_read(member)
    return {
        "loyalty_number": member.loyalty_number,
        "member_id": member.member_id,
        "name": pii.name,
        "phone": pii.phone,
        "email": pii.email,
        "address": pii.address,
        "birth_date": pii.birth_date,
        "preferred_channel": member.preferred_channel,
        "tier": member.tier,
        "status": member.status,
        "pii_erased": pii.erased,
    }


def _text(**kwargs) -> StrictCharField:
    return StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=INPUT_MAX, **kwargs)


@extend_schema_serializer(component_name="MeContactChange")
class ContactChangeSerializer(serializers.Serializer):
    """A pending email or phone change: the new value masked, never in clear."""

    id = serializers.UUIDField(help_text="The change's id (verification_id).")
    kind = serializers.ChoiceField(choices=ContactVerification.Kind.choices)
    value_masked = serializers.CharField(help_text="The new value, masked (a•••@example.com, +60 ••• ••• 03).")
    created_at = UtcDateTimeField()
    expires_at = UtcDateTimeField(
        help_text="Email: the link's expiry (24 hours). Phone: the code's expiry (five minutes)."
    )
    challenge_id = serializers.UUIDField(
        allow_null=True, help_text="Phone: the SMS challenge to answer at me/phone/confirm; null for email."
    )


@extend_schema_serializer(component_name="MeUpdated")
class ProfileUpdatedSerializer(ProfileSerializer):
    pending = ContactChangeSerializer(
        many=True,
        help_text=(
            "The email or phone changes this request started (empty when none). The profile keeps "
            "the old value until each is confirmed: an email by the link sent to the new address, a "
            "phone with the code sent to the new number."
        ),
    )


def _pending_change(started: ContactChangeStarted) -> dict:
    row = started.verification
    return next(c for c in contact_changes_pending(row.member) if c["id"] == row.id)


class MeApiView(MeApi):
    """The member's profile; changes to it."""

    terms_exempt = "a correction of personal data (PDPA s.22; new phone and email go through the verified-contact flow)"

    @extend_schema_serializer(component_name="MeUpdate")
    class InputSerializer(StrictInputSerializer):
        name = _text()
        address = _text()
        birth_date = _text(help_text="YYYY-MM-DD; empty or null clears it.")
        preferred_channel = serializers.ChoiceField(
            choices=Member.Channel.choices, required=False, allow_null=True, allow_blank=True
        )
        phone = _text(
            free_text=False,  # parsed to E.164 or refused (members.services.pii.phone_normalise)
            help_text="Needs a step-up for change_phone; changes once the code sent to it is confirmed. Cannot be cleared.",
        )
        email = _text(
            help_text=(
                "Needs a step-up for change_email; changes once the link sent to it is opened. Empty or null "
                "removes the email at once (with the step-up)."
            )
        )

    @member_operation("me_read", ProfileSerializer)
    def get(self, request):
        return Response(ProfileSerializer(profile_data(self.member)).data)

    @member_operation(
        "me_update",
        ProfileUpdatedSerializer,
        request=InputSerializer,
        examples=[
            # Not a name or an address: a contract test sends the example, and the values it
            # then generates for a profile that validates must not be a word of every log line.
            OpenApiExample("Date of birth", request_only=True, value={"birth_date": "1990-04-17"}),
        ],
        description=(
            "Name, address, date of birth and preferred channel change at once. A new email or phone "
            "starts a verification instead (listed in `pending`; the profile keeps the old value until "
            "it is confirmed). All or nothing: a refusal changes nothing."
        ),
        errors={
            400: "validation_error: detail is {field: {code, message}} (invalid_phone, taken, too_long...); "
            "empty_update (no field sent); bidi_control_refused, invisible_character_refused "
            "(detail.field names the field).",
            403: "change_details_not_allowed (web remember-me session), step_up_required, member_not_active.",
            409: "pii_erased",
            422: "card_number_refused: a field looks like a payment card number (detail.field); nothing changes.",
            429: "otp_rate_limited, otp_locked: no code can be sent to the new number now (Retry-After).",
        },
    )
    def patch(self, request):
        values = dict(valid_input(self.InputSerializer, request.data))
        if not values:
            raise EmptyUpdate()
        try:
            update = member_profile_update(member=self.member, session=self.session, ip=request_ip(request), **values)
        except InvalidMemberData as refusal:
            raise InvalidInput(detail={f: {"code": c, "message": m} for f, (c, m) in refusal.errors.items()}) from None
        except ContactRefused as refusal:  # the field's error, as validation answers it
            raise InvalidInput(detail={refusal.field: {"code": refusal.code, "message": str(refusal)}}) from None
        pending = [_pending_change(started) for started in update.started]
        return Response(ProfileUpdatedSerializer({**profile_data(update.member), "pending": pending}).data)


# --- balance and ledger ----------------------------------------------------------------------


class MeBalanceApi(MeApi):
    """The member's points: available, held, pending, and what expires soon."""

    @extend_schema_serializer(component_name="MeBalance")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="MeExpiringPoints")
        class ExpiringSerializer(serializers.Serializer):
            month = serializers.CharField(help_text="YYYY-MM")
            points = serializers.IntegerField()

        available = serializers.IntegerField(help_text="Points the member can spend now.")
        held = serializers.IntegerField(help_text="Points held by open redemptions.")
        pending = serializers.IntegerField(help_text="Points earned but kept pending through the return window.")
        expiring_within_days = serializers.IntegerField()
        expiring = ExpiringSerializer(many=True, help_text="Points expiring within that many days, by month.")

    @member_operation("me_balance", OutputSerializer)
    def get(self, request):
        member = self.member
        expiring = member_points_expiring(
            member=member, on_or_before=timezone.localdate() + timedelta(days=EXPIRING_SOON_DAYS)
        )
        data = {
            **member_balance_figures(member),  # the till's balance look-up answers the same figures
            "expiring_within_days": EXPIRING_SOON_DAYS,
            "expiring": [{"month": f"{row['month']:%Y-%m}", "points": row["points"]} for row in expiring],
        }
        return Response(self.OutputSerializer(data).data)


@extend_schema_serializer(component_name="MeLedgerEntry")
class LedgerEntrySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField(
        help_text="earn, release, reverse_earn, hold, capture, void, redeem, expire, adjust..."
    )
    points = serializers.IntegerField(help_text="Points the operation moved (positive; the kind says which way).")
    created_at = UtcDateTimeField()
    store = serializers.CharField(allow_null=True, help_text="Store code, when at a store.")
    receipt_ref = serializers.CharField(allow_null=True)
    expires_on = serializers.DateField(allow_null=True, help_text="For credited points: when their lot expires.")
    pending_until = UtcDateTimeField(allow_null=True, help_text="For pending earns: when they are released.")


def _ledger_entry(op) -> dict:
    return {
        "id": op.id,
        "kind": op.kind,
        "points": op.points,
        "created_at": op.created_at,
        "store": op.store.code if op.store_id else None,
        "receipt_ref": op.receipt_ref,
        "expires_on": op.lot_expires_on,
        "pending_until": op.pending_until,
    }


class MeLedgerApi(MePageApi):
    """The member's ledger operations, newest first (limit/offset; no total count)."""

    OutputSerializer = page_serializer("MeLedgerPage", LedgerEntrySerializer)

    @page_operation("me_ledger", OutputSerializer)
    def get(self, request):
        return self.page(member_operations(member=self.member), _ledger_entry)


# --- devices and sessions --------------------------------------------------------------------


@extend_schema_serializer(component_name="MeDevice")
class DeviceSerializer(serializers.Serializer):
    """A device, without its fingerprint or location."""

    id = serializers.IntegerField()
    label = serializers.CharField()
    first_seen_at = UtcDateTimeField()
    last_seen_at = UtcDateTimeField()
    blocked = serializers.BooleanField()
    blocked_at = UtcDateTimeField(allow_null=True)


def _device(device: MemberDevice) -> dict:
    return {
        "id": device.pk,
        "label": device.label,
        "first_seen_at": device.first_seen_at,
        "last_seen_at": device.last_seen_at,
        "blocked": device.blocked_at is not None,
        "blocked_at": device.blocked_at,
    }


class MeDevicesApi(MeApi):
    """The devices the member signed in from."""

    @member_operation("me_devices", DeviceSerializer(many=True))
    def get(self, request):
        devices = MemberDevice.objects.filter(member=self.member).order_by("-last_seen_at", "-id")
        return Response(DeviceSerializer([_device(d) for d in devices], many=True).data)


class MeDeviceBlockApi(MeApi):
    """Block one of the member's devices: it cannot sign in again and its sessions end."""

    terms_exempt = "security: a member cuts off a lost or stolen device or session whatever the terms"

    @by_id_operation("me_device_block", DeviceSerializer, id_parameter("device_id", OpenApiTypes.INT), "device")
    def post(self, request, device_id: str):
        if not device_id.isascii() or not device_id.isdigit() or len(device_id) > 18:
            raise NotFound()
        try:
            device = device_block(member=self.member, device_id=int(device_id))
        except MemberDevice.DoesNotExist:
            raise NotFound() from None
        return Response(DeviceSerializer(_device(device)).data)


@extend_schema_serializer(component_name="MeSession")
class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    channel = serializers.CharField()
    remember_me = serializers.BooleanField()
    biometric = serializers.BooleanField()
    created_at = UtcDateTimeField()
    last_seen_at = UtcDateTimeField()
    expires_at = UtcDateTimeField()
    device_id = serializers.IntegerField(allow_null=True)
    device_label = serializers.CharField(allow_null=True)
    current = serializers.BooleanField(help_text="The session this request was made with.")


class MeSessionsApi(MeApi):
    """The member's live sessions, latest activity first."""

    @member_operation("me_sessions", SessionSerializer(many=True))
    def get(self, request):
        sessions = [
            {
                "id": s.id,
                "channel": s.channel,
                "remember_me": s.remember_me,
                "biometric": s.biometric,
                "created_at": s.created_at,
                "last_seen_at": s.last_seen_at,
                "expires_at": s.expires_at,
                "device_id": s.device_id,
                "device_label": s.device.label if s.device else None,
                "current": s.pk == self.session.pk,
            }
            for s in member_sessions(self.member)
        ]
        return Response(SessionSerializer(sessions, many=True).data)


@extend_schema_serializer(component_name="MeSessionsEnded")
class EndedSerializer(serializers.Serializer):
    ended = serializers.IntegerField(help_text="How many sessions were ended.")


class MeSessionRevokeApi(MeApi):
    """End one of the member's sessions (the current one too: that is a sign-out)."""

    terms_exempt = "security: a member cuts off a lost or stolen device or session whatever the terms"

    @by_id_operation("me_session_revoke", EndedSerializer, id_parameter("session_id", OpenApiTypes.UUID), "session")
    def post(self, request, session_id: str):
        try:
            parsed = uuid.UUID(session_id)
        except ValueError:
            raise NotFound() from None
        session = MemberSession.objects.select_related("member").filter(member=self.member, pk=parsed).first()
        if session is None:
            raise NotFound()
        ended = session_end(session=session, reason="revoked_by_member")
        return Response(EndedSerializer({"ended": int(ended)}).data)


class MeSessionsRevokeAllApi(MeApi):
    """End all the member's other sessions, or all of them with ``include_current``."""

    terms_exempt = "security: a member cuts off a lost or stolen device or session whatever the terms"

    @extend_schema_serializer(component_name="MeSessionsRevokeAll")
    class InputSerializer(StrictInputSerializer):
        include_current = serializers.BooleanField(default=False, help_text="Also end this session (sign out).")

    @member_operation(
        "me_sessions_revoke_all", EndedSerializer, request=InputSerializer, errors={400: "validation_error"}
    )
    def post(self, request):
        data = valid_input(self.InputSerializer, request.data if request.data else {})
        ended = sessions_end_all(
            member=self.member,
            reason="revoked_by_member",
            except_session=None if data["include_current"] else self.session,
        )
        return Response(EndedSerializer({"ended": ended}).data)


# --- security log and preferences -------------------------------------------------------------


@extend_schema_serializer(component_name="MeSecurityEvent")
class SecurityEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="login, device_new, device_blocked, session_ended, contact_changed...")
    created_at = UtcDateTimeField()
    ip = serializers.CharField(allow_null=True)
    detail = serializers.DictField(help_text="Facts about the event (ids, channel, reason); never personal data.")


class MeSecurityLogApi(MePageApi):
    """The member's security log, newest first (limit/offset; no total count)."""

    OutputSerializer = page_serializer("MeSecurityLogPage", SecurityEventSerializer)

    @page_operation("me_security_log", OutputSerializer)
    def get(self, request):
        events = MemberSecurityEvent.objects.filter(member=self.member).order_by("-created_at", "-id")
        return self.page(events)


urlpatterns = [
    path("me", MeApiView.as_view(), name="me"),
    path("me/balance", MeBalanceApi.as_view(), name="me-balance"),
    path("me/ledger", MeLedgerApi.as_view(), name="me-ledger"),
    path("me/devices", MeDevicesApi.as_view(), name="me-devices"),
    path("me/devices/<str:device_id>/block", MeDeviceBlockApi.as_view(), name="me-device-block"),
    path("me/sessions", MeSessionsApi.as_view(), name="me-sessions"),
    path("me/sessions/revoke-all", MeSessionsRevokeAllApi.as_view(), name="me-sessions-revoke-all"),
    path("me/sessions/<str:session_id>/revoke", MeSessionRevokeApi.as_view(), name="me-session-revoke"),
    path("me/security-log", MeSecurityLogApi.as_view(), name="me-security-log"),
]
