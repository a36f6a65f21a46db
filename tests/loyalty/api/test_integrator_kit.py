"""The integrator kit (issue 13): every operation in the schema has an example request
(where it takes a body) and an example answer, and the signing script of
docs/integrators.md signs requests the server accepts."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.loyalty.api.conftest import POS

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "docs" / "examples" / "till_request.py"
METHODS = ("get", "put", "post", "patch", "delete")


def script():
    spec = importlib.util.spec_from_file_location("till_request", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def has_examples(content: dict) -> bool:
    return any(media.get("examples") or "example" in media for media in content.values())


def test_every_operation_has_an_example_answer(schema):
    missing = [
        name
        for name, operation in operations(schema)
        if not any(
            has_examples(response.get("content", {}))
            for status, response in operation["responses"].items()
            if status.startswith("2") and response.get("content")
        )
        and any(
            status.startswith("2") and response.get("content") for status, response in operation["responses"].items()
        )
    ]
    assert not missing
    assert sum(1 for _ in operations(schema)) > 30


def test_every_operation_that_takes_a_body_has_an_example_request(schema):
    missing = [
        name
        for name, operation in operations(schema)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
        and not has_examples(operation["requestBody"]["content"])
    ]
    assert not missing


def test_the_examples_use_the_one_balance_and_the_one_timestamp_form(schema):
    purchase = schema["paths"]["/api/v1/pos/purchases"]["post"]
    (answer,) = purchase["responses"]["201"]["content"]["application/json"]["examples"].values()
    assert set(answer["value"]["balance"]) == {"available", "held", "pending"}
    assert answer["value"]["pending_until"].endswith("Z")


def test_the_scripts_signature_is_accepted(client, till, member):
    kit = script()
    body = json.dumps({"loyalty_number": member.loyalty_number}).encode()
    target = f"{POS}/members/balance"
    headers = kit.signed_headers(key_id=till.key_id, secret=till.plain_secret, method="POST", target=target, body=body)
    response = client.generic("POST", target, body, content_type=headers.pop("Content-Type"), headers=headers)
    assert response.status_code == 200, response.content
    assert response.json()["balance"] == {"available": 0, "held": 0, "pending": 0}


def test_the_scripts_signature_of_a_write_is_accepted_and_carries_a_key(client, till, member):
    kit = script()
    body = json.dumps({"loyalty_number": member.loyalty_number, "receipt_number": "R-kit", "amount_minor": 5000})
    target = f"{POS}/purchases"
    headers = kit.signed_headers(
        key_id=till.key_id, secret=till.plain_secret, method="POST", target=target, body=body.encode()
    )
    assert headers["Idempotency-Key"]
    response = client.generic("POST", target, body, content_type=headers.pop("Content-Type"), headers=headers)
    assert response.status_code == 201, response.content


def test_a_wrong_secret_is_refused(client, till, member):
    kit = script()
    body = json.dumps({"loyalty_number": member.loyalty_number}).encode()
    target = f"{POS}/members/balance"
    headers = kit.signed_headers(key_id=till.key_id, secret="not-it", method="POST", target=target, body=body)
    response = client.generic("POST", target, body, content_type=headers.pop("Content-Type"), headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"


def test_the_script_explains_itself():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)  # noqa: S603
    assert done.returncode == 0 and "--key-id" in done.stdout and "demo-till" in done.stdout


def test_the_script_asks_for_the_secret_it_has_no_default_for():
    # The demo till's secret is random (printed by make run): no published default.
    env = {k: v for k, v in os.environ.items() if k != "TILL_SECRET"}
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(SCRIPT), "/api/v1/pos/vouchers/public-key", "--method", "GET"],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert done.returncode == 2 and "TILL_SECRET" in done.stderr
