"""Step-up codes through the API: /api/v1/me/step-up and /me/step-up/verify."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from members.models import OtpChallenge
from members.services.membership import member_create, member_pii_shred
from members.services.otp import otp_step_up_consume, otp_step_up_valid
from tests.member_client import member_client

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
PHONE = "+60 12-555 0303"
OTHER_PHONE = "+60 13-555 0404"


@pytest.fixture
def member(db, store_a):
    return member_create(home_store=store_a, phone=PHONE)


api_for = member_client


@pytest.fixture
def request_step_up(sms_outbox, django_capture_on_commit_callbacks):
    """Ask for a step-up code (running the after-commit SMS); (challenge id, code, recipient)."""

    def request(api, action="change_email"):
        before = len(sms_outbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/v1/me/step-up", {"action": action}, format="json")
        assert response.status_code == 202, response.json()
        assert response["Cache-Control"] == "no-store"
        (sms,) = sms_outbox[before:]
        return response.json()["challenge_id"], re.search(r"\b(\d{6})\b", sms["text"]).group(1), sms["to"]

    return request


def test_a_step_up_code_goes_to_the_number_on_file_and_covers_its_action_once(clock, member, request_step_up):
    api = api_for(member)
    challenge_id, code, to = request_step_up(api)
    assert to == "+60125550303"

    response = api.post(
        "/api/v1/me/step-up/verify",
        {"challenge_id": challenge_id, "code": code, "action": "change_email"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"action": "change_email", "valid_until": "2026-05-04T09:05:00Z"}  # UTC, with Z
    assert otp_step_up_valid(member=member, action="change_email")
    assert not otp_step_up_valid(member=member, action="redeem")
    assert otp_step_up_consume(member=member, action="change_email")
    assert not otp_step_up_consume(member=member, action="change_email")


def test_a_code_verified_for_another_action_is_refused(clock, member, request_step_up):
    api = api_for(member)
    challenge_id, code, _ = request_step_up(api, action="change_email")

    response = api.post(
        "/api/v1/me/step-up/verify", {"challenge_id": challenge_id, "code": code, "action": "redeem"}, format="json"
    )

    assert response.status_code == 401 and response.json()["error"]["code"] == "otp_invalid"
    assert not otp_step_up_valid(member=member, action="redeem")


def test_another_members_challenge_cannot_be_verified(clock, member, store_a, request_step_up):
    other = member_create(home_store=store_a, phone=OTHER_PHONE)
    challenge_id, code, _ = request_step_up(api_for(other))

    response = api_for(member).post(
        "/api/v1/me/step-up/verify",
        {"challenge_id": challenge_id, "code": code, "action": "change_email"},
        format="json",
    )

    assert response.status_code == 401 and response.json()["error"]["code"] == "otp_invalid"
    assert OtpChallenge.objects.get(pk=challenge_id).verified_at is None


def test_the_sixth_step_up_code_in_an_hour_is_refused_with_retry_after(
    clock, member, request_step_up, django_capture_on_commit_callbacks
):
    api = api_for(member)
    for _ in range(5):
        request_step_up(api)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/me/step-up", {"action": "change_email"}, format="json")

    assert response.status_code == 429 and response.json()["error"]["code"] == "otp_rate_limited"
    assert int(response["Retry-After"]) == 3600


def test_a_wrong_code_counts_and_the_fourth_guess_is_refused(clock, member, request_step_up):
    api = api_for(member)
    challenge_id, code, _ = request_step_up(api)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    codes = []
    for guess in (wrong, wrong, wrong, code):
        body = {"challenge_id": challenge_id, "code": guess, "action": "change_email"}
        codes.append(api.post("/api/v1/me/step-up/verify", body, format="json").json()["error"]["code"])

    assert codes == ["otp_wrong_code", "otp_wrong_code", "otp_wrong_code", "otp_too_many_guesses"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"action": "delete_everything"}, "action", "invalid_choice"),
        ({}, "action", "required"),
        ({"action": "redeem", "extra": 1}, "extra", "unknown_field"),
    ],
)
def test_bad_input_is_refused_per_field(member, body, field, code):
    response = api_for(member).post("/api/v1/me/step-up", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["detail"][field]["code"] == code


def test_a_member_whose_data_was_erased_gets_a_clear_refusal(member, sms_outbox):
    api = api_for(member)
    member_pii_shred(member=member)
    response = api.post("/api/v1/me/step-up", {"action": "redeem"}, format="json")
    assert response.status_code in (401, 403, 409)
    assert sms_outbox == []


def test_both_endpoints_need_a_member_token(db):
    for url in ("/api/v1/me/step-up", "/api/v1/me/step-up/verify"):
        assert APIClient().post(url, {}, format="json").status_code == 401


def test_expired_step_up_is_no_longer_valid_after_five_minutes(clock, member, request_step_up):
    api = api_for(member)
    challenge_id, code, _ = request_step_up(api, action="redeem")
    api.post(
        "/api/v1/me/step-up/verify", {"challenge_id": challenge_id, "code": code, "action": "redeem"}, format="json"
    )
    clock.move_to(START + timedelta(minutes=4, seconds=59))
    assert otp_step_up_valid(member=member, action="redeem")
    clock.move_to(START + timedelta(minutes=5, seconds=1))
    assert not otp_step_up_valid(member=member, action="redeem")
