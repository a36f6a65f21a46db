"""Issue 11 (D6, D7): what both APIs refuse at the door, before any view or log line.

- a card-like query value (any parameter): 422 ``card_number_refused``, never logged;
  ``state`` checked against its values without echoing what was sent;
- a body over the member API's limit (declared, or chunked): 413, never a 500;
- a card number in the User-Agent or typed as a staff username is not stored.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from loyalty.kernel.pan import contains_pan
from tests.members.api.input_guard_helpers import PAN, assert_unchanged, error

pytestmark = pytest.mark.django_db


# --- D7: query strings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [f"state={PAN}", "state=4111%201111%201111%201111", "state=%EF%BC%94111111111111111", f"limit=1&{PAN}=x"],
)
def test_a_card_like_query_value_is_refused_before_it_is_logged(api, query, caplog):
    with caplog.at_level(logging.DEBUG):
        response = api.get(f"/api/v1/me/vouchers?{query}")
    body = error(response, 422, "card_number_refused")
    assert body["detail"]["field"].startswith("query:")
    assert response["Cache-Control"] == "no-store" and response["X-Request-ID"]
    for record in caplog.records:
        assert not contains_pan(record.getMessage()), record.getMessage()
        assert "4111" not in record.getMessage()


def test_an_unknown_voucher_state_is_refused_with_the_allowed_values(api):
    response = api.get("/api/v1/me/vouchers?state=Aminah%20binti%20Yusof")
    detail = error(response, 400, "validation_error")["detail"]
    assert detail["state"]["code"] == "invalid_choice"
    assert "active" in detail["state"]["message"] and "Aminah" not in response.content.decode()
    assert api.get("/api/v1/me/vouchers?state=active").status_code == 200


# --- D6: body size -----------------------------------------------------------------------------------

THREE_MIB = 3 * 1024 * 1024


def test_a_3_mib_body_to_the_anonymous_otp_request_answers_413():
    body = json.dumps({"phone": "+60125550101", "purpose": "login", "pad": "x" * THREE_MIB})
    response = APIClient().post("/api/v1/auth/otp/request", body, content_type="application/json")
    assert error(response, 413, "payload_too_large")["detail"] == {"max_bytes": 64 * 1024}


def test_a_3_mib_body_to_patch_me_answers_413(api, member):
    response = api.patch("/api/v1/me", json.dumps({"name": "x" * THREE_MIB}), content_type="application/json")
    error(response, 413, "payload_too_large")
    assert_unchanged(member)


@override_settings(MEMBER_API_MAX_BODY_BYTES=100)
def test_the_member_api_limit_is_a_setting(api):
    response = api.patch("/api/v1/me", {"name": "x" * 200}, format="json")
    assert error(response, 413, "payload_too_large")["detail"] == {"max_bytes": 100}
    assert api.patch("/api/v1/me", {"name": "Short"}, format="json").status_code == 200


def test_a_chunked_body_without_content_length_is_never_a_500(api, member):
    # WSGI: Django reads no body without a Content-Length.
    response = api.generic(
        "PATCH", "/api/v1/me", b"x" * THREE_MIB, content_type="application/json", CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
    )  # fmt: skip
    assert response.status_code == 400 and response.json()["error"]["code"] == "empty_update"
    # ASGI: the server buffers a chunked body whole; the limit applies to what was read.
    from loyalty.api.middleware import ApiRequestGuardMiddleware

    scope = {
        "type": "http", "method": "POST", "path": "/api/v1/auth/otp/request", "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
    }  # fmt: skip
    for size in (THREE_MIB, 64 * 1024 + 1):
        request = ASGIRequest(scope, io.BytesIO(b"x" * size))
        response = ApiRequestGuardMiddleware(lambda r: pytest.fail("the view must not run"))(request)
        assert response.status_code == 413
        assert json.loads(response.content)["error"]["code"] == "payload_too_large"


def test_a_card_number_typed_as_a_username_or_sent_as_the_user_agent_is_not_stored(db):
    from axes.models import AccessAttempt, AccessFailureLog

    from staffauth.models import SecurityEvent

    client = Client(HTTP_USER_AGENT=f"Mozilla/5.0 (card {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]})")
    client.post(reverse("admin:login"), {"username": "4111111111111111", "password": "a-wrong-password-1"})
    stored = [
        *SecurityEvent.objects.values_list("username", "user_agent", "detail"),
        *AccessAttempt.objects.values_list("username", "user_agent", "get_data", "post_data"),
        *AccessFailureLog.objects.values_list("username", "user_agent"),
    ]
    assert stored and "1111" not in str(stored)
