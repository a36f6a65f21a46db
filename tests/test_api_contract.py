"""The API keeps its published contract: schemathesis against ``/api/schema/``, in-process.

The schema is loaded from the Django WSGI app itself at collection time, so every
operation the schema has when the suite runs is tested (endpoints added later are picked
up without touching this file). Each operation gets generated requests, valid and
invalid (schemathesis' positive and negative modes, plus its coverage phase of
boundary values), with a fixed seed (``derandomize``) and a bounded number of examples.

Requests are made as a real member (a bearer access token of a live session from
``members.services.sessions.session_start``) and as a real till (signed with its own secret),
against the test database holding a member with points, a till in an active store and
an open redemption hold. About half the generated values that name something
(``loyalty_number``, ``hold_id``, ``session_id``, ``device_id``, a refresh token) are
swapped for real ones, so operations get past 404 and into their services.

Checks on every response:

- ``not_a_server_error``: never a 5xx;
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the Content-Type is the documented one;
- ``response_schema_conformance``: the body matches the documented schema;
- ``response_headers_conformance``: documented required headers are present and valid.

The till signature is computed in a WSGI wrapper over the bytes Django receives (the
path with its query string, and the body), independently of ``loyalty.api.auth``: ``aim``
marks the requests to sign (till operations) and adds the key and timestamp.
The test itself does what a ``before_call`` hook would (``aim``): schemathesis only
allows that hook globally, and this file must not change other tests' requests.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
import zlib

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loyalty.api.auth import till_create
from loyalty.kernel.models import Store
from loyalty.ledger.operations import Actor, points_earn
from members.services.membership import member_create
from members.services.sessions import DeviceBlocked, session_start
from tests.conftest import PASSWORD, current_totp

SCHEMA_PATH = "/api/schema/?format=json"
API_PREFIX = "/api/v1/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Per operation, on top of schemathesis' explicit examples and coverage cases. Bounded so
# the whole file runs in a few minutes on two cores.
MAX_EXAMPLES = 15
SIGN_ME = "to-be-signed"
DEVICE_FINGERPRINT = "contract-test-device"

# What ``aim`` and the signing wrapper use: set per test by the ``world`` fixture.
WORLD: dict = {}


# --- in-process app that signs till requests -----------------------------------------------


def _signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    # The documented format (see the X-Signature security scheme), written out here.
    message = f"{timestamp}\n{method}\n{path}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


_django_app = get_wsgi_application()


def signing_app(environ, start_response):
    """Django's WSGI app; a request marked ``X-Signature: to-be-signed`` is signed first,
    like a till signs it: over the request target as sent (the raw URI the WSGI server
    reports, as gunicorn's RAW_URI), the query string included, and the body bytes."""
    if environ.get("HTTP_X_SIGNATURE") == SIGN_ME:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw:
            path = raw.encode("latin-1").decode()  # PEP 3333: the bytes sent, as latin-1
        else:
            path = WSGIRequest({**environ, "wsgi.input": io.BytesIO(b"")}).get_full_path()
        environ["HTTP_X_SIGNATURE"] = _signature(
            WORLD["till_secret"], environ["HTTP_X_TIMESTAMP"], environ["REQUEST_METHOD"], path, body
        )
    return _django_app(environ, start_response)


schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, signing_app)
schema = schema.include(path_regex=f"^{API_PREFIX}")


# --- the world every operation runs against -----------------------------------------------


def _half(value) -> bool:
    """A deterministic coin per generated value: swap it for a real one or keep it."""
    return zlib.crc32(repr(value).encode()) % 2 == 0


def _security(case) -> set[str]:
    names = set()
    for requirement in case.operation.definition.raw.get("security") or []:
        names.update(requirement)
    return names


def _open_hold() -> str:
    """A new open hold of 10 points taken by the cashier on shift (capture and void settle
    theirs); every other one authorised by the member in the app, so captures get past
    ``member_authorisation_required`` half the time."""
    from members.models import MemberSession
    from vouchers.services.till_points import member_redemption_confirm, till_redemption_hold

    WORLD["holds"] += 1
    outcome = till_redemption_hold(
        till=WORLD["till"],
        shift=WORLD["shift"],
        member=WORLD["member"],
        points=100,  # the till minimum (VOUCHER_REDEEM_MIN_POINTS)
        idempotency_key=f"hold-{WORLD['holds']}",
    )
    assert outcome.ok, outcome.body
    if WORLD["holds"] % 2:
        session = MemberSession.objects.get(pk=WORLD["tokens"].session_id)
        member_redemption_confirm(member=WORLD["member"], session=session, hold_id=outcome.body["hold_id"])
    return outcome.body["hold_id"]


def _new_member_session() -> None:
    try:
        tokens = session_start(member=WORLD["member"], channel="app", device_fingerprint=WORLD["fingerprint"])
    except DeviceBlocked:
        # A generated request blocked this device (me/devices/{id}/block): sign in from another.
        WORLD["devices"] += 1
        WORLD["fingerprint"] = f"{DEVICE_FINGERPRINT}-{WORLD['devices']}"
        tokens = session_start(member=WORLD["member"], channel="app", device_fingerprint=WORLD["fingerprint"])
    WORLD["tokens"] = tokens


def _staff_shift(till, store, make_staff):
    """A cashier clocked in at the till (POST pos/shifts' service): the shift and its
    X-Staff-Shift token."""
    from vouchers.services.shifts import shift_start

    cashier = make_staff("contract-cashier", "cashier", stores=[store])
    started = shift_start(till=till, username=cashier.username, password=PASSWORD, otp_token=current_totp(cashier))
    return started.shift, started.token


@pytest.fixture
def world(db, settings, make_staff):
    """A member with 90,000 points and an app session, a till in an active store with a
    cashier on shift."""
    # The programme's velocity limits (two redemptions a day...) are tested on their own;
    # here they would turn most of an operation's examples into the same 422.
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)
    store = Store.objects.create(code="CTR", name="Contract store", region="Central")
    till, secret = till_create(store=store, code="CT1")
    cache.delete(f"throttle_till_{till.pk}")
    member = member_create(home_store=store, name="Contract Member", phone="+60123456789", email="contract@example.com")
    actor = Actor(till=till)
    # Enough for every hold the examples take (100 points each, the till minimum), in one
    # purchase: the tiers' daily earning caps are lifted here like the velocity limits.
    settings.LOYALTY_TIERS = [{**tier, "daily_earn_points": 10**9} for tier in settings.LOYALTY_TIERS]
    earned = points_earn(member=member, points=90_000, receipt_ref="CTR/CT1/R-1", actor=actor, idempotency_key="seed-1")
    assert earned.ok, earned.body
    # Django's WSGI handler closes the database connection at the end of each request,
    # which would end the test's transaction: the test client disconnects this too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    WORLD.clear()
    WORLD.update(
        member=member,
        till=till,
        till_secret=secret,
        holds=0,
        fingerprint=DEVICE_FINGERPRINT,
        devices=1,
    )
    _new_member_session()
    WORLD["shift"], WORLD["staff_shift"] = _staff_shift(till, store, make_staff)
    # Terms in force and a complaint of the member's (compliance.consumer, issue 15).
    from compliance import consumer

    admin = make_staff("contract-admin", "program_admin")
    consumer.terms_publish(
        actor=admin,
        version=consumer.terms_draft_save(actor=admin, title="Terms", body="Body", effective_from=timezone.now()),
    )
    WORLD["complaint"] = consumer.complaint_file(member=member, kind="service", subject="s", body="b", actor=admin)
    yield WORLD
    WORLD.clear()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def aim(case) -> None:
    """Authenticate every request as the real member or the real till, and point about
    half of the generated identifiers at real rows."""
    security = _security(case)
    headers = dict(case.headers or {})
    if "memberToken" in security:
        # A fresh session per request: logout, revoke and block end the previous one.
        _new_member_session()
        headers["Authorization"] = f"Bearer {WORLD['tokens'].access_token}"
    if "TillSignature" in security:
        headers.update(
            {"X-Till-Key": WORLD["till"].key_id, "X-Timestamp": str(int(time.time())), "X-Signature": SIGN_ME}
        )
        header_names = {
            p.get("name") for p in case.operation.definition.raw.get("parameters", []) if p.get("in") == "header"
        }
        if "X-Staff-Shift" in header_names and _half(headers.get("X-Staff-Shift")):
            headers["X-Staff-Shift"] = WORLD["staff_shift"]
    case.headers = headers

    real_path = {
        "loyalty_number": WORLD["member"].loyalty_number,
        "hold_id": _open_hold,
        "session_id": str(WORLD["tokens"].session_id),
        "device_id": WORLD["tokens"].device_id,
        "complaint_id": WORLD["complaint"].pk,
    }
    if case.path_parameters:
        for name, value in list(case.path_parameters.items()):
            if name in real_path and _half(value):
                real = real_path[name]
                case.path_parameters[name] = real() if callable(real) else real

    if isinstance(case.body, dict):
        # Hypothesis mixes string constants of the code under test into the text it draws
        # (a model's label such as "Failed"); as a member's name or address, such a word is
        # then found by the log scan in every log line that uses it. One word alone gets a
        # second one, so the personal data the test sends is its own.
        for field in ("name", "address"):
            value = case.body.get(field)
            if isinstance(value, str) and value.isalpha():
                case.body[field] = f"{value} Contractus"
    if isinstance(case.body, dict) and _half(json.dumps(case.body, sort_keys=True, default=str)):
        if "loyalty_number" in case.body:
            case.body["loyalty_number"] = WORLD["member"].loyalty_number
        if "refresh_token" in case.body:
            case.body["refresh_token"] = WORLD["tokens"].refresh_token
            case.body["device_fingerprint"] = WORLD["fingerprint"]


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    # The ``world`` fixture is shared by the examples of one operation on purpose (its
    # state grows like a real till's day); generated bodies are large and filtered.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_every_api_operation_keeps_its_contract(case, world):
    aim(case)
    case.call_and_validate(checks=CHECKS)


def test_the_contract_covers_every_member_and_till_operation():
    """The parametrized test above runs over this list: it is the schema's, not a fixed one."""
    results = list(schema.get_all_operations())
    assert all(result.ok() for result in results), [result.err() for result in results if not result.ok()]
    operations = {(result.ok().method.upper(), result.ok().path) for result in results}
    paths = {path for _, path in operations}
    assert {"/api/v1/pos/purchases", "/api/v1/me", "/api/v1/auth/otp/request"} <= paths
    assert all(path.startswith(API_PREFIX) for path in paths)
    raw = json.loads(_raw_schema())
    documented = {
        (method.upper(), path)
        for path, item in raw["paths"].items()
        if path.startswith(API_PREFIX)
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert operations == documented


def _raw_schema() -> str:
    from django.test import Client

    return Client().get(SCHEMA_PATH).content.decode()
