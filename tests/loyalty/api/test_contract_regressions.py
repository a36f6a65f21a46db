"""Regressions found by the API contract test (tests/test_api_contract.py).

The schema documented the Idempotency-Key header as any string, so a client (or a
generated request) following it could send "" or 200 characters and be refused with
400 ``idempotency_key_required``. The header's schema now states the format the view
enforces; these tests keep the two in step.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from loyalty.ledger.api.base import IDEMPOTENCY_KEY_FORMAT

pytestmark = pytest.mark.django_db

# No value ending in a newline: Python's re (used by jsonschema) lets "$" match before a
# final newline, ECMA regexes (the dialect OpenAPI names) do not; an HTTP header value
# cannot end in a newline anyway.
SAMPLES = ["", " ", "a", "~" * 128, "k" * 129, "key\x7f", "kéy", "tab\tkey", "key-1 with spaces", "new\nline"]


@pytest.fixture
def keyed_writes(client) -> dict[str, dict]:
    """Every operation of the API that takes an Idempotency-Key header."""
    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)
    return {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }


def _key_schema(operation: dict) -> dict:
    (parameter,) = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
    assert parameter["required"] is True
    return parameter["schema"]


def test_every_write_with_an_idempotency_key_documents_its_format(keyed_writes):
    assert set(keyed_writes) >= {
        f"POST /api/v1/pos/{path}"
        for path in (
            "purchases",
            "returns",
            "redemptions",
            "redemptions/{hold_id}/capture",
            "redemptions/{hold_id}/void",
        )
    }
    for path, operation in keyed_writes.items():
        assert _key_schema(operation) == {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "pattern": "^[ -~]{1,128}$",
        }, path


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_the_documented_idempotency_key_format_is_the_one_enforced(keyed_writes, value):
    documented = jsonschema.Draft202012Validator(_key_schema(keyed_writes["POST /api/v1/pos/purchases"]))
    assert documented.is_valid(value) == bool(IDEMPOTENCY_KEY_FORMAT.match(value))


def test_a_documented_key_is_accepted_by_a_real_purchase(pos, member):
    response = pos.post(
        "purchases",
        {"loyalty_number": member.loyalty_number, "receipt_number": "R-1", "amount_minor": 1000},
        key="~" * 128,
    )
    assert response.status_code == 201, response.content
