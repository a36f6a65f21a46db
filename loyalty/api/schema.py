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


# --- examples ------------------------------------------------------------------------------------

# Values an example takes by field name, then by format; what they must be to pass the
# API's own checks (a loyalty number with its check digit, a receipt number's alphabet).
EXAMPLE_BY_NAME = {
    "loyalty_number": "9900000000000127",
    "receipt_number": "R-1001",
    "receipt_ref": "KL01/DEMO/R-1001",
    "original_receipt_ref": "KL01/DEMO/R-1001",
    "store": "KL01",
    "till": "DEMO",
    "code": "123456",
    "otp": "123456",
    "username": "cashier1",
    "password": "correct horse battery staple",
    "amount_minor": 12500,
    "points": 300,
    "currency": "MYR",
    "kind": "earn",
    "month": "2026-03",
    # a member's details: distinctive values (an example sent by a contract test must not
    # collide with words every log line has)
    "name": "Aminah Binti Yusof",
    "address": "12 Jalan Contoh, 50450 Kuala Lumpur",
    "birth_date": "1990-04-17",
    "phone": "+60123456789",
    "email": "aminah@example.com",
    "label": "Aminah's phone",
}
EXAMPLE_BY_FORMAT = {
    "date-time": "2026-01-31T06:05:00Z",
    "date": "2026-07-31",
    "uuid": "3f2b1c9e-8d4a-4e6f-9b2a-1c3d5e7f9a0b",
    "email": "aminah@example.com",
    "uri": "https://example.com/",
    "binary": "",
}
EXAMPLE_NAME = "example"
EXAMPLE_DEPTH = 6


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema and schema[combined]:
            merged: dict = {}
            for part in schema[combined] if combined == "allOf" else schema[combined][:1]:
                part = _resolve(part, components)
                merged = {
                    **merged,
                    **part,
                    "properties": {**merged.get("properties", {}), **part.get("properties", {})},
                }
            return merged
    return schema


def example_of(schema: dict, components: dict, name: str = "", depth: int = 0):
    """A value that fits ``schema``: by the field's name where the API checks the value's
    form (EXAMPLE_BY_NAME), else by its format, enum, bounds or type."""
    schema = _resolve(schema, components)
    if "example" in schema:
        return schema["example"]
    if schema.get("enum"):
        return next((value for value in schema["enum"] if value is not None), None)
    kind = schema.get("type")
    if name in EXAMPLE_BY_NAME and kind in (None, "string", "integer"):
        value = EXAMPLE_BY_NAME[name]
        if isinstance(value, int) == (kind == "integer"):
            return value
    if kind == "object" or "properties" in schema:
        if depth >= EXAMPLE_DEPTH:
            return {}
        return {key: example_of(sub, components, key, depth + 1) for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [] if depth >= EXAMPLE_DEPTH else [example_of(schema.get("items", {}), components, name, depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1) if schema.get("minimum", 1) >= 0 else 0
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if schema.get("format") in EXAMPLE_BY_FORMAT:
        return EXAMPLE_BY_FORMAT[schema["format"]]
    return f"example-{name or 'text'}"


SVG_EXAMPLE = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40">…</svg>'


def _with_example(content: dict, components: dict, summary: str) -> None:
    for media_type, media in content.items():
        if "schema" not in media or media.get("examples") or "example" in media:
            continue
        if media_type == "application/json":
            value = example_of(media["schema"], components)
        elif media_type == "image/svg+xml":
            value = SVG_EXAMPLE
        else:
            continue
        media["examples"] = {EXAMPLE_NAME: {"value": value, "summary": summary}}


def operation_examples(result, generator, request, public):
    """Every operation of the API gets an example request (where it takes a body) and an
    example of its success answer: the operation's own ``OpenApiExample``s where it
    declares them, otherwise one built from the schema (``example_of``)."""
    components = result.get("components", {}).get("schemas", {})
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method in METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            if "requestBody" in operation:
                _with_example(operation["requestBody"].get("content", {}), components, "A request")
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2"):
                    _with_example(response.get("content", {}), components, "The answer")
    return result
