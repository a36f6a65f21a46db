"""Card numbers are refused at the door (422), wherever they are in the request, and
never stored, logged or echoed. Loyalty numbers never trip the detector."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.kernel.pan import contains_pan
from loyalty.ledger.models import IdempotencyKey
from members.numbers import loyalty_number_generate
from tests.loyalty.api.conftest import assert_error, ledger_counts

pytestmark = pytest.mark.django_db

PAN = "4111111111111111"  # a Visa test number: Luhn-valid, brand prefix 4
DIGITS = {PAN, "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005"}


def purchase(member, **extra) -> dict:
    return {"loyalty_number": member.loyalty_number, "receipt_number": "R1", "amount_minor": 1000, **extra}


def assert_refused(response, field: str):
    error = assert_error(response, 422, "card_number_refused")
    assert error["detail"] == {"field": field}
    for value in DIGITS:
        assert value.encode() not in response.content
    assert ledger_counts() == (0, 0, 0)
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"receipt_number": PAN}, "receipt_number"),
        ({"receipt_number": "4111-1111-1111-1111"}, "receipt_number"),
        ({"amount_minor": int(PAN)}, "amount_minor"),
        ({"note": f"paid with {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}"}, "note"),
        ({"amex": "3782 822463 10005"}, "amex"),
        ({"basket": {"items": [{"sku": "A1"}, {"sku": "B2", "memo": PAN}]}}, "basket.items[1].memo"),
        ({"deep": [[[[{"x": [1, 2, float(PAN)]}]]]]}, "deep[0][0][0][0].x[2]"),
        ({PAN: "as a key"}, "[key withheld]"),
        ({"wide": "４１１１１１１１１１１１１１１１"}, "wide"),
        ({"hidden": "4111\u200b1111\u200b1111\u200b1111"}, "hidden"),
    ],
)
def test_a_card_number_anywhere_in_the_body_is_refused(pos, member, extra, field):
    assert_refused(pos.post("purchases", purchase(member, **extra)), field)


def test_a_card_number_in_json_escapes_is_refused(pos, member):
    escaped = "".join(f"\\u{ord(c):04x}" for c in PAN)
    raw = f'{{"loyalty_number": "{member.loyalty_number}", "receipt_number": "{escaped}", "amount_minor": 1}}'
    assert_refused(pos.post("purchases", raw.encode()), "receipt_number")


def test_a_card_number_in_a_body_that_is_not_json_is_refused_before_the_415(pos, member):
    assert_refused(pos.post("purchases", f"card={PAN}", content_type="text/plain"), "(body)")


def test_a_card_number_in_malformed_json_is_refused_before_the_400(pos, member):
    assert_refused(pos.post("purchases", f'{{"receipt_number": "{PAN}",'), "(body)")


def test_the_card_check_runs_before_the_idempotency_key_check(pos, member):
    assert_refused(pos.post("purchases", purchase(member, receipt_number=PAN), key=None), "receipt_number")


@pytest.mark.parametrize("path", ["returns", "redemptions", "redemptions/00000000-0000-0000-0000-000000000000/void"])
def test_every_write_endpoint_refuses_card_numbers(pos, member, path):
    assert_refused(pos.post(path, {"loyalty_number": member.loyalty_number, "card": PAN}), "card")


def test_a_card_number_as_the_idempotency_key_is_refused(pos, member):
    assert_refused(pos.post("purchases", purchase(member), key=f"order-{PAN}"), "header:Idempotency-Key")


def test_a_uuid_idempotency_key_is_never_taken_for_a_card(pos, member):
    # 8-4-4 digit groups that pass Luhn with a brand prefix: the raw detector flags it.
    key = f"{PAN[:8]}-{PAN[8:12]}-{PAN[12:]}-a000-000000000000"
    assert contains_pan(key)
    assert pos.post("purchases", purchase(member), key=key).status_code == 201


def balance(pos, number):
    return pos.post("members/balance", {"loyalty_number": number}, key=None)


@pytest.mark.parametrize(
    "number", sorted(DIGITS) + ["４１１１１１１１１１１１１１１１", "card 4111111111111111 exp 12/29"]
)
def test_a_card_number_given_for_a_balance_look_up_is_refused(pos, db, number):
    assert_refused(balance(pos, number), "loyalty_number")


def test_a_card_number_in_the_retired_balance_path_is_410_and_never_echoed(pos, db):
    response = pos.get(f"members/{PAN}/balance")
    assert_error(response, 410, "balance_lookup_retired")
    assert PAN.encode() not in response.content


def test_a_refused_card_number_is_never_logged(pos, member, caplog):
    with caplog.at_level(logging.DEBUG):
        pos.post("purchases", purchase(member, basket={"memo": f"card {PAN}"}))
        balance(pos, PAN)
        pos.get(f"members/{PAN}/balance")  # retired: 410
    events = [r for r in caplog.records if getattr(r, "event", None) == "card_number_refused"]
    assert [e.field for e in events] == ["basket.memo", "loyalty_number"]
    for record in caplog.records:
        # django.request names the path; the project's log filter has redacted it.
        extras = {k: getattr(record, k, None) for k in ("event", "field", "till_id", "reason", "ip")}
        assert not contains_pan(record.getMessage() + json.dumps(extras, default=str)), record


def test_loyalty_numbers_pass_the_card_check(pos, member):
    assert pos.post("purchases", purchase(member)).status_code == 201
    assert balance(pos, member.loyalty_number).status_code == 200


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.just(None).map(lambda _: loyalty_number_generate()))
def test_no_loyalty_number_looks_like_a_card(number):
    assert not contains_pan(number) and not contains_pan(json.dumps({"loyalty_number": number}))


def test_random_hex_idempotency_keys_are_never_mistaken_for_cards():
    """Found by the benchmark: about 1 random 32-hex key in 500 holds a Luhn-valid,
    brand-prefixed digit run glued to hex letters."""
    import secrets

    keys = [secrets.token_hex(16) for _ in range(20_000)]
    assert not [k for k in keys if contains_pan(k, standalone=True)]
    assert contains_pan("4111 1111 1111 1111", standalone=True)
    assert contains_pan("key-4111111111111111-x", standalone=True)
    assert not contains_pan("ab4111111111111111cd", standalone=True)
    assert contains_pan("ab4111111111111111cd")  # free text keeps the strict rule


def test_each_refusal_is_one_security_event_without_the_number(pos, member):
    from staffauth.models import SecurityEvent

    pos.post("purchases", purchase(member, basket={"memo": f"card {PAN}"}))
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.CARD_NUMBER_REFUSED)
    assert event.detail["field"] == "basket.memo" and event.detail["till_id"] is not None
    assert PAN not in json.dumps(event.detail) and event.ip_address
