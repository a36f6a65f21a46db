"""The till endpoints: happy paths, the ledger's refusals, idempotency, error shapes."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.api.auth import TillRateThrottle
from loyalty.kernel.models import Store
from loyalty.ledger.api import redemptions
from loyalty.ledger.models import IdempotencyKey, LedgerOperation
from members.models import Member
from tests.db import rewriting_history
from tests.loyalty.api.conftest import POS, assert_error, ledger_counts, make_till, unknown_loyalty_number
from tests.loyalty.conftest import assert_ledger_verified, available
from tests.vouchers.till_api_helpers import app_confirm, shift_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def pos(till, make_staff, store_a):
    """The till with a store manager on shift (redemptions need one; their limit is 2,000)."""
    return shift_client(till, make_staff("till-manager", "store_manager", stores=[store_a]))


def purchase(member, receipt="R1", amount=12_345, **extra) -> dict:
    return {"loyalty_number": member.loyalty_number, "receipt_number": receipt, "amount_minor": amount, **extra}


def hold(pos, member, points=200, **kwargs):
    """A hold the member has authorised (in the app), ready to capture."""
    response = pos.post("redemptions", {"loyalty_number": member.loyalty_number, "points": points}, **kwargs)
    assert response.status_code == 201, response.json()
    hold_id = response.json()["hold_id"]
    app_confirm(member, hold_id)
    return hold_id


# --- purchases ------------------------------------------------------------------------------


def test_a_purchase_earns_points_with_the_receipt_of_this_till(pos, member, till):
    response = pos.post("purchases", purchase(member, amount=12_345))
    assert response.status_code == 201
    body = response.json()
    assert body["points"] == 123 and body["kind"] == "earn"
    assert body["receipt_ref"] == f"{till.store.code}/{till.code}/R1"
    assert body["balance"] == {"available": 123, "held": 0, "pending": 0}
    assert "Idempotency-Replayed" not in response and response["Cache-Control"] == "no-store"
    op = LedgerOperation.objects.get()
    assert (op.actor_till, op.store, op.member) == (till, till.store, member)
    assert_ledger_verified()


def test_a_purchase_with_occurred_at_dates_its_points(pos, member):
    occurred = (timezone.now() - timedelta(days=3)).replace(microsecond=0)
    response = pos.post("purchases", purchase(member, occurred_at=occurred.isoformat()))
    assert response.status_code == 201
    expected = timezone.localdate(occurred) + timedelta(days=365)
    assert response.json()["expires_on"] == str(expected)


@pytest.mark.parametrize(
    ("occurred_at", "message"),
    [
        ("2026-01-01T10:00:00", "UTC offset"),
        ("next tuesday", "ISO 8601"),
        ((timezone.now() + timedelta(hours=1)).isoformat(), "future"),
        ((timezone.now() - timedelta(days=31)).isoformat(), "too far"),
        ("0001-01-01T00:00:00+14:00", "ISO 8601"),
    ],
)
def test_a_bad_occurred_at_is_400(pos, member, occurred_at, message):
    error = assert_error(pos.post("purchases", purchase(member, occurred_at=occurred_at)), 400, "validation_error")
    assert message in error["detail"]["occurred_at"][0]
    assert ledger_counts() == (0, 0, 0)


def test_a_purchase_below_one_point_answers_200_and_writes_nothing(pos, member):
    response = pos.post("purchases", purchase(member, amount=99))
    assert response.status_code == 200
    assert response.json()["points"] == 0 and response.json()["balance"] == {"available": 0, "held": 0, "pending": 0}
    assert ledger_counts() == (0, 0, 0)


def test_an_unknown_member_is_404(pos, db):
    body = {"loyalty_number": unknown_loyalty_number(), "receipt_number": "R1", "amount_minor": 1000}
    assert_error(pos.post("purchases", body), 404, "member_not_found")
    assert ledger_counts() == (0, 0, 0) and not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(
    "number",
    [
        "9912345678901234",
        "991234567890123",
        "99123456789012345",
        "4111111111111112",
        "",
        "99１２３４５６７８９０１２３４",
    ],
)
def test_a_malformed_loyalty_number_is_400_before_any_lookup(pos, django_assert_max_num_queries, number, db):
    body = {"loyalty_number": number, "receipt_number": "R1", "amount_minor": 1000}
    with django_assert_max_num_queries(2):  # the till's look-up only (with its store)
        error = assert_error(pos.post("purchases", body), 400, "invalid_loyalty_number")
    assert "loyalty_number" in error["detail"]


def test_a_malformed_loyalty_number_wins_over_other_field_errors(pos, db):
    body = {"loyalty_number": "12", "receipt_number": "", "amount_minor": -1}
    error = assert_error(pos.post("purchases", body), 400, "invalid_loyalty_number")
    assert set(error["detail"]) == {"loyalty_number", "receipt_number", "amount_minor"}


def test_an_inactive_member_is_refused(pos, member):
    Member.objects.filter(pk=member.pk).update(status=Member.Status.SUSPENDED)
    assert_error(pos.post("purchases", purchase(member)), 403, "member_not_active")


# --- idempotency --------------------------------------------------------------------------


def test_the_same_key_replays_the_identical_response_and_writes_once(pos, member):
    first = pos.post("purchases", purchase(member), key="abc-1")
    again = pos.post("purchases", purchase(member), key="abc-1")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again["Idempotency-Replayed"] == "true" and "Idempotency-Replayed" not in first
    assert LedgerOperation.objects.count() == 1 and available(member) == 123


def test_the_same_key_with_another_body_is_422_and_writes_nothing(pos, member):
    pos.post("purchases", purchase(member), key="abc-1")
    before = ledger_counts()
    response = pos.post("purchases", purchase(member, receipt="R2"), key="abc-1")
    assert_error(response, 422, "idempotency_key_reused")
    assert ledger_counts() == before


def test_a_new_key_for_the_same_receipt_is_409(pos, member):
    pos.post("purchases", purchase(member), key="abc-1")
    response = pos.post("purchases", purchase(member), key="abc-2")
    assert_error(response, 409, "receipt_already_used")
    assert LedgerOperation.objects.count() == 1 and available(member) == 123


def test_a_key_used_on_another_endpoint_is_422(pos, rich_member):
    pos.post("purchases", purchase(rich_member, receipt="R7"), key="shared")
    before = ledger_counts()
    response = pos.post("redemptions", {"loyalty_number": rich_member.loyalty_number, "points": 100}, key="shared")
    assert_error(response, 422, "idempotency_key_reused")
    assert ledger_counts() == before


def test_a_refusal_is_replayed_too(pos, member):
    pos.post("purchases", purchase(member), key="abc-1")
    first = pos.post("purchases", purchase(member), key="abc-2")
    again = pos.post("purchases", purchase(member), key="abc-2")
    assert (again.status_code, again.content) == (first.status_code, first.content) == (409, first.content)
    assert again["Idempotency-Replayed"] == "true"


def test_keys_are_scoped_per_till(pos, pos_for, member, store_a):
    other = pos_for(make_till(store_a, "T2"))
    assert pos.post("purchases", purchase(member, receipt="R1"), key="same").status_code == 201
    assert other.post("purchases", purchase(member, receipt="R1"), key="same").status_code == 201
    assert LedgerOperation.objects.count() == 2  # two tills' receipt R1 are two receipts


@pytest.mark.parametrize("key", [None, "", "x" * 129, "caf\u00e9", "tab\there", "line\x7f"])
def test_a_missing_or_malformed_idempotency_key_is_400(pos, member, key):
    response = pos.post("purchases", purchase(member), key=key)
    assert_error(response, 400, "idempotency_key_required")
    assert ledger_counts() == (0, 0, 0)


def test_an_idempotency_key_of_128_printable_characters_is_accepted(pos, member):
    assert pos.post("purchases", purchase(member), key="~ !" + "k" * 125).status_code == 201


# --- returns ------------------------------------------------------------------------------


def test_a_return_by_receipt_number_takes_points_back(pos, member):
    pos.post("purchases", purchase(member, amount=50_000))
    response = pos.post("returns", {"loyalty_number": member.loyalty_number, "receipt_number": "R1", "points": 200})
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["reversed"], body["shortfall"]) == ("reverse_earn", 200, 0)
    assert body["balance"]["available"] == 300
    assert_ledger_verified()


def test_a_return_by_amount_converts_like_a_purchase(pos, member):
    pos.post("purchases", purchase(member, amount=50_000))
    response = pos.post(
        "returns", {"loyalty_number": member.loyalty_number, "receipt_number": "R1", "amount_minor": 10_050}
    )
    assert response.status_code == 201 and response.json()["reversed"] == 100


def test_a_return_at_another_store_names_the_original_receipt(pos, pos_for, member, make_store):
    pos.post("purchases", purchase(member, amount=50_000))
    elsewhere = pos_for(make_till(make_store("PEN"), "T7"))
    ref = f"{pos.till.store.code}/{pos.till.code}/R1"
    body = {"loyalty_number": member.loyalty_number, "original_receipt_ref": ref, "points": 500}
    response = elsewhere.post("returns", body)
    assert response.status_code == 201 and response.json()["balance"]["available"] == 0
    assert LedgerOperation.objects.get(kind="reverse_earn").store.code == "PEN"


def test_returns_never_exceed_the_purchase(pos, member):
    pos.post("purchases", purchase(member, amount=50_000))
    body = {"loyalty_number": member.loyalty_number, "receipt_number": "R1"}
    assert pos.post("returns", {**body, "points": 300}).status_code == 201
    assert_error(pos.post("returns", {**body, "points": 201}), 422, "return_exceeds_purchase")
    assert pos.post("returns", {**body, "points": 200}).status_code == 201


def test_a_return_of_an_unknown_receipt_is_404(pos, member):
    response = pos.post("returns", {"loyalty_number": member.loyalty_number, "receipt_number": "NOPE", "points": 1})
    assert_error(response, 404, "purchase_not_found")


def test_a_return_worth_no_points_answers_200_and_writes_nothing(pos, member):
    pos.post("purchases", purchase(member, amount=50_000))
    before = ledger_counts()
    response = pos.post(
        "returns", {"loyalty_number": member.loyalty_number, "receipt_number": "R1", "amount_minor": 99}
    )
    assert response.status_code == 200 and response.json()["reversed"] == 0
    assert ledger_counts() == before
    response = pos.post("returns", {"loyalty_number": member.loyalty_number, "receipt_number": "R9", "amount_minor": 9})
    assert_error(response, 404, "purchase_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"receipt_number": "R1", "original_receipt_ref": "KLA/T1/R1", "points": 1},
        {"points": 1},
        {"receipt_number": "R1"},
        {"receipt_number": "R1", "points": 1, "amount_minor": 100},
        {"original_receipt_ref": "R1", "points": 1},
        {"original_receipt_ref": "KLA/T1/R1/x", "points": 1},
    ],
)
def test_a_return_must_name_one_receipt_and_one_amount(pos, member, body):
    assert_error(pos.post("returns", {"loyalty_number": member.loyalty_number, **body}), 400, "validation_error")


# --- redemptions -----------------------------------------------------------------------------


def test_a_redemption_holds_points(pos, rich_member):
    response = pos.post("redemptions", {"loyalty_number": rich_member.loyalty_number, "points": 300})
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "hold" and body["balance"] == {"available": 700, "held": 300, "pending": 0}
    assert LedgerOperation.objects.get(pk=body["hold_id"]).kind == "hold"


def test_a_redemption_beyond_the_balance_is_422(pos, rich_member):
    response = pos.post("redemptions", {"loyalty_number": rich_member.loyalty_number, "points": 1001})
    error = assert_error(response, 422, "insufficient_points")
    assert error["detail"] == {"available": 1000, "requested": 1001}
    assert available(rich_member) == 1000


def test_a_capture_settles_the_hold(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    response = pos.post(f"redemptions/{hold_id}/capture", {})
    assert response.status_code == 201
    assert response.json()["released"] == 0 and response.json()["balance"] == {
        "available": 700,
        "held": 0,
        "pending": 0,
    }
    assert_ledger_verified()


def test_a_partial_capture_releases_the_rest(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    response = pos.post(f"redemptions/{hold_id}/capture", {"points": 120})
    assert response.status_code == 201 and response.json()["released"] == 180
    assert available(rich_member) == 880


def test_a_capture_with_an_empty_body_captures_everything(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    response = pos.post(f"redemptions/{hold_id}/capture", None, content_type="")
    assert response.status_code == 201 and response.json()["points"] == 300


def test_a_capture_beyond_the_hold_is_422(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    assert_error(pos.post(f"redemptions/{hold_id}/capture", {"points": 301}), 422, "capture_exceeds_hold")


def test_a_capture_with_a_misspelt_field_is_refused_not_a_full_capture(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    error = assert_error(pos.post(f"redemptions/{hold_id}/capture", {"point": 10}), 400, "validation_error")
    assert error["detail"] == {"point": ["Unknown field."]}
    assert LedgerOperation.objects.filter(kind="capture").count() == 0


def test_a_void_releases_everything(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    response = pos.post(f"redemptions/{hold_id}/void")
    assert response.status_code == 201 and response.json()["released"] == 300
    assert available(rich_member) == 1000
    assert_ledger_verified()


@pytest.mark.parametrize(("first", "then"), [("capture", "capture"), ("capture", "void"), ("void", "capture")])
def test_a_settled_hold_is_409(pos, rich_member, first, then):
    hold_id = hold(pos, rich_member, 300)
    assert pos.post(f"redemptions/{hold_id}/{first}", {}).status_code == 201
    assert_error(pos.post(f"redemptions/{hold_id}/{then}", {}), 409, "hold_not_open")


def test_a_lapsed_hold_cannot_be_captured(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    with rewriting_history():
        LedgerOperation.objects.filter(pk=hold_id).update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(pos.post(f"redemptions/{hold_id}/capture", {}), 409, "hold_not_open")


@pytest.mark.parametrize("hold_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1" * 200])
@pytest.mark.parametrize("action", ["capture", "void"])
def test_an_unknown_hold_is_404(pos, db, hold_id, action):
    assert_error(pos.post(f"redemptions/{hold_id}/{action}", {}), 404, "hold_not_found")


def test_a_hold_of_another_store_is_404(pos, pos_for, rich_member, store_b):
    hold_id = hold(pos, rich_member, 300)
    elsewhere = pos_for(make_till(store_b, "T1"))
    for action in ("capture", "void"):
        assert_error(elsewhere.post(f"redemptions/{hold_id}/{action}", {}), 404, "hold_not_found")
    assert LedgerOperation.objects.filter(kind__in=["capture", "void"]).count() == 0


def test_another_till_of_the_same_store_may_settle_a_hold(pos, rich_member, store_a, make_staff):
    hold_id = hold(pos, rich_member, 300)
    lane_2 = shift_client(make_till(store_a, "T2"), make_staff("cashier-2", "cashier", stores=[store_a]))
    assert lane_2.post(f"redemptions/{hold_id}/capture", {}).status_code == 201


def test_a_capture_replay_is_identical(pos, rich_member):
    hold_id = hold(pos, rich_member, 300)
    first = pos.post(f"redemptions/{hold_id}/capture", {"points": 100}, key="cap-1")
    again = pos.post(f"redemptions/{hold_id}/capture", {"points": 100}, key="cap-1")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again["Idempotency-Replayed"] == "true"
    assert LedgerOperation.objects.filter(kind="capture").count() == 1


# --- balance --------------------------------------------------------------------------------


def balance(pos, number, **kwargs):
    """The look-up: the loyalty number in the signed body, never in the URL (a read: no key)."""
    return pos.post("members/balance", {"loyalty_number": number}, key=None, **kwargs)


def test_the_balance_of_a_member_who_never_earned_is_zero(pos, member):
    response = balance(pos, member.loyalty_number)
    assert response.json() == {
        "loyalty_number": member.loyalty_number,
        "balance": {"available": 0, "held": 0, "pending": 0},
    }
    assert response["Cache-Control"] == "no-store"
    assert ledger_counts() == (0, 0, 0) and not IdempotencyKey.objects.exists()


def test_the_balance_shows_available_and_held_points(pos, rich_member):
    hold(pos, rich_member, 300)
    response = balance(pos, rich_member.loyalty_number)
    assert response.json()["balance"] == {"available": 700, "held": 300, "pending": 0}


def test_the_balance_of_an_unknown_member_is_404(pos, db):
    assert_error(balance(pos, unknown_loyalty_number()), 404, "member_not_found")


@pytest.mark.parametrize("number", ["123", "9912345678901234", "99\uff11" + "1" * 13, "x" * 300, 9912345678901234])
def test_the_balance_of_a_malformed_number_is_400(pos, db, number):
    assert_error(balance(pos, number), 400, "invalid_loyalty_number")


@pytest.mark.parametrize("body", [{}, {"loyalty_number": "9912345678901234", "extra": 1}, []])
def test_a_balance_look_up_with_a_wrong_body_is_400(pos, db, body):
    assert assert_error(pos.post("members/balance", body, key=None), 400)["code"] in {
        "validation_error",
        "invalid_loyalty_number",
    }


def test_the_balance_is_a_post_only(pos, member):
    assert_error(pos.get("members/balance"), 405, "method_not_allowed")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_the_retired_balance_path_is_410_and_reveals_nothing(pos, client, rich_member, method, caplog):
    """The path form put the loyalty number in access logs (issue 11, D7): retired, 410,
    signed or not; the number is neither read, echoed nor logged by the application."""
    path = f"{POS}/members/{rich_member.loyalty_number}/balance"
    with caplog.at_level(logging.DEBUG):
        responses = [pos.request(method, path), client.generic(method, path)]
    for response in responses:
        error = assert_error(response, 410, "balance_lookup_retired")
        assert "POST /api/v1/pos/members/balance" in error["message"]
        assert rich_member.loyalty_number.encode() not in response.content
        assert response["Cache-Control"] == "no-store"
    assert not [r for r in caplog.records if rich_member.loyalty_number in r.getMessage()]
    assert [getattr(r, "event", None) for r in caplog.records if r.name.startswith("loyalty")].count(
        "till_balance_path_retired"
    ) == 2


# --- protocol errors: all in the one shape ----------------------------------------------------


def test_a_wrong_method_is_405(pos, member):
    assert_error(pos.get("purchases"), 405, "method_not_allowed")
    assert_error(pos.request("DELETE", f"{POS}/members/balance"), 405, "method_not_allowed")


def test_options_is_405_not_a_description(pos):
    assert_error(pos.request("OPTIONS", f"{POS}/purchases"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_a_body_that_is_not_json_is_415(pos, member, content_type):
    response = pos.post("purchases", purchase(member), content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert ledger_counts() == (0, 0, 0)


def test_json_with_a_charset_is_accepted(pos, member):
    assert pos.post("purchases", purchase(member), content_type="application/json; charset=utf-8").status_code == 201


def test_a_body_larger_than_the_limit_is_413(pos, member, settings):
    settings.TILL_MAX_BODY_BYTES = 200
    error = assert_error(pos.post("purchases", purchase(member, receipt="R" * 60, pad="x" * 200)), 413)
    assert error["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["nope", "purchases/", "members/x", "redemptions/1/2/3"])
def test_an_unknown_path_under_the_api_is_a_json_404(client, path):
    assert_error(client.post(f"{POS}/{path}"), 404, "not_found")


def test_the_rate_limit_is_429_with_retry_after(pos, member, monkeypatch):
    monkeypatch.setattr(TillRateThrottle, "THROTTLE_RATES", {"till": "2/min"})
    assert [balance(pos, member.loyalty_number).status_code for _ in range(2)] == [200, 200]
    response = balance(pos, member.loyalty_number)
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1


def test_an_unexpected_failure_is_a_json_500_with_the_request_id(pos, rich_member, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("internal detail 4111 1111 1111 1111")

    monkeypatch.setattr(redemptions, "till_redemption_hold", explode)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = pos.post("redemptions", {"loyalty_number": rich_member.loyalty_number, "points": 10})
    error = assert_error(response, 500, "server_error")
    assert error["detail"]["request_id"] == response["X-Request-ID"]
    assert b"internal detail" not in response.content
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_store_codes_are_used_as_stored_in_receipt_refs(pos_for, member):
    store = Store.objects.create(code="Kl9", name="Mixed case")
    response = pos_for(make_till(store, "Lane.1")).post("purchases", purchase(member))
    assert response.json()["receipt_ref"] == "Kl9/Lane.1/R1"


def test_a_return_by_amount_is_exact_whatever_the_tier_is_now(pos, member):
    """The earn keeps the purchase amount: the return takes the same share of its points."""
    pos.post("purchases", purchase(member, amount=50_000))  # 500 points at tier 1
    Member.objects.filter(pk=member.pk).update(tier=3)  # 150 % now
    response = pos.post(
        "returns", {"loyalty_number": member.loyalty_number, "receipt_number": "R1", "amount_minor": 10_050}
    )
    assert response.status_code == 201 and response.json()["reversed"] == 100
    assert LedgerOperation.objects.get(kind="earn").amount_minor == 50_000
