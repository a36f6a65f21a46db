"""The till's shift and voucher endpoints over HTTP (``vouchers.api.till``): signed
requests, statuses and codes for each refusal, idempotent receipts, the published keys,
and no code, token or password in any answer."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from fraud.models import FraudAlert
from tests.conftest import PASSWORD, current_totp
from tests.loyalty.api.conftest import POS, TillClient
from vouchers.models import StaffShift, Voucher, VoucherRedemption, VoucherScan
from vouchers.services.codes import ALPHABET, code_generate
from vouchers.services.tokens import public_keys, qr_token_issue

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings")]


@pytest.fixture
def pos(till):
    return TillClient(Client(), till, till.plain_secret)


@pytest.fixture
def clocked_in(pos, cashier):
    """The till with the cashier clocked in: (client, shift token)."""
    response = pos.post("shifts", {"username": "cashier1", "password": PASSWORD, "otp": current_totp(cashier)})
    assert response.status_code == 201, response.content
    return pos, response.json()["token"]


def shift_headers(token):
    return {"X-Staff-Shift": token}


def by_code(voucher):
    return {"code": voucher.code, "loyalty_number": voucher.member.loyalty_number}


def error(response) -> str:
    return response.json()["error"]["code"]


def assert_no_secrets(response, *secrets):
    body = response.content.decode()
    for secret in secrets:
        assert secret not in body


# --- shifts ----------------------------------------------------------------------------------------


def test_clocking_in_answers_a_token_once(pos, cashier, till):
    response = pos.post("shifts", {"username": "cashier1", "password": PASSWORD, "otp": current_totp(cashier)})

    assert response.status_code == 201
    body = response.json()
    shift = StaffShift.objects.get()
    assert (body["shift_id"], body["staff_id"]) == (shift.pk, cashier.pk)
    assert shift.till == till and body["token"] != shift.token_hash
    assert response["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response


def test_a_refused_clock_in_says_so_without_echoing(pos, cashier):
    response = pos.post("shifts", {"username": "cashier1", "password": "Not-the-one-9!", "otp": current_totp(cashier)})
    assert (response.status_code, error(response)) == (403, "staff_credentials_invalid")
    assert_no_secrets(response, "Not-the-one-9!")


def test_repeated_failures_lock_the_clock_in_with_429(settings, pos, cashier):
    statuses = []
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = pos.post("shifts", {"username": "cashier1", "password": "Not-the-one-9!", "otp": "123456"})
        statuses.append(response.status_code)
    # The failure that reaches the limit locks at once; the answer stays JSON (not axes' page).
    assert statuses == [403] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert response["Content-Type"] == "application/json" and error(response) == "staff_locked_out"

    response = pos.post("shifts", {"username": "cashier1", "password": PASSWORD, "otp": current_totp(cashier)})

    assert (response.status_code, error(response)) == (429, "staff_locked_out")
    assert not StaffShift.objects.exists()


def test_a_role_without_a_till_is_refused(pos, make_staff, store_a):
    analyst = make_staff("analyst1", "fraud_analyst", stores=[store_a])
    response = pos.post("shifts", {"username": "analyst1", "password": PASSWORD, "otp": current_totp(analyst)})
    assert (response.status_code, error(response)) == (403, "staff_not_permitted")


def test_clocking_in_takes_exactly_the_three_fields(pos, cashier):
    response = pos.post("shifts", {"username": "cashier1", "password": PASSWORD, "otp": "1", "pin": "2"})
    assert (response.status_code, error(response)) == (400, "validation_error")
    assert pos.post("shifts", {"username": "cashier1"}).status_code == 400


def test_clocking_in_needs_a_signed_till(cashier):
    response = Client().post(
        f"{POS}/shifts",
        {"username": "cashier1", "password": PASSWORD, "otp": "123456"},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert not StaffShift.objects.exists()


def test_clocking_out_ends_the_token(clocked_in):
    pos, token = clocked_in

    response = pos.post("shifts/end", {}, headers=shift_headers(token))

    assert response.status_code == 200 and response.json()["ended_at"]
    again = pos.post("shifts/end", {}, headers=shift_headers(token))
    assert (again.status_code, error(again)) == (403, "shift_required")


def test_a_token_is_refused_at_another_till(clocked_in, till_for, voucher):
    _, token = clocked_in
    other_till = till_for()
    other = TillClient(Client(), other_till, other_till.plain_secret)
    response = other.post("vouchers/validate", by_code(voucher), headers=shift_headers(token))
    assert (response.status_code, error(response)) == (403, "shift_required")


# --- validate and redeem ---------------------------------------------------------------------------


def test_validate_answers_the_voucher_without_consuming_it(clocked_in, voucher):
    pos, token = clocked_in

    response = pos.post("vouchers/validate", by_code(voucher), headers=shift_headers(token))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["valid"] is True and body["voucher"]["voucher_id"] == str(voucher.id)
    assert body["voucher"]["reward"]["name"] == voucher.reward.name
    assert_no_secrets(response, voucher.code, voucher.member.loyalty_number)
    voucher.refresh_from_db()
    assert voucher.status == "active"


def test_redeem_answers_the_receipt_and_a_retry_replays_it(clocked_in, voucher, till):
    pos, token = clocked_in

    first = pos.post("vouchers/redeem", by_code(voucher), key="till-key-1", headers=shift_headers(token))
    again = pos.post("vouchers/redeem", by_code(voucher), key="till-key-1", headers=shift_headers(token))

    assert first.status_code == 201, first.content
    receipt = first.json()
    assert receipt["voucher"]["code"].endswith(voucher.code[-4:])
    assert receipt["member"]["loyalty_number"].endswith(voucher.member.loyalty_number[-4:])
    assert (receipt["till"], receipt["store"]) == (till.code, till.store.code)
    assert "balance" in receipt and receipt["override"] is False
    assert_no_secrets(first, voucher.code, voucher.member.loyalty_number)
    assert "Idempotency-Replayed" not in first
    assert again.status_code == 201 and again.json() == receipt and again["Idempotency-Replayed"] == "true"
    assert VoucherRedemption.objects.count() == 1


def test_redeem_needs_an_idempotency_key(clocked_in, voucher):
    pos, token = clocked_in
    response = pos.post("vouchers/redeem", by_code(voucher), key=None, headers=shift_headers(token))
    assert (response.status_code, error(response)) == (400, "idempotency_key_required")
    assert not VoucherScan.objects.exists()


def test_a_qr_token_redeems(clocked_in, voucher):
    pos, token = clocked_in
    qr = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id).token
    response = pos.post("vouchers/redeem", {"qr_token": qr}, headers=shift_headers(token))
    assert response.status_code == 201, response.content
    assert_no_secrets(response, qr)


def test_without_a_shift_nothing_is_redeemed(pos, voucher):
    response = pos.post("vouchers/redeem", by_code(voucher))
    assert (response.status_code, error(response)) == (403, "shift_required")
    assert VoucherScan.objects.get().result == "shift_required"
    voucher.refresh_from_db()
    assert voucher.status == "active"


def _tampered(voucher):
    return voucher.code[:-1] + next(s for s in ALPHABET if s != voucher.code[-1])


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ("tampered", 400, "code_check_failed"),
        ("malformed", 400, "code_malformed"),
        ("no_member", 400, "member_identification_required"),
        ("both", 400, "voucher_input_invalid"),
        ("unknown", 404, "voucher_not_found"),
        ("not_theirs", 404, "voucher_not_found"),
        ("expired", 410, "voucher_expired"),
        ("revoked", 410, "voucher_revoked"),
        ("reported", 410, "voucher_reported"),
        ("suspended", 403, "member_not_active"),
        ("above_limit", 403, "role_limit_exceeded"),
        ("forged_qr", 422, "qr_signature_invalid"),
        ("old_qr", 422, "qr_expired"),
        ("garbage_qr", 422, "qr_malformed"),
    ],
)
def test_each_refusal_has_its_status_and_code(clocked_in, make_voucher, member, store_a, setup, status, code):
    pos, token = clocked_in
    voucher = make_voucher(points=600 if setup == "above_limit" else 300)
    body = by_code(voucher)
    now = timezone.now()
    if setup == "tampered":
        body["code"] = _tampered(voucher)
    elif setup == "malformed":
        body["code"] = "not a code"
    elif setup == "no_member":
        del body["loyalty_number"]
    elif setup == "both":
        body["qr_token"] = "v1.x"
    elif setup == "unknown":
        body["code"] = code_generate()
    elif setup == "not_theirs":
        other = type(member).objects.create(home_store=store_a)
        body["loyalty_number"] = other.loyalty_number
    elif setup == "expired":
        Voucher.objects.filter(pk=voucher.pk).update(issued_at=now - timedelta(days=31), expires_at=now)
    elif setup == "revoked":
        Voucher.objects.filter(pk=voucher.pk).update(status="revoked", revoked_at=now)
    elif setup == "reported":
        Voucher.objects.filter(pk=voucher.pk).update(status="reported", reported_at=now)
    elif setup == "suspended":
        type(member).objects.filter(pk=member.pk).update(status="suspended")
    elif setup.endswith("_qr"):
        qr = qr_token_issue(
            voucher_id=voucher.id,
            member_id=member.member_id,
            now=now - timedelta(minutes=2) if setup == "old_qr" else now,
        ).token
        if setup == "forged_qr":
            qr = qr[:-4] + ("AAAA" if qr[-4:] != "AAAA" else "BBBB")
        if setup == "garbage_qr":
            qr = "v1.nothing"
        body = {"qr_token": qr}

    for action in ("validate", "redeem"):
        response = pos.post(f"vouchers/{action}", body, headers=shift_headers(token))
        assert (response.status_code, error(response)) == (status, code), (action, response.content)
        assert_no_secrets(response, voucher.code, body.get("code") or voucher.code, body.get("qr_token") or "\x00")
    assert list(VoucherScan.objects.order_by("id").values_list("action", "result")) == [
        ("validate", code),
        ("redeem", code),
    ]
    voucher.refresh_from_db()
    assert voucher.status != "redeemed"


def test_a_second_redemption_is_a_conflict(clocked_in, voucher):
    pos, token = clocked_in
    assert pos.post("vouchers/redeem", by_code(voucher), headers=shift_headers(token)).status_code == 201

    response = pos.post("vouchers/redeem", by_code(voucher), headers=shift_headers(token))

    assert (response.status_code, error(response)) == (409, "voucher_already_redeemed")


def test_an_override_in_the_body_lets_a_cashier_redeem_above_the_limit(clocked_in, make_voucher, manager):
    pos, token = clocked_in
    voucher = make_voucher(points=1500)
    override = {"username": "manager1", "password": PASSWORD, "otp": current_totp(manager)}

    response = pos.post("vouchers/redeem", {**by_code(voucher), "override": override}, headers=shift_headers(token))

    assert response.status_code == 201, response.content
    assert response.json()["override"] is True and response.json()["override_by_staff_id"] == manager.pk
    assert_no_secrets(response, PASSWORD)


def test_a_wrong_override_is_refused_and_logged(clocked_in, make_voucher, manager):
    pos, token = clocked_in
    voucher = make_voucher(points=1500)
    override = {"username": "manager1", "password": "Wrong-one-123!", "otp": current_totp(manager)}

    response = pos.post("vouchers/redeem", {**by_code(voucher), "override": override}, headers=shift_headers(token))

    assert (response.status_code, error(response)) == (403, "override_credentials_invalid")
    assert VoucherScan.objects.get().result == "override_credentials_invalid"
    voucher.refresh_from_db()
    assert voucher.status == "active"


def test_the_cashiers_own_credentials_are_no_override(clocked_in, make_voucher, cashier):
    pos, token = clocked_in
    voucher = make_voucher(points=600)
    # A minute later: a fresh code (the clock-in's code cannot be used twice).
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        override = {"username": "cashier1", "password": PASSWORD, "otp": current_totp(cashier)}
        response = pos.post("vouchers/redeem", {**by_code(voucher), "override": override}, headers=shift_headers(token))

    assert (response.status_code, error(response)) == (403, "override_same_person")
    voucher.refresh_from_db()
    assert voucher.status == "active"


# --- the public keys -------------------------------------------------------------------------------


def test_the_public_keys_are_published_to_signed_tills(pos):
    response = pos.get("vouchers/public-key")
    assert response.status_code == 200
    assert response.json() == {"keys": public_keys()}
    assert Client().get(f"{POS}/vouchers/public-key").status_code == 401


def test_other_paths_still_reach_the_catch_all(pos):
    response = pos.get("vouchers/nothing-here")
    assert (response.status_code, error(response)) == (404, "not_found")


def test_malformed_json_is_refused_not_a_500(clocked_in):
    pos, token = clocked_in
    response = pos.post("vouchers/redeem", b"{not json", headers=shift_headers(token))
    assert response.status_code == 400


def test_the_schema_documents_the_till_voucher_endpoints(client):
    schema = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/json").content)
    paths = schema["paths"]
    for path in ("shifts", "shifts/end", "vouchers/validate", "vouchers/redeem", "vouchers/public-key"):
        assert f"/api/v1/pos/{path}" in paths
    redeem = paths["/api/v1/pos/vouchers/redeem"]["post"]
    assert {"201", "400", "403", "404", "409", "410", "422"} <= set(redeem["responses"])


@pytest.mark.django_db(transaction=True)
def test_a_refusal_keeps_its_scan_and_alert_committed(clocked_in, voucher):
    """Outside any test transaction: the refused request's scan and alert are really committed."""
    pos, token = clocked_in
    assert pos.post("vouchers/redeem", by_code(voucher), headers=shift_headers(token)).status_code == 201

    response = pos.post("vouchers/redeem", by_code(voucher), headers=shift_headers(token))

    assert response.status_code == 409
    assert list(VoucherScan.objects.order_by("id").values_list("result", flat=True)) == [
        "ok",
        "voucher_already_redeemed",
    ]
    assert FraudAlert.objects.filter(kind="voucher_rescan", member=voucher.member).count() == 1
