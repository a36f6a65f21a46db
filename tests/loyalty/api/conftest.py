"""Till API fixtures: a till with a real encrypted secret, and a client that signs.

The signature is computed here independently of ``loyalty.api.auth`` (straight from
the documented format), so a mistake in the server's signing code cannot be mirrored
by the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.test import Client

from loyalty.api.auth import till_create
from loyalty.ledger.models import LedgerOperation, LotMovement, Transfer
from members.models import Member

POS = "/api/v1/pos"
UNSET = object()


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}\n{method}\n{path}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def encode(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


@dataclass
class TillClient:
    """Sends requests signed as ``till`` (with ``secret``); every knob can be bent."""

    client: Client
    till: object
    secret: str
    keys: itertools.count = field(default_factory=lambda: itertools.count(1))

    def request(
        self,
        method: str,
        path: str,
        body=None,
        *,
        key=UNSET,
        content_type: str = "application/json",
        timestamp=None,
        secret: str | None = None,
        key_id: str | None = None,
        signed_body: bytes | None = None,
        signed_path: str | None = None,
        signed_method: str | None = None,
        headers: dict | None = None,
        **extra,
    ):
        raw = encode(body)
        ts = str(int(time.time())) if timestamp is None else str(timestamp)
        signature = sign(
            secret or self.secret,
            ts,
            signed_method or method,
            signed_path or path,
            raw if signed_body is None else signed_body,
        )
        sent = {"X-Till-Key": key_id or self.till.key_id, "X-Timestamp": ts, "X-Signature": signature}
        if key is UNSET and method == "POST":
            key = f"test-key-{next(self.keys)}"
        if key not in (UNSET, None):
            sent["Idempotency-Key"] = key
        sent.update(headers or {})
        sent = {name: value for name, value in sent.items() if value is not None}
        return self.client.generic(method, path, raw, content_type=content_type, headers=sent, **extra)

    def post(self, path: str, body=None, **kwargs):
        return self.request("POST", f"{POS}/{path}", body, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", f"{POS}/{path}", **kwargs)


def make_till(store, code: str, **kwargs):
    till, secret = till_create(store=store, code=code, **kwargs)
    till.plain_secret = secret
    # Throttle history lives in the shared cache, keyed by till id: start clean.
    cache.delete(f"throttle_till_{till.pk}")
    return till


@pytest.fixture
def till(store_a):
    """Overrides tests/loyalty/conftest.py's till: this one has a real, encrypted secret."""
    return make_till(store_a, "T1")


@pytest.fixture
def pos(till):
    return TillClient(Client(), till, till.plain_secret)


@pytest.fixture
def pos_for():
    def make(till):
        return TillClient(Client(), till, till.plain_secret)

    return make


@pytest.fixture
def rich_member(member, earn):
    """An active member with 1,000 points, earned at the till's store."""
    earn(member, 1000)
    return member


def ledger_counts() -> tuple[int, int, int]:
    return LedgerOperation.objects.count(), Transfer.objects.count(), LotMovement.objects.count()


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str)
    assert set(error) <= {"code", "message", "detail"}
    if code is not None:
        assert error["code"] == code, body
    return error


def unknown_loyalty_number() -> str:
    """A well-formed loyalty number no member has."""
    while True:
        number = Member._meta.get_field("loyalty_number").default()
        if not Member.objects.filter(loyalty_number=number).exists():
            return number
