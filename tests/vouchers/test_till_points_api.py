"""The till's points redemption endpoints over HTTP (``loyalty.api.views`` and
``vouchers.api.redemptions``): the hold with its authorisation offer, each control's
status and code, the SMS code entered at the till, the member's in-app confirmation,
capture refused until authorised, the receipt, and no code, password or full loyalty
number in any answer.
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from loyalty.ledger.models import LedgerOperation
from members.services.sessions import session_start
from tests.conftest import PASSWORD, current_totp
from tests.loyalty.api.conftest import TillClient
from tests.vouchers.till_api_helpers import app_confirm, error, hold, shift_client
from tests.vouchers.till_helpers import sms_code
from vouchers.models import TillRedemption

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings", "sms_outbox")]


# --- hold ------------------------------------------------------------------------------------------


def test_a_hold_answers_how_the_member_authorises_it(pos, shopper, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = hold(pos, shopper, 300)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "hold" and body["balance"] == {"available": 9_700, "held": 300, "pending": 0}
    offer = body["authorisation"]
    assert offer["required"] is True and offer["methods"] == ["sms_code", "app"] and offer["sms"] == "sent"
    assert offer["challenge_id"] and offer["expires_at"]
    assert sms_code() not in response.content.decode()
    assert response["Cache-Control"] == "no-store"


def test_a_hold_without_a_shift_is_403_no_shift(till, shopper):
    plain = TillClient(Client(), till, till.plain_secret)
    response = hold(plain, shopper)
    assert (response.status_code, error(response)) == (403, "no_shift")
    assert not LedgerOperation.objects.filter(kind="hold").exists()


def test_a_cashier_at_500_is_told_an_override_is_required(pos, shopper):
    response = hold(pos, shopper, 500)
    assert (response.status_code, error(response)) == (403, "limit_exceeded")
    assert response.json()["error"]["detail"] == {"points": 500, "limit": 500, "override_required": True}
    assert hold(pos, shopper, 499, key="k-499").status_code == 201


def test_an_override_in_the_body_approves_it_and_never_echoes_the_credentials(pos, manager, shopper):
    otp = current_totp(manager)
    body = {
        "loyalty_number": shopper.loyalty_number,
        "points": 800,
        "override": {"username": manager.username, "password": PASSWORD, "otp": otp},
    }
    response = pos.post("redemptions", body)

    assert response.status_code == 201, response.content
    assert PASSWORD not in response.content.decode()
    assert TillRedemption.objects.get().override_by == manager


def test_a_wrong_override_is_403_override_invalid_with_its_reason(pos, manager, shopper):
    body = {
        "loyalty_number": shopper.loyalty_number,
        "points": 800,
        "override": {"username": manager.username, "password": "Not-the-password-1!", "otp": "123456"},
    }
    response = pos.post("redemptions", body)
    assert (response.status_code, error(response)) == (403, "override_invalid")
    assert response.json()["error"]["detail"] == {"reason": "override_credentials_invalid"}
    assert "Not-the-password-1!" not in response.content.decode()


def test_self_redemption_during_the_shift_is_403(pos, cashier, shopper):
    cashier.member_account = shopper
    cashier.save(update_fields=["member_account"])
    response = hold(pos, shopper)
    assert (response.status_code, error(response)) == (403, "self_redemption_refused")


def test_an_override_with_unknown_fields_is_400(pos, manager, shopper):
    body = {
        "loyalty_number": shopper.loyalty_number,
        "points": 800,
        "override": {"username": manager.username, "password": PASSWORD, "otp": "123456", "pin": "1"},
    }
    response = pos.post("redemptions", body)
    assert (response.status_code, error(response)) == (400, "validation_error")


# --- authorisation and capture ---------------------------------------------------------------------


def test_capture_before_authorisation_is_409(pos, shopper):
    hold_id = hold(pos, shopper).json()["hold_id"]
    response = pos.post(f"redemptions/{hold_id}/capture", {})
    assert (response.status_code, error(response)) == (409, "member_authorisation_required")
    assert not LedgerOperation.objects.filter(kind="capture").exists()


def test_the_sms_code_entered_at_the_till_authorises_then_capture_answers_the_receipt(
    pos, shopper, till, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        body = hold(pos, shopper, 300).json()
    hold_id, challenge_id = body["hold_id"], body["authorisation"]["challenge_id"]

    wrong = pos.post(f"redemptions/{hold_id}/authorise", {"challenge_id": challenge_id, "code": "000000"})
    if sms_code() != "000000":
        assert (wrong.status_code, error(wrong)) == (422, "otp_wrong_code")
    code = sms_code()
    response = pos.post(f"redemptions/{hold_id}/authorise", {"challenge_id": challenge_id, "code": code})

    assert response.status_code == 200, response.content
    assert response.json()["authorised"] is True and response.json()["authorised_via"] == "sms_code"
    assert code not in response.content.decode()
    again = pos.post(f"redemptions/{hold_id}/authorise", {"challenge_id": challenge_id, "code": code})
    assert again.status_code == 200  # answered as it is

    captured = pos.post(f"redemptions/{hold_id}/capture", {}, key="cap-1")
    assert captured.status_code == 201, captured.content
    receipt = captured.json()["receipt"]
    assert (receipt["points_redeemed"], receipt["balance_remaining"]) == (300, 9_700)
    assert (receipt["store"], receipt["till"], receipt["authorised_via"]) == (till.store.code, till.code, "sms_code")
    assert shopper.loyalty_number not in captured.content.decode()
    replay = pos.post(f"redemptions/{hold_id}/capture", {}, key="cap-1")
    assert (replay.status_code, replay.content) == (201, captured.content)
    assert replay["Idempotency-Replayed"] == "true"


def test_the_authorise_endpoint_takes_digits_only(pos, shopper):
    hold_id = hold(pos, shopper).json()["hold_id"]
    challenge = "00000000-0000-4000-8000-000000000000"
    response = pos.post(f"redemptions/{hold_id}/authorise", {"challenge_id": challenge, "code": "12a456"})
    assert (response.status_code, error(response)) == (400, "validation_error")


def test_an_unknown_hold_cannot_be_authorised(pos, db):
    hold_id = "00000000-0000-4000-8000-000000000000"
    body = {"challenge_id": hold_id, "code": "123456"}
    response = pos.post(f"redemptions/{hold_id}/authorise", body)
    assert (response.status_code, error(response)) == (404, "hold_not_found")


def test_the_member_confirms_in_the_app_over_the_api(pos, shopper):
    hold_id = hold(pos, shopper).json()["hold_id"]
    tokens = session_start(member=shopper, channel="app", device_fingerprint="fp-app")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")

    pending = api.get("/api/v1/me/redemptions/pending")
    assert pending.status_code == 200 and pending["Cache-Control"] == "no-store"
    [item] = pending.json()["results"]
    assert (item["hold_id"], item["points"], item["authorised"]) == (hold_id, 300, False)

    response = api.post(f"/api/v1/me/redemptions/{hold_id}/confirm", {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["authorised_via"] == "app"
    assert pos.post(f"redemptions/{hold_id}/capture", {}).status_code == 201


def test_another_members_hold_is_404_in_the_app(pos, shopper, store_a):
    from members.services.membership import member_create

    hold_id = hold(pos, shopper).json()["hold_id"]
    other = member_create(home_store=store_a, name="Other", phone="+60135550288")
    tokens = session_start(member=other, channel="app", device_fingerprint="fp-other")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    response = api.post(f"/api/v1/me/redemptions/{hold_id}/confirm", {}, format="json")
    assert (response.status_code, error(response)) == (404, "not_found")
    assert APIClient().post(f"/api/v1/me/redemptions/{hold_id}/confirm", {}, format="json").status_code == 401


def test_above_5000_the_app_confirmation_answers_step_up_required(manager, make_staff, till, shopper):
    admin = make_staff("admin1", "program_admin")
    pos = shift_client(till, manager)
    body = {
        "loyalty_number": shopper.loyalty_number,
        "points": 5001,
        "override": {"username": admin.username, "password": PASSWORD, "otp": current_totp(admin)},
    }
    hold_id = pos.post("redemptions", body).json()["hold_id"]
    tokens = session_start(member=shopper, channel="app", device_fingerprint="fp-app")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    response = api.post(f"/api/v1/me/redemptions/{hold_id}/confirm", {}, format="json")
    assert (response.status_code, error(response)) == (403, "step_up_required")
    assert response.json()["error"]["detail"] == {"actions": ["redeem"]}


def test_capture_at_another_till_of_the_store_needs_its_own_shift(pos, shopper, till_for, make_staff, store_a):
    hold_id = hold(pos, shopper).json()["hold_id"]
    app_confirm(shopper, hold_id)
    lane_2 = till_for()
    no_shift = TillClient(Client(), lane_2, lane_2.plain_secret).post(f"redemptions/{hold_id}/capture", {})
    assert (no_shift.status_code, error(no_shift)) == (403, "no_shift")
    other = shift_client(lane_2, make_staff("cashier2", "cashier", stores=[store_a]))
    assert other.post(f"redemptions/{hold_id}/capture", {}).status_code == 201
    assert TillRedemption.objects.get().capture_shift.staff.username == "cashier2"


def test_void_marks_the_redemption(pos, shopper):
    hold_id = hold(pos, shopper).json()["hold_id"]
    response = pos.post(f"redemptions/{hold_id}/void", {})
    assert response.status_code == 201 and response.json()["released"] == 300
    assert TillRedemption.objects.get().voided_at is not None
