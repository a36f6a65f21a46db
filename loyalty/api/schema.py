"""OpenAPI post-processing: the refusals every API operation can answer at the door.

``ApiRequestGuardMiddleware`` answers before any view, so no view's ``extend_schema``
lists its refusals; this hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``) adds
them to each operation: 413 ``payload_too_large`` where a body is taken, and 422
``card_number_refused`` where query parameters are taken (views document their own 422
for card numbers in a body or a header).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema

from loyalty.api.serializers import ErrorSerializer

ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
PAYLOAD_TOO_LARGE = (
    "payload_too_large: the body is larger than this API takes (MEMBER_API_MAX_BODY_BYTES, TILL_MAX_BODY_BYTES)."
)
CARD_NUMBER = "card_number_refused: a query parameter looks like a payment card number."
METHODS = ("get", "put", "post", "patch", "delete")


def _add(responses: dict, status: str, description: str, code: str | None = None) -> None:
    """Document ``status``; where it is documented already, name ``code`` in it if given."""
    if status not in responses:
        responses[status] = {"description": description, "content": ERROR_CONTENT}
    elif code is not None and code not in responses[status].get("description", ""):
        responses[status]["description"] = f"{responses[status]['description']} {description}".strip()


def door_refusals(result, generator, request, public):
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method in METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            if "requestBody" in operation:
                _add(responses, "413", PAYLOAD_TOO_LARGE)
            if has_query:
                _add(responses, "422", CARD_NUMBER, "card_number_refused")
    return result


# --- the views' declarations ------------------------------------------------------------------


def error_doc(description: str) -> OpenApiResponse:
    """An error answer in the schema: the one error shape, and which codes it carries."""
    return OpenApiResponse(ErrorSerializer, description=description)


def errors_doc(errors: dict | None) -> dict:
    """``{status: description}`` as error answers (a value already an answer is kept)."""
    return {code: error_doc(text) if isinstance(text, str) else text for code, text in (errors or {}).items()}


def operation(
    operation_id: str, tag: str, ok, *, common: dict, errors: dict | None = None, status: int = 200, **options
):
    """One operation's ``extend_schema``: its id and tag, then the answers in the order the
    schema lists them: the success (``status``), the errors every operation of the API
    answers (``common``), then its own (``errors``, ``{status: description}``)."""
    responses = {status: ok, **common, **errors_doc(errors)}
    return extend_schema(operation_id=operation_id, tags=[tag], responses=responses, **options)
