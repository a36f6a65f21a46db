"""The password endpoints: POST /api/v1/auth/password/login, PUT and DELETE
/api/v1/me/password, over HTTP: statuses, stable codes, identical refusals, what must
never leak (the password in responses or logs), and the schema."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from members.models import Member, MemberSession
from members.services.membership import member_create
from members.services.otp import otp_step_up_valid
from members.services.passwords import member_password_set
from members.services.sessions import session_start

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/password/login"
ME_PASSWORD = "/api/v1/me/password"
START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 11:00 in Kuala Lumpur
PHONE = "+60 12-555 0101"
STRANGER = "+60 13-555 0202"
FP = "fp-7c1e2d9a-pixel-8"
DEVICE = {"fingerprint": FP, "label": "Pixel 8"}
KL, KL_TOO, PENANG = "192.0.2.10", "192.0.2.20", "192.0.2.200"
GOOD = "Rambutan#2026"
NEW = "Durian!4471"


@pytest.fixture(autouse=True)
def clock(settings):
    settings.GEOLOCATION_BACKEND = "members.geo.TestGeolocation"
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def member(store_a):
    return member_create(home_store=store_a, phone=PHONE, preferred_channel="sms")


@pytest.fixture
def with_password(member, phone_step_up):
    phone_step_up("password_set")
    member_password_set(member=member, new_password=GOOD)
    # Signed in once by SMS code from this device in Kuala Lumpur.
    session_start(member=member, channel="app", device_fingerprint=FP, ip=KL)
    member.refresh_from_db()
    return member


def signed_in(member, *, fingerprint="fp-web", **kwargs) -> APIClient:
    tokens = session_start(member=member, channel="web", device_fingerprint=fingerprint, ip=KL, **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    client.tokens = tokens
    return client


def login(phone=PHONE, password=GOOD, ip=KL_TOO, **body):
    payload = {"phone": phone, "password": password, "channel": "app", "device": DEVICE, **body}
    return APIClient().post(LOGIN, payload, format="json", REMOTE_ADDR=ip)


def error(response) -> str:
    return response.json()["error"]["code"]


# --- sign in -------------------------------------------------------------------------------------


def test_the_right_password_from_a_known_device_and_place_signs_in_with_the_usual_tokens(with_password):
    response = login()
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access_token", "access_expires_at", "refresh_token", "session_id", "new_device"}
    assert body["new_device"] is False and response["Cache-Control"] == "no-store"
    me = APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert me.status_code == 200


def test_unknown_number_no_password_and_wrong_password_get_the_same_answer(with_password, store_a):
    member_create(home_store=store_a, phone="+60 19-555 0303")  # no password
    answers = [login(phone=STRANGER), login(phone="+60 19-555 0303"), login(password="Wrong!1234")]
    assert {r.status_code for r in answers} == {401}
    assert answers[0].content == answers[1].content == answers[2].content
    assert error(answers[0]) == "credentials_invalid"
    assert all(dict(r.headers).keys() == dict(answers[0].headers).keys() for r in answers)


@pytest.mark.parametrize(
    ("change", "body"),
    [
        ({"ip": PENANG}, {}),
        ({}, {"device": {"fingerprint": "fp-new-laptop", "label": "Laptop"}}),
    ],
)
def test_a_new_place_or_device_answers_otp_required(with_password, change, body):
    response = login(**change, **body)
    assert response.status_code == 401 and error(response) == "otp_required"


def test_tier_3_answers_otp_required(with_password):
    Member.objects.filter(pk=with_password.pk).update(tier=3)
    response = login()
    assert response.status_code == 401 and error(response) == "otp_required"


def test_the_tenth_failure_locks_with_429_and_retry_after(with_password):
    for _ in range(9):
        assert error(login(password="Wrong!1234")) == "credentials_invalid"
    response = login(password="Wrong!1234")
    assert response.status_code == 429 and error(response) == "password_locked"
    assert response["Retry-After"] == str(13 * 3600)
    assert error(login()) == "password_locked"


def test_bad_input_is_400_with_stable_codes(with_password):
    assert error(login(phone="12")) == "invalid_phone"
    response = login(extra="x")
    assert response.status_code == 400 and "extra" in response.json()["error"]["detail"]
    response = login(password=12345678)
    assert response.status_code == 400 and "password" in response.json()["error"]["detail"]
    response = login(remember_me=True)  # app channel
    assert response.status_code == 400 and "remember_me" in response.json()["error"]["detail"]
    response = APIClient().post(LOGIN, "phone=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


# --- set, change, remove -------------------------------------------------------------------------


def test_a_first_password_needs_a_step_up_then_is_set(member, phone_step_up):
    client = signed_in(member)
    response = client.put(ME_PASSWORD, {"new_password": GOOD}, format="json")
    assert response.status_code == 403 and error(response) == "step_up_required"
    assert response.json()["error"]["detail"] == {"actions": ["password_set"]}
    phone_step_up("password_set")
    response = client.put(ME_PASSWORD, {"new_password": GOOD}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "password_set" and response["Cache-Control"] == "no-store"
    assert not otp_step_up_valid(member=member, action="password_set")


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Ab1!xyz", "password_too_short"),
        ("Abcdefgh12", "password_needs_symbol"),
        ("Abcdefgh!#", "password_needs_digit"),
        ("12345678!#", "password_needs_letter"),
        ("p@ssw0rd", "password_too_common"),
        ("Siti!5550101", "password_contains_phone"),
        (GOOD, "password_reused"),
        ("Ab1!" + "kq7#" * 31 + "z", "password_too_long"),
    ],
)
def test_each_rule_answers_400_with_its_code(with_password, password, code):
    client = signed_in(with_password)
    response = client.put(ME_PASSWORD, {"new_password": password, "current_password": GOOD}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["detail"]["new_password"]["code"] == code
    assert password not in response.content.decode()


def test_a_change_with_the_current_password_ends_the_other_sessions(with_password):
    client = signed_in(with_password)
    other = signed_in(with_password, fingerprint="fp-other")
    response = client.put(ME_PASSWORD, {"new_password": NEW, "current_password": GOOD}, format="json")
    assert response.status_code == 200 and response.json()["sessions_ended"] == 2  # the app one and "other"
    assert other.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 200
    assert error(login()) == "credentials_invalid"
    assert login(password=NEW).status_code == 200


def test_a_wrong_current_password_is_403_and_a_reset_step_up_does_without_it(with_password, phone_step_up):
    client = signed_in(with_password)
    response = client.put(ME_PASSWORD, {"new_password": NEW, "current_password": "Wrong!1234"}, format="json")
    assert response.status_code == 403 and error(response) == "current_password_wrong"
    response = client.put(ME_PASSWORD, {"new_password": NEW}, format="json")
    assert response.status_code == 403 and error(response) == "current_password_required"
    phone_step_up("password_reset")
    response = client.put(ME_PASSWORD, {"new_password": NEW}, format="json")
    assert response.status_code == 200 and response.json()["kind"] == "password_changed"


def test_a_web_remember_me_session_may_not_change_or_remove_it(with_password):
    client = signed_in(with_password, remember_me=True)
    response = client.put(ME_PASSWORD, {"new_password": NEW, "current_password": GOOD}, format="json")
    assert response.status_code == 403 and error(response) == "change_details_not_allowed"
    response = client.delete(ME_PASSWORD)
    assert response.status_code == 403 and error(response) == "change_details_not_allowed"


def test_removing_needs_a_step_up_and_then_there_is_none(with_password, phone_step_up):
    client = signed_in(with_password)
    response = client.delete(ME_PASSWORD)
    assert response.status_code == 403 and error(response) == "step_up_required"
    phone_step_up("password_remove")
    response = client.delete(ME_PASSWORD)
    assert response.status_code == 200 and response.json()["kind"] == "password_removed"
    response = client.delete(ME_PASSWORD)
    assert response.status_code == 409 and error(response) == "password_not_set"
    assert error(login()) == "credentials_invalid"


def test_the_password_endpoints_need_a_member_token(member):
    assert APIClient().put(ME_PASSWORD, {"new_password": NEW}, format="json").status_code == 401
    assert APIClient().delete(ME_PASSWORD).status_code == 401


def test_no_password_appears_in_a_response_or_a_log(with_password, caplog):
    caplog.set_level(logging.DEBUG)
    responses = [login(password="Wrong!9876"), login()]
    client = signed_in(with_password)
    responses.append(client.put(ME_PASSWORD, {"new_password": NEW, "current_password": GOOD}, format="json"))
    responses.append(client.put(ME_PASSWORD, {"new_password": "Ab1!xyz", "current_password": NEW}, format="json"))
    responses.append(client.put(ME_PASSWORD, {"new_password": GOOD, "current_password": "Wrong!5555"}, format="json"))
    assert [r.status_code for r in responses] == [401, 200, 200, 400, 403]
    secrets = [GOOD, NEW, "Wrong!9876", "Ab1!xyz", "Wrong!5555"]
    shown = "\n".join(r.content.decode() for r in responses)
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "sign-in credential refused" in caplog.text
    assert [s for s in secrets if s in shown or s in logged] == []
    assert MemberSession.objects.filter(member=with_password).count() == 3


# --- the schema ----------------------------------------------------------------------------------


def test_the_password_endpoints_are_in_a_valid_schema(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json", "--file", str(out))
    paths = json.loads(out.read_text())["paths"]
    login_op = paths[LOGIN]["post"]
    assert login_op["security"] == [{}]
    assert set(login_op["responses"]) == {"200", "400", "401", "403", "413", "415", "422", "429"}
    assert "Retry-After" in login_op["responses"]["429"]["headers"]
    put = paths[ME_PASSWORD]["put"]
    assert put["security"] == [{"memberToken": []}]
    assert set(put["responses"]) == {"200", "400", "401", "403", "413", "415", "429"}
    assert set(paths[ME_PASSWORD]["delete"]["responses"]) == {"200", "401", "403", "409"}


def test_time_moves_for_the_lock_only_within_the_day(with_password, clock):
    for _ in range(10):
        login(password="Wrong!1234")
    clock.move_to(START + timedelta(hours=13) - timedelta(seconds=1))  # 23:59:59 in Kuala Lumpur
    assert error(login()) == "password_locked"
    clock.move_to(START + timedelta(hours=13, seconds=1))  # 00:00:01
    assert login().status_code == 200
