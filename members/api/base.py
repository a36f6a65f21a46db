"""The base of the members' API and of every API the signed-in member calls (vouchers'
included): the ``/me`` view base, input validation with one stable code per field,
limit/offset pages, the schema's error responses and the caller's address."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.errors import VALIDATION_CODE, VALIDATION_MESSAGE, ApiRefusal
from loyalty.api.schema import error_doc, operation
from loyalty.api.serializers import StrictInputSerializer
from members.api.authentication import IsMember, MemberTokenAuthentication
from members.models import Member, MemberSession
from members.services.terms import terms_gate
from staffauth.net import client_ip

PAGE_DEFAULT = 20
PAGE_MAX = 100
OFFSET_MAX = 10_000
TAG = "Member (me)"


# --- refusals ------------------------------------------------------------------------------


class InvalidInput(ApiRefusal):
    """400 with ``detail`` = ``{field: {"code", "message"}}`` (one stable code per field)."""

    default_code = VALIDATION_CODE
    default_detail = VALIDATION_MESSAGE


class NotFound(ApiRefusal):
    default_code = "not_found"
    default_detail = "Not found."


def _first(value):
    """The first ErrorDetail of a DRF error structure (a list, or a dict for nested fields)."""
    while isinstance(value, dict | list) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return value


def valid_input(serializer_class: type[serializers.Serializer], data) -> dict:
    """The serializer's validated data, or 400 with ``{field: {"code", "message"}}``
    (DRF keeps each error's code on its ErrorDetail string)."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        detail = {}
        for field, errors in serializer.errors.items():
            error = _first(errors)
            detail[str(field)] = {"code": str(getattr(error, "code", "invalid")), "message": str(error)}
        raise InvalidInput(detail=detail)
    return serializer.validated_data


error_response = error_doc  # an error answer in the schema: the error body, with what the codes mean

COMMON_ERRORS = {
    401: error_response("No or an invalid bearer token, an expired token, or a session that has ended or timed out."),
    403: error_response(
        "member_not_active: the member's account is not active; terms_acceptance_required (POST, PUT, PATCH, "
        "DELETE only, but for the exempt endpoints): accept the current terms at /api/v1/me/terms/accept first."
    ),
}


def member_operation(operation_id: str, ok, *, tag: str = TAG, **options):
    """The ``extend_schema`` of an operation the signed-in member calls: its success answer,
    the bearer token's errors, then its own (``errors={status: description}``)."""
    return operation(operation_id, tag, ok, common=COMMON_ERRORS, **options)


# --- base ----------------------------------------------------------------------------------


class MeApi(APIView):
    """An endpoint of the signed-in member's own data.

    Terms gate: a state-changing call (POST, PUT, PATCH, DELETE) of a member who has not
    accepted the terms and conditions in force is refused with 403
    ``terms_acceptance_required`` (``members.services.terms.terms_gate``, installed by
    compliance), unless the view names why it is exempt in ``terms_exempt`` (accepting
    the terms, ending sessions, security, complaints, data-subject rights). Reads are
    never gated; with no terms in force nothing is refused.
    """

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]
    terms_exempt: str = ""  # why a member who has not accepted the terms may still call it

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticated and permitted first
        if request.method not in SAFE_METHODS and not self.terms_exempt:
            terms_gate(request.user.member)

    @property
    def member(self) -> Member:
        return self.request.user.member

    @property
    def session(self) -> MemberSession:
        return self.request.auth

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"  # personal data, balances, sessions: never cached
        return response


def id_parameter(name: str, kind) -> OpenApiParameter:
    """The id in the path of an action on one row of the member's list."""
    return OpenApiParameter(name, kind, OpenApiParameter.PATH, description="An id from the list.")


def by_id_operation(operation_id: str, ok, parameter: OpenApiParameter, what: str):
    """An action without a body on one of the member's rows, named in the path: an id of
    another member's row answers 404 like one that does not exist."""
    return member_operation(
        operation_id,
        ok,
        request=None,
        parameters=[parameter],
        errors={404: f"not_found: no such {what} of this member."},
    )


@extend_schema_serializer(component_name="MePageQuery")
class PageQuerySerializer(StrictInputSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=PAGE_MAX, default=PAGE_DEFAULT)
    offset = serializers.IntegerField(min_value=0, max_value=OFFSET_MAX, default=0)


def paginate(queryset, query: dict) -> tuple[list, int | None]:
    """One page of ``queryset`` (already ordered) and the next offset, or None at the end.
    Reads one row more than the page instead of counting the whole table."""
    limit, offset = query["limit"], query["offset"]
    rows = list(queryset[offset : offset + limit + 1])
    more = len(rows) > limit
    return rows[:limit], (offset + limit if more else None)


PAGE_PARAMETERS = [PageQuerySerializer]


def page_serializer(component_name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """A page of ``item``s and the offset of the next page."""

    @extend_schema_serializer(component_name=component_name)
    class PageSerializer(serializers.Serializer):
        results = item(many=True)
        next_offset = serializers.IntegerField(allow_null=True, help_text="Offset of the next page; null at the end.")

    return PageSerializer


def page_operation(operation_id: str, page: type[serializers.Serializer]):
    """The ``extend_schema`` of a paged list (limit/offset in the query)."""
    return member_operation(
        operation_id, page, parameters=PAGE_PARAMETERS, errors={400: "validation_error (limit, offset)"}
    )


class MePageApi(MeApi):
    """A paged list of the signed-in member's rows (limit/offset; no total count)."""

    OutputSerializer: type[serializers.Serializer]

    def page(self, queryset, row: Callable[..., dict] | None = None) -> Response:
        """One page of ``queryset``: each row as ``row`` maps it, or as the item serializer
        reads it (its fields are the row's attributes)."""
        query = valid_input(PageQuerySerializer, self.request.query_params.dict())
        rows, next_offset = paginate(queryset, query)
        results = rows if row is None else [row(r) for r in rows]
        return Response(self.OutputSerializer({"results": results, "next_offset": next_offset}).data)


def request_ip(request) -> str | None:
    """The caller's address (``staffauth.net.client_ip``) from a DRF or a Django request."""
    return client_ip(getattr(request, "_request", request))
