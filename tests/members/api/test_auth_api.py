"""The member sign-in endpoints (/api/v1/auth/...): the flows end to end over HTTP, the
refusals with their statuses and stable codes, and what must never leak (tokens and
phone numbers in URLs, caches or logs)."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from django.core.management import call_command
from django.urls import URLPattern, get_resolver
from rest_framework.test import APIClient

from loyalty.notifications import LocmemSmsBackend
from members.api import auth_views
from members.models import Consent, ConsentRecord, Member, MemberSecurityEvent, MemberSession
from members.selectors import member_by_phone
from members.services.membership import member_create

pytestmark = pytest.mark.django_db

REQUEST = "/api/v1/auth/otp/request"
VERIFY = "/api/v1/auth/otp/verify"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"

PHONE = "+60 12-555 0101"
PHONE_E164 = "+60125550101"
STRANGER = "+60 13-555 0202"  # nobody is enrolled with this number
STRANGER_E164 = "+60135550202"
FINGERPRINT = "fp-7c1e2d9a-pixel-8"
DEVICE = {"fingerprint": FINGERPRINT, "label": "Pixel 8"}
CONSENTS = {"essential": True}  # enrolment needs it (tests/members/api/test_consent_api.py has the rest)


@pytest.fixture
def api():
    return Client()


@pytest.fixture
def member(store_a):
    return member_create(home_store=store_a, phone=PHONE, preferred_channel="sms")


class Client:
    """An API client that records every URL it calls and every response it gets, runs the
    after-commit callbacks (the SMS), and can read the last code sent."""

    def __init__(self):
        self.client = APIClient()
        self.urls: list[str] = []
        self.responses: list = []

    def post(self, url, body=None, *, token=None, remote_addr="10.0.0.1", capture=None, **extra):
        self.urls.append(url)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        kwargs = {"format": "json"} if body is not None and "content_type" not in extra else {}
        call = lambda: self.client.post(url, body, REMOTE_ADDR=remote_addr, **kwargs, **headers, **extra)  # noqa: E731
        if capture is not None:
            with capture(execute=True):
                response = call()
        else:
            response = call()
        self.responses.append(response)
        return response


def code_sent_to(phone_e164: str) -> str | None:
    sent = [m for m in LocmemSmsBackend.outbox if m["to"] == phone_e164]
    return re.search(r"\b(\d{6})\b", sent[-1]["text"]).group(1) if sent else None


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def verify_body(api, django_capture_on_commit_callbacks):
    """Request a code (``request``: more arguments of that request) and read it from the
    SMS outbox; returns the request's response and the body that verifies the code."""

    def verify_body(phone=PHONE, phone_e164=PHONE_E164, purpose="login", device=DEVICE, channel="app", request=None):
        requested = api.post(
            REQUEST, {"phone": phone, "purpose": purpose}, capture=django_capture_on_commit_callbacks, **(request or {})
        )
        body = {
            "challenge_id": requested.json()["challenge_id"],
            "phone": phone,
            "code": code_sent_to(phone_e164),
            "purpose": purpose,
            "channel": channel,
            "device": device,
        }
        return requested, body

    return verify_body


@pytest.fixture
def sign_in(api, verify_body, django_capture_on_commit_callbacks):
    """Request a code, read it from the SMS outbox and verify it; returns the verify response."""

    def sign_in(phone=PHONE, phone_e164=PHONE_E164, purpose="login", device=DEVICE, channel="app", **extra):
        requested, body = verify_body(phone, phone_e164, purpose, device, channel)
        assert requested.status_code == 202, requested.content
        return api.post(VERIFY, {**body, **extra}, capture=django_capture_on_commit_callbacks)

    return sign_in


# --- the flows ---------------------------------------------------------------------------------


def test_login_flow_request_verify_use_logout_and_the_token_stops_working(api, member, sign_in, caplog):
    caplog.set_level(logging.DEBUG)
    # given a code requested and read from the SMS, when it is verified
    response = sign_in()
    # then a session is open, from a new device
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access_token", "access_expires_at", "refresh_token", "session_id", "new_device"}
    assert body["new_device"] is True
    session = MemberSession.objects.get(pk=body["session_id"])
    assert session.member == member and session.channel == "app" and session.ended_at is None

    # when the access token is used to log out, then the session ends at once
    logout = api.post(LOGOUT, token=body["access_token"])
    assert logout.status_code == 204 and logout.content == b""
    session.refresh_from_db()
    assert session.ended_at is not None and session.end_reason == "logout"

    # and the same access token no longer works, nor does the refresh token
    again = api.post(LOGOUT, token=body["access_token"])
    assert again.status_code == 401 and error_code(again) == "session_ended"
    refreshed = api.post(REFRESH, {"refresh_token": body["refresh_token"], "device_fingerprint": FINGERPRINT})
    assert refreshed.status_code == 401 and error_code(refreshed) == "session_ended"

    _assert_logs_hold_no_secret(caplog, api, extra=[PHONE_E164, FINGERPRINT])


def test_a_second_login_from_the_same_device_is_not_a_new_device(member, sign_in):
    assert sign_in().json()["new_device"] is True
    assert sign_in().json()["new_device"] is False


def test_enrol_flow_creates_the_member_and_opens_their_first_session(api, store_a, sign_in, caplog):
    caplog.set_level(logging.DEBUG)
    assert member_by_phone(STRANGER) is None
    response = sign_in(
        phone=STRANGER, phone_e164=STRANGER_E164, purpose="enrol", channel="web", remember_me=True, consents=CONSENTS
    )
    assert response.status_code == 201, response.content
    member = member_by_phone(STRANGER)
    assert member is not None
    session = MemberSession.objects.get(pk=response.json()["session_id"])
    assert session.member == member and session.channel == "web" and session.remember_me
    # the essential consent is recorded, the opt-ins recorded as not given
    assert dict(ConsentRecord.objects.filter(member=member).values_list("purpose", "granted")) == {
        "essential": True, "sms_marketing": False, "email_marketing": False,
        "analytics": False, "data_sharing": False, "personalisation": False,
    }  # fmt: skip
    # the new member can use their token
    assert api.post(LOGOUT, token=response.json()["access_token"]).status_code == 204
    _assert_logs_hold_no_secret(caplog, api, extra=[STRANGER_E164, FINGERPRINT])


def test_enrolling_an_enrolled_number_sends_no_code_and_no_guess_gets_in(
    api, member, django_capture_on_commit_callbacks
):
    requested = api.post(REQUEST, {"phone": PHONE, "purpose": "enrol"}, capture=django_capture_on_commit_callbacks)
    assert requested.status_code == 202
    assert LocmemSmsBackend.outbox == []
    guess = api.post(
        VERIFY,
        {
            "challenge_id": requested.json()["challenge_id"],
            "phone": PHONE,
            "code": "000000",
            "purpose": "enrol",
            "channel": "app",
            "device": DEVICE,
            "consents": CONSENTS,
        },
    )
    assert guess.status_code == 401 and error_code(guess) == "otp_wrong_code"
    assert Member.objects.count() == 1


def test_enrolling_a_number_enrolled_meanwhile_is_409_and_creates_nothing(
    api, store_a, django_capture_on_commit_callbacks
):
    requested = api.post(REQUEST, {"phone": STRANGER, "purpose": "enrol"}, capture=django_capture_on_commit_callbacks)
    code = code_sent_to(STRANGER_E164)
    member_create(home_store=store_a, phone=STRANGER)  # enrolled at the counter meanwhile
    body = {
        "challenge_id": requested.json()["challenge_id"],
        "phone": STRANGER,
        "code": code,
        "purpose": "enrol",
        "channel": "app",
        "device": DEVICE,
        "consents": CONSENTS,
    }
    response = api.post(VERIFY, body)
    assert response.status_code == 409 and error_code(response) == "phone_taken"
    assert Member.objects.count() == 1 and not MemberSession.objects.exists()
    assert not ConsentRecord.objects.exists() and not Consent.objects.exists()


# --- enumeration resistance ----------------------------------------------------------------------


def _shape(response) -> tuple:
    body = response.json()
    return (
        response.status_code,
        sorted(body),
        len(body["challenge_id"]),
        len(body["expires_at"]),
        sorted(h.lower() for h in response.headers),
        response["Cache-Control"],
    )


@pytest.mark.parametrize("purpose", ["login", "enrol"])
def test_the_request_answers_the_same_for_enrolled_and_unknown_numbers(api, member, purpose):
    enrolled = api.post(REQUEST, {"phone": PHONE, "purpose": purpose})
    unknown = api.post(REQUEST, {"phone": STRANGER, "purpose": purpose})
    assert enrolled.status_code == 202
    assert _shape(enrolled) == _shape(unknown)


def test_a_login_code_goes_only_to_an_enrolled_number(api, member, django_capture_on_commit_callbacks):
    api.post(REQUEST, {"phone": STRANGER, "purpose": "login"}, capture=django_capture_on_commit_callbacks)
    api.post(REQUEST, {"phone": PHONE, "purpose": "login"}, capture=django_capture_on_commit_callbacks)
    assert [m["to"] for m in LocmemSmsBackend.outbox] == [PHONE_E164]


# --- rate limits and guesses ---------------------------------------------------------------------


@pytest.mark.parametrize("phone", [PHONE, STRANGER])
def test_the_sixth_code_in_an_hour_is_429_with_retry_after(api, member, phone):
    for _ in range(5):
        assert api.post(REQUEST, {"phone": phone, "purpose": "login"}).status_code == 202
    sixth = api.post(REQUEST, {"phone": phone, "purpose": "login"})
    assert sixth.status_code == 429
    assert error_code(sixth) == "otp_rate_limited"
    assert 1 <= int(sixth["Retry-After"]) <= 3600
    assert sixth["Cache-Control"] == "no-store"


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid numbers nobody is enrolled with (an SMS pumper's list)."""
    return [f"+6017{3000000 + start + n:07d}" for n in range(count)]


def test_one_address_asking_codes_for_many_numbers_is_capped_with_retry_after(
    api, db, django_capture_on_commit_callbacks
):
    # given an address asking enrolment codes for 25 random numbers (issue 11, D8: 19 were sent)
    pumper = "203.0.113.7"
    responses = [
        api.post(
            REQUEST,
            {"phone": phone, "purpose": "enrol"},
            remote_addr=pumper,
            capture=django_capture_on_commit_callbacks,
        )
        for phone in numbers(25)
    ]
    # then the first 10 (the default cap) are sent, the other 15 refused with Retry-After
    assert [r.status_code for r in responses] == [202] * 10 + [429] * 15
    assert len(LocmemSmsBackend.outbox) == 10
    for refused in responses[10:]:
        assert error_code(refused) == "otp_sender_rate_limited"
        assert 1 <= int(refused["Retry-After"]) <= 3600
        assert refused["Cache-Control"] == "no-store"
    # one security event for the address (not one per refusal), without any number
    (event,) = MemberSecurityEvent.objects.filter(kind="otp_sender_capped")
    assert event.member is None and event.ip == pumper
    assert event.detail == {"scope": "address", "limit": 10, "window_seconds": 3600, "purpose": "enrol"}
    # and another address still gets its codes
    other = api.post(
        REQUEST, {"phone": numbers(1, 100)[0], "purpose": "enrol"}, remote_addr="203.0.113.8",
        capture=django_capture_on_commit_callbacks,
    )  # fmt: skip
    assert other.status_code == 202 and len(LocmemSmsBackend.outbox) == 11


def test_the_address_cap_is_configurable_and_zero_switches_it_off(api, db, settings):
    settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "otp_codes_per_hour_per_address": 3}
    statuses = [api.post(REQUEST, {"phone": p, "purpose": "enrol"}).status_code for p in numbers(4)]
    assert statuses == [202, 202, 202, 429]

    settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "otp_codes_per_hour_per_address": 0}
    statuses = [api.post(REQUEST, {"phone": p, "purpose": "enrol"}).status_code for p in numbers(12, 10)]
    assert statuses == [202] * 12


def test_a_forged_x_forwarded_for_does_not_reset_the_address_cap(api, db):
    # No proxy is trusted (TRUSTED_PROXY_COUNT=0): the header is the client's, and ignored.
    statuses = [
        api.post(REQUEST, {"phone": phone, "purpose": "login"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n, phone in enumerate(numbers(11))
    ]
    assert statuses == [202] * 10 + [429]


def test_behind_a_trusted_proxy_each_client_address_has_its_own_cap(api, db, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.9.9.9"

    def ask(phone, client):  # the client forges a left-most entry; the proxy appends the real address
        body = {"phone": phone, "purpose": "login"}
        return api.post(REQUEST, body, remote_addr=proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.4, {client}").status_code

    assert [ask(phone, "192.0.2.10") for phone in numbers(11)] == [202] * 10 + [429]
    assert ask(numbers(1, 50)[0], "192.0.2.11") == 202  # another client behind the same proxy
    assert MemberSecurityEvent.objects.get(kind="otp_sender_capped").ip == "192.0.2.10"


def test_one_device_asking_codes_from_many_addresses_is_capped(api, db):
    device = "fp-pumping-emulator-1"
    statuses = [
        api.post(
            REQUEST, {"phone": phone, "purpose": "enrol", "device_fingerprint": device}, remote_addr=f"192.0.2.{n}"
        ).status_code
        for n, phone in enumerate(numbers(6))
    ]
    assert statuses == [202] * 5 + [429]
    refused = api.responses[-1]
    assert error_code(refused) == "otp_sender_rate_limited" and int(refused["Retry-After"]) >= 1
    assert MemberSecurityEvent.objects.get(kind="otp_sender_capped").detail["scope"] == "device"
    # another device at the last address still gets a code
    body = {"phone": numbers(1, 60)[0], "purpose": "enrol", "device_fingerprint": "fp-someone-else"}
    assert api.post(REQUEST, body, remote_addr="192.0.2.5").status_code == 202


def test_wrong_codes_then_the_fourth_guess_is_refused(api, member, django_capture_on_commit_callbacks):
    requested = api.post(REQUEST, {"phone": PHONE, "purpose": "login"}, capture=django_capture_on_commit_callbacks)
    code = code_sent_to(PHONE_E164)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    body = {
        "challenge_id": requested.json()["challenge_id"],
        "phone": PHONE,
        "purpose": "login",
        "channel": "app",
        "device": DEVICE,
    }
    for _ in range(3):
        response = api.post(VERIFY, {**body, "code": wrong})
        assert response.status_code == 401 and error_code(response) == "otp_wrong_code"
    # the guesses were recorded (committed), though the request was refused
    assert MemberSecurityEvent.objects.filter(member=member, kind="otp_failed").count() == 3
    fourth = api.post(VERIFY, {**body, "code": code})
    assert fourth.status_code == 403 and error_code(fourth) == "otp_too_many_guesses"
    assert not MemberSession.objects.exists()


def test_a_code_works_once(api, member, verify_body):
    _, body = verify_body()
    assert api.post(VERIFY, body).status_code == 200
    again = api.post(VERIFY, body)
    assert again.status_code == 409 and error_code(again) == "otp_used"


def test_an_unknown_challenge_is_401_otp_invalid(api, member):
    api.post(REQUEST, {"phone": PHONE, "purpose": "login"})
    response = api.post(VERIFY, _verify_body())  # a fresh challenge id: no such challenge
    assert response.status_code == 401 and error_code(response) == "otp_invalid"


# --- refresh -------------------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_ends_the_session(api, member, sign_in):
    first = sign_in().json()
    rotated = api.post(REFRESH, {"refresh_token": first["refresh_token"], "device_fingerprint": FINGERPRINT})
    assert rotated.status_code == 200, rotated.content
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_id"] == first["session_id"] and second["new_device"] is False

    # reusing the first (already rotated) token: 401, the whole session ends
    reused = api.post(REFRESH, {"refresh_token": first["refresh_token"], "device_fingerprint": FINGERPRINT})
    assert reused.status_code == 401 and error_code(reused) == "refresh_token_reused"
    newest = api.post(REFRESH, {"refresh_token": second["refresh_token"], "device_fingerprint": FINGERPRINT})
    assert newest.status_code == 401
    assert api.post(LOGOUT, token=second["access_token"]).status_code == 401


def test_refresh_from_another_device_is_refused(api, member, sign_in):
    first = sign_in().json()
    response = api.post(REFRESH, {"refresh_token": first["refresh_token"], "device_fingerprint": "someone-else"})
    assert response.status_code == 401 and error_code(response) == "device_mismatch"


def test_an_unknown_refresh_token_is_401(api, db):
    response = api.post(REFRESH, {"refresh_token": "nope", "device_fingerprint": FINGERPRINT})
    assert response.status_code == 401 and error_code(response) == "token_invalid"


# --- device and address checks -------------------------------------------------------------------


def test_impossible_travel_is_403(api, member, sign_in, settings, verify_body):
    settings.GEOLOCATION_BACKEND = "members.geo.TestGeolocation"
    api.client.defaults["REMOTE_ADDR"] = "192.0.2.10"  # Kuala Lumpur

    def sign_in_from(address):
        _, body = verify_body(request={"remote_addr": address})
        return api.post(VERIFY, body, remote_addr=address)

    assert sign_in_from("192.0.2.10").status_code == 200  # Kuala Lumpur
    london = sign_in_from("203.0.113.10")  # minutes later
    assert london.status_code == 403 and error_code(london) == "impossible_travel"


def test_the_client_address_comes_from_the_trusted_proxy_logic(api, member, sign_in, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    api.client.defaults["HTTP_X_FORWARDED_FOR"] = "203.0.113.99, 192.0.2.44"  # forged, then the proxy's entry
    assert sign_in().status_code == 200
    login = MemberSecurityEvent.objects.get(member=member, kind="login")
    assert login.ip == "192.0.2.44"


def test_a_blocked_device_is_403(api, member, sign_in):
    from members.services.sessions import device_block

    sign_in()
    device_block(member=member, device_id=member.devices.get().pk)
    response = sign_in()
    assert response.status_code == 403 and error_code(response) == "device_blocked"


# --- malformed input -----------------------------------------------------------------------------


def _verify_body(**changes):
    body = {
        "challenge_id": str(uuid.uuid4()),
        "phone": PHONE,
        "code": "123456",
        "purpose": "login",
        "channel": "app",
        "device": dict(DEVICE),
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (REQUEST, {"purpose": "login"}, "phone"),
        (REQUEST, {"phone": PHONE}, "purpose"),
        (REQUEST, {"phone": 60125550101, "purpose": "login"}, "phone"),
        (REQUEST, {"phone": PHONE, "purpose": "step_up"}, "purpose"),
        (REQUEST, {"phone": PHONE, "purpose": ["login"]}, "purpose"),
        (REQUEST, {"phone": "+60" + "1" * 200, "purpose": "login"}, "phone"),
        (REQUEST, {"phone": PHONE, "purpose": "login", "extra": 1}, "extra"),
        (VERIFY, _verify_body(challenge_id=...), "challenge_id"),
        (VERIFY, _verify_body(challenge_id="not-a-uuid"), "challenge_id"),
        (VERIFY, _verify_body(challenge_id=12345), "challenge_id"),
        (VERIFY, _verify_body(code=123456), "code"),
        (VERIFY, _verify_body(code="12ab56"), "code"),
        (VERIFY, _verify_body(code="1" * 500), "code"),
        (VERIFY, _verify_body(channel="tv"), "channel"),
        (VERIFY, _verify_body(device=...), "device"),
        (VERIFY, _verify_body(device="phone"), "device"),
        (VERIFY, _verify_body(device={"label": "x"}), "device"),
        (VERIFY, _verify_body(device={"fingerprint": "x" * 1000}), "device"),
        (VERIFY, _verify_body(device={"fingerprint": "", "label": "x"}), "device"),
        (VERIFY, _verify_body(device={"fingerprint": "x", "label": "y" * 500}), "device"),
        (VERIFY, _verify_body(remember_me="yes", channel="web"), "remember_me"),
        (VERIFY, _verify_body(remember_me=True), "remember_me"),  # remember-me is for the web
        (VERIFY, _verify_body(biometric=True, channel="web"), "biometric"),  # biometric is for the app
        (VERIFY, _verify_body(consents={"essential": True}), "consents"),  # consents are for enrolment
        (VERIFY, _verify_body(purpose="enrol", consents={"essential": True, "sms_marketing": "yes"}), "consents"),
        (VERIFY, _verify_body(purpose="enrol", consents={"essential": True, "newsletter": True}), "consents"),
        (VERIFY, _verify_body(purpose="enrol", consents=[True]), "consents"),
        (REFRESH, {"device_fingerprint": FINGERPRINT}, "refresh_token"),
        (REFRESH, {"refresh_token": None, "device_fingerprint": FINGERPRINT}, "refresh_token"),
        (REFRESH, {"refresh_token": "x" * 5000, "device_fingerprint": FINGERPRINT}, "refresh_token"),
        (REFRESH, {"refresh_token": "abc", "device_fingerprint": 7}, "device_fingerprint"),
    ],
)
def test_malformed_bodies_are_400_with_per_field_errors(api, member, url, body, field):
    response = api.post(url, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["detail"]
    assert response["Cache-Control"] == "no-store"
    assert not MemberSession.objects.exists()


@pytest.mark.parametrize("phone", ["12345", "+60 12", "not a phone", "+999 1234 5678", ""])
@pytest.mark.parametrize("url", [REQUEST, VERIFY])
def test_a_malformed_phone_is_400_invalid_phone(api, db, url, phone):
    body = {"phone": phone, "purpose": "login"} if url == REQUEST else _verify_body(phone=phone)
    response = api.post(url, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] in ("invalid_phone", "validation_error")  # "" is a missing value
    assert "phone" in error["detail"]
    assert phone == "" or error["code"] == "invalid_phone"


@pytest.mark.parametrize("url", [REQUEST, VERIFY, REFRESH])
def test_bodies_that_are_not_json_objects_are_400_or_415(api, db, url):
    assert api.post(url, [1, 2]).status_code == 400
    assert error_code(api.post(url, "{not json", content_type="application/json")) == "malformed_json"
    assert api.post(url, "phone=1", content_type="application/x-www-form-urlencoded").status_code == 415


def test_a_card_number_as_device_label_is_refused(api, member, django_capture_on_commit_callbacks):
    requested = api.post(REQUEST, {"phone": PHONE, "purpose": "login"}, capture=django_capture_on_commit_callbacks)
    body = _verify_body(
        challenge_id=requested.json()["challenge_id"],
        code=code_sent_to(PHONE_E164),
        device={"fingerprint": FINGERPRINT, "label": "4111 1111 1111 1111"},
    )
    response = api.post(VERIFY, body)
    assert response.status_code == 422 and error_code(response) == "card_number_refused"


def test_logout_without_a_token_is_401(api, db):
    response = api.post(LOGOUT)
    assert response.status_code == 401 and error_code(response) == "authentication_required"
    assert response["Cache-Control"] == "no-store"


def test_a_token_in_the_query_string_is_not_accepted(api, member, sign_in):
    token = sign_in().json()["access_token"]
    response = api.post(f"{LOGOUT}?access_token={token}")
    assert response.status_code == 401
    api.urls.pop()  # this test put a token in a URL on purpose
    assert MemberSession.objects.get().ended_at is None


def test_get_is_405(db):
    client = APIClient()
    for url in (REQUEST, VERIFY, REFRESH, LOGOUT):
        response = client.get(url)
        assert response.status_code in (401, 405)
        assert response["Cache-Control"] == "no-store"


# --- nothing leaks -------------------------------------------------------------------------------


def test_the_routes_take_nothing_in_the_path():
    patterns = [p for p in auth_views.urlpatterns if isinstance(p, URLPattern)]
    assert {str(p.pattern) for p in patterns} == {"auth/otp/request", "auth/otp/verify", "auth/refresh", "auth/logout"}
    assert all(not p.pattern.converters for p in patterns)
    resolver = get_resolver()
    assert resolver.resolve(REQUEST).func.view_class is auth_views.OtpRequestApi


def test_every_response_of_a_whole_session_is_no_store_and_no_url_holds_a_secret(api, member, sign_in):
    # given a whole session: request, verify, refresh, a refused reuse, logout, a refused logout
    tokens = sign_in().json()
    rotated = api.post(REFRESH, {"refresh_token": tokens["refresh_token"], "device_fingerprint": FINGERPRINT}).json()
    api.post(REFRESH, {"refresh_token": tokens["refresh_token"], "device_fingerprint": FINGERPRINT})
    api.post(LOGOUT, token=rotated["access_token"])
    api.post(LOGOUT, token=rotated["access_token"])
    api.post(REQUEST, {"phone": "nonsense", "purpose": "login"})
    # then
    assert len(api.responses) == 7
    assert all(r["Cache-Control"] == "no-store" for r in api.responses)
    secrets = [tokens["access_token"], tokens["refresh_token"], rotated["refresh_token"], PHONE_E164, FINGERPRINT]
    secrets += [code_sent_to(PHONE_E164), PHONE_E164.lstrip("+")]
    for url in api.urls:
        assert url in (REQUEST, VERIFY, REFRESH, LOGOUT)
        assert not any(s in url for s in secrets)
    assert not any(r.has_header("Location") for r in api.responses)


def _assert_logs_hold_no_secret(caplog, api, *, extra):
    secrets = set(extra) | {m["text"] for m in LocmemSmsBackend.outbox}
    secrets |= {re.search(r"\b(\d{6})\b", m["text"]).group(1) for m in LocmemSmsBackend.outbox}
    for response in api.responses:
        body = response.json() if response.content else {}
        secrets |= {body.get("access_token"), body.get("refresh_token")} - {None}
    secrets |= {s.lstrip("+") for s in extra if s.startswith("+")}
    assert "otp challenge" in caplog.text, "the services' own log lines are captured"
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    leaked = [s for s in secrets if s in logged]
    assert leaked == []


# --- the schema ----------------------------------------------------------------------------------


def test_the_sign_in_endpoints_generate_a_valid_schema_without_warnings(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json", "--file", str(out))
    paths = json.loads(out.read_text())["paths"]
    # At least these (the email-link and password sign-in endpoints are checked in their own tests).
    assert {p for p in paths if p.startswith("/api/v1/auth/")} >= {REQUEST, VERIFY, REFRESH, LOGOUT}
    assert paths[LOGOUT]["post"]["security"] == [{"memberToken": []}]
    assert paths[REQUEST]["post"]["security"] == [{}]
    verify = paths[VERIFY]["post"]["responses"]
    assert set(verify) == {"200", "201", "400", "401", "403", "409", "413", "415", "422", "429"}
    assert "Retry-After" in verify["429"]["headers"] and "Cache-Control" in verify["200"]["headers"]
    assert "essential_consent_required" in verify["400"]["description"]
