"""The till (POS) API: one APIView per operation, each calling one ledger service.

Every request goes through, in this order:

1. signature authentication (401), the till's IP allow-list (403) and its rate (429);
2. the card-number guard over the raw body, the Idempotency-Key header and path
   values (422 ``card_number_refused``), before anything is parsed for use;
3. for writes, the ``Idempotency-Key`` header (400 ``idempotency_key_required``);
4. the JSON body: ``application/json`` only (415), valid JSON (400 ``malformed_json``),
   the view's InputSerializer (400 ``validation_error`` / ``invalid_loyalty_number``);
5. the member by loyalty number (404 ``member_not_found``), then the service.

A loyalty number travels only in a signed body, never in a URL (access logs and proxies
keep URLs): the balance look-up is ``POST members/balance``; the path form it replaced
answers 410 ``balance_lookup_retired`` (``pos_balance_path_retired``).

Points redemption (hold, authorise, capture, void) runs through ``vouchers.till_points``:
the hold and the capture need a staff member on shift at the till (``X-Staff-Shift``,
403 ``no_shift``), the hold applies the role limit or a manager override, and the capture
is refused (409 ``member_authorisation_required``) until the member has authorised the
redemption (the SMS code read to the cashier, or the app). A refusal of those controls
is not saved under the Idempotency-Key (a retry is judged again); the ledger's answers are.

Write responses are the ledger's ``Outcome`` verbatim: its status and its body, so a
replay under the same key answers byte for byte what the first request did, with an
extra ``Idempotency-Replayed: true`` header. The OutputSerializers document that body.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.auth import TillPermission, TillRateThrottle, TillSignatureAuthentication
from loyalty.api.cards import card_numbers_refuse
from loyalty.api.errors import (
    IdempotencyKeyRequired,
    MemberNotFound,
)
from loyalty.api.parsers import StrictJSONParser
from loyalty.api.renderers import CanonicalJSONRenderer
from loyalty.api.schema import error_doc, operation
from loyalty.api.serializers import StrictCharField, StrictInputSerializer
from loyalty.kernel.models import Till
from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.operations import Actor, Outcome
from loyalty.ledger.refusals import HoldNotFound
from loyalty.ledger.selectors import member_balance_figures
from members.models import Member

IDEMPOTENCY_KEY_FORMAT = re.compile(r"\A[ -~]{1,128}\Z")
REPLAYED_HEADER = "Idempotency-Replayed"
TAG = "Till (POS)"


def idempotency_key_parameter(description: str) -> OpenApiParameter:
    """The ``Idempotency-Key`` request header, in the format the views enforce
    (IDEMPOTENCY_KEY_FORMAT), so clients and generated requests know what a valid key is."""
    key = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]{1,128}$"}
    return OpenApiParameter("Idempotency-Key", key, OpenApiParameter.HEADER, required=True, description=description)


IDEMPOTENCY_KEY_PARAMETER = idempotency_key_parameter(
    "1-128 printable ASCII characters, unique per till and write. Retrying with the same key and body "
    "returns the saved result; the same key with another body answers 422 idempotency_key_reused."
)


def replayed_header(statuses: list[int], saved: str = "result") -> OpenApiParameter:
    """The ``Idempotency-Replayed`` response header, on the statuses a saved answer can have."""
    return OpenApiParameter(
        REPLAYED_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        enum=["true"],
        response=statuses,
        description=f"Present (`true`) when the answer is the saved {saved} of an earlier request with this key.",
    )


# The statuses a saved outcome can have: successes and the ledger's refusals.
REPLAYED_RESPONSE_HEADER = replayed_header([200, 201, 403, 404, 409, 422])


def otp_field(help_text: str) -> StrictCharField:
    """A staff member's authenticator code: checked, never stored (not free text)."""
    return StrictCharField(min_length=6, max_length=16, free_text=False, help_text=help_text)


class StaffCredentialsSerializer(StrictInputSerializer):
    username = StrictCharField(max_length=150)
    # No staff password is shorter than the policy's minimum or longer than its maximum.
    # Credentials are checked, never stored: not free text.
    password = StrictCharField(
        min_length=getattr(settings, "STAFF_PASSWORD_MIN_LENGTH", 12), max_length=128, free_text=False
    )
    otp = otp_field("The current code of the staff user's authenticator app.")


COMMON_ERRORS = {
    401: error_doc("Missing or invalid signature headers, unknown or inactive till, timestamp outside the window."),
    403: error_doc("The till's IP allow-list refuses the caller, or the member's account is not active."),
    413: error_doc("Body larger than TILL_MAX_BODY_BYTES."),
    415: error_doc("Content-Type is not application/json."),
    422: error_doc("card_number_refused, idempotency_key_reused, or a ledger refusal (insufficient_points, ...)."),
    429: error_doc("Too many requests from this till."),
}


WRITE_ERRORS = {
    **COMMON_ERRORS,
    400: error_doc("idempotency_key_required, malformed_json, validation_error, invalid_loyalty_number"),
}


def till_operation(operation_id: str, ok, *, tag: str = TAG, **options):
    """The ``extend_schema`` of a till operation: its success answer, the errors every
    signed request may answer, then its own (``errors={status: description}``)."""
    return operation(operation_id, tag, ok, common=COMMON_ERRORS, **options)


def write_operation(operation_id: str, success: type[serializers.Serializer], *, parameters=(), **options):
    """A till write: 201 (applied or replayed), the errors of every write, then its own;
    its own ``parameters`` first, then the Idempotency-Key every write takes and the
    Idempotency-Replayed header every write may answer."""
    applied = OpenApiResponse(success, description="Applied (or replayed: see Idempotency-Replayed).")
    parameters = [*parameters, IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER]
    return operation(operation_id, TAG, applied, status=201, common=WRITE_ERRORS, parameters=parameters, **options)


# --- Selectors -------------------------------------------------------------------------------


def member_by_loyalty_number(number: str) -> Member:
    member = Member.objects.filter(loyalty_number=number).first()
    if member is None:
        raise MemberNotFound()
    return member


def balance_of(member: Member) -> dict:
    """The member's balance (``available``, ``held``, ``pending``: the ledger's words, as
    the member API answers them); zeros for a member who has never earned."""
    return member_balance_figures(member)


def hold_of_store(hold_id: str, till: Till) -> uuid.UUID:
    """The id of a hold taken at the till's store; 404 otherwise.

    Hold ids are deterministic (uuid5 of the till and its key), so they are not
    secrets: a till may settle only its own store's holds.
    """
    try:
        parsed = uuid.UUID(hold_id)
    except ValueError:
        raise HoldNotFound() from None
    if not LedgerOperation.objects.filter(pk=parsed, kind=LedgerOperation.Kind.HOLD, store_id=till.store_id).exists():
        raise HoldNotFound()
    return parsed


def receipt_ref_for(till: Till, receipt_number: str) -> str:
    return f"{till.store.code}/{till.code}/{receipt_number}"


# --- Base views ----------------------------------------------------------------------------


class TillApi(APIView):
    """A till-signed endpoint."""

    authentication_classes = [TillSignatureAuthentication]
    permission_classes = [TillPermission]
    throttle_classes = [TillRateThrottle]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    @property
    def till(self) -> Till:
        return self.request.auth

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, allow-list, rate
        card_numbers_refuse(request, path_values=kwargs, till=request.auth)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"  # balances and member numbers: never cached
        return response

    def input(self, serializer_class: type[serializers.Serializer]) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class TillWriteApi(TillApi):
    # The first answer and its replays are the same bytes (loyalty.api.renderers).
    renderer_classes = [CanonicalJSONRenderer]

    def idempotency_key(self) -> str:
        key = self.request.headers.get("Idempotency-Key", "")
        if not IDEMPOTENCY_KEY_FORMAT.match(key):
            raise IdempotencyKeyRequired()
        return key

    def member_input(self, serializer_class: type[serializers.Serializer]) -> tuple[str, dict, Member]:
        """The Idempotency-Key, the valid body and the member its ``loyalty_number`` names,
        refused in that order."""
        key = self.idempotency_key()
        data = self.input(serializer_class)
        return key, data, member_by_loyalty_number(data["loyalty_number"])

    def actor(self) -> Actor:
        return Actor(till=self.till)

    def fingerprint(self) -> dict:
        """The whole request (path and body) for the idempotency payload hash: the same
        key with any other request is refused, even where the points would match."""
        data = self.request.data if isinstance(self.request.data, dict) else {}
        return {"path": self.request.path, "body": data}

    @staticmethod
    def respond(outcome: Outcome) -> Response:
        headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
        return Response(outcome.body, status=outcome.status_code, headers=headers)
