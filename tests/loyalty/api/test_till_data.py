"""Till data on purchases and returns (issue 14, FRAUD.md "Till data"): item lines and the
tender stored only as keyed hashes, card numbers refused, the tender check on returns,
and refused earns and returns recorded for the fraud detectors."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.conf import settings

from loyalty.ledger.models import IdempotencyKey, LedgerOperation, LedgerRefusalEvent
from loyalty.ledger.tilldata import sku_hash, tender_hash
from tests.loyalty.api.conftest import assert_error, ledger_counts
from tests.loyalty.conftest import assert_ledger_verified

pytestmark = pytest.mark.django_db

PAN = "4111111111111111"  # a test card number: passes Luhn, Visa prefix
TOKEN = "tok_visa_8f3a2c91d0"
OTHER_TOKEN = "tok_mc_2b7e41c0aa"
ITEMS = [{"sku": "SKU-COFFEE-250G", "qty": 2, "amount_minor": 5000}, {"sku": "SKU-MUG", "qty": 1, "amount_minor": 7500}]


def purchase(member, receipt="R1", amount=12_500, **extra) -> dict:
    return {"loyalty_number": member.loyalty_number, "receipt_number": receipt, "amount_minor": amount, **extra}


def a_return(member, receipt="R1", **extra) -> dict:
    return {"loyalty_number": member.loyalty_number, "receipt_number": receipt, **{"points": 10, **extra}}


def keyed(label: str, value: str) -> str:
    """Computed here from the documented rule, not with the code under test."""
    message = f"{label}\x00{value}".encode()
    return hmac.new(settings.TILL_DATA_HMAC_KEY.encode(), message, hashlib.sha256).hexdigest()


# --- stored as keyed hashes ---------------------------------------------------------------------


def test_a_purchase_keeps_its_items_and_tender_as_keyed_hashes_only(pos, member):
    response = pos.post("purchases", purchase(member, items=ITEMS, tender_ref=TOKEN))
    assert response.status_code == 201, response.json()
    op = LedgerOperation.objects.get()
    assert op.tender_hash == keyed("tender", TOKEN) == tender_hash(TOKEN)
    assert op.item_lines == [
        {"sku_hash": keyed("sku", "SKU-COFFEE-250G"), "qty": 2, "amount_minor": 5000},
        {"sku_hash": keyed("sku", "SKU-MUG"), "qty": 1, "amount_minor": 7500},
    ]
    assert op.receipt_presented is None
    # The raw values are nowhere in the row (nor in the saved answer).
    row = str(LedgerOperation.objects.filter(pk=op.pk).values().get())
    saved = str(IdempotencyKey.objects.values().get())
    for raw in (TOKEN, "SKU-COFFEE-250G", "SKU-MUG"):
        assert raw not in row and raw not in saved
    assert "tender" not in response.json() and "items" not in response.json()
    assert_ledger_verified()


def test_a_sku_hash_differs_from_a_token_hash_of_the_same_text():
    assert sku_hash("ABC-1") != tender_hash("ABC-1")
    assert sku_hash("ABC-1") == sku_hash("ABC-1")


def test_a_purchase_without_till_data_stores_none(pos, member):
    assert pos.post("purchases", purchase(member)).status_code == 201
    op = LedgerOperation.objects.get()
    assert (op.item_lines, op.tender_hash, op.receipt_presented) == (None, "", None)


def test_a_return_keeps_its_lines_tender_amount_and_receipt_flag(pos, member):
    assert pos.post("purchases", purchase(member, items=ITEMS, tender_ref=TOKEN)).status_code == 201
    body = a_return(member, items=ITEMS[1:], tender_ref=TOKEN, receipt_presented=False)
    body.pop("points")
    response = pos.post("returns", {**body, "amount_minor": 7500})
    assert response.status_code == 201, response.json()
    assert "refund_advice" not in response.json()
    ret = LedgerOperation.objects.get(kind="reverse_earn")
    assert ret.tender_hash == keyed("tender", TOKEN) and ret.receipt_presented is False
    assert ret.item_lines == [{"sku_hash": keyed("sku", "SKU-MUG"), "qty": 1, "amount_minor": 7500}]
    assert ret.amount_minor == 7500 and not ret.needs_review
    assert_ledger_verified()


# --- card numbers refused, nothing written ---------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"tender_ref": PAN}, "tender_ref"),
        ({"tender_ref": "4111 1111 1111 1111"}, "tender_ref"),
        ({"items": [{"sku": PAN, "qty": 1, "amount_minor": 100}]}, "items[0].sku"),
    ],
)
@pytest.mark.parametrize("path", ["purchases", "returns"])
def test_a_card_number_in_the_till_data_is_refused_and_nothing_is_written(pos, member, earn, path, extra, field):
    if path == "returns":
        earn(member, 100)
    before = ledger_counts(), IdempotencyKey.objects.count(), LedgerRefusalEvent.objects.count()
    body = purchase(member, **extra) if path == "purchases" else a_return(member, **extra)
    error = assert_error(pos.post(path, body), 422, "card_number_refused")
    assert error["detail"]["field"] == field
    assert (ledger_counts(), IdempotencyKey.objects.count(), LedgerRefusalEvent.objects.count()) == before


@pytest.mark.parametrize(
    "extra",
    [
        {"items": []},
        {"items": [{"sku": "A", "qty": 0, "amount_minor": 1}]},
        {"items": [{"sku": "A", "qty": 1, "amount_minor": -1}]},
        {"items": [{"sku": "A", "qty": "1", "amount_minor": 1}]},
        {"items": [{"sku": "A B", "qty": 1, "amount_minor": 1}]},
        {"items": [{"sku": "A", "qty": 1, "amount_minor": 1, "name": "x"}]},
        {"items": [{"sku": "A", "qty": 1}]},
        {"items": [{"sku": f"S{n}", "qty": 1, "amount_minor": 1} for n in range(101)]},
        {"tender_ref": ""},
        {"tender_ref": "tok with space"},
        {"tender_ref": "t" * 129},
        {"receipt_presented": True},  # returns only
    ],
)
def test_malformed_till_data_on_a_purchase_is_refused(pos, member, extra):
    assert_error(pos.post("purchases", purchase(member, **extra)), 400, "validation_error")
    assert ledger_counts() == (0, 0, 0)


@pytest.mark.parametrize("value", ["true", 1, None])
def test_receipt_presented_is_a_json_boolean(pos, member, earn, value):
    earn(member, 100)
    assert_error(pos.post("returns", a_return(member, receipt_presented=value)), 400, "validation_error")


# --- the tender check on returns (FRAUD.md row 15) --------------------------------------------------


@pytest.fixture
def bought(pos, member):
    """A purchase of 125 points paid with TOKEN."""
    response = pos.post("purchases", purchase(member, items=ITEMS, tender_ref=TOKEN))
    assert response.status_code == 201
    return response.json()


def test_a_refund_on_the_purchase_tender_is_taken(pos, member, bought):
    response = pos.post("returns", a_return(member, tender_ref=TOKEN))
    assert response.status_code == 201 and response.json()["reversed"] == 10
    assert LedgerRefusalEvent.objects.count() == 0


def test_a_refund_on_another_tender_is_refused_by_default(pos, member, bought, settings):
    assert settings.LOYALTY_RETURN_TENDER_MISMATCH == "refuse"
    before = ledger_counts()
    error = assert_error(pos.post("returns", a_return(member, tender_ref=OTHER_TOKEN)), 409, "refund_tender_mismatch")
    assert error["detail"] == {"refund_advice": "refuse"}
    assert ledger_counts() == before
    refusal = LedgerRefusalEvent.objects.get()
    assert (refusal.kind, refusal.code, refusal.member_id, refusal.actor_till_id) == (
        "reverse_earn", "refund_tender_mismatch", member.pk, pos.till.pk,
    )  # fmt: skip
    assert refusal.store_id == pos.till.store_id and refusal.facts == {}


def test_allow_and_flag_books_the_return_flags_it_and_tells_the_till(pos, member, bought, settings):
    settings.LOYALTY_RETURN_TENDER_MISMATCH = "allow_and_flag"
    response = pos.post("returns", a_return(member, tender_ref=OTHER_TOKEN))
    assert response.status_code == 201, response.json()
    assert response.json()["refund_advice"] == "flagged" and response.json()["reversed"] == 10
    ret = LedgerOperation.objects.get(kind="reverse_earn")
    assert ret.needs_review and ret.tender_hash == keyed("tender", OTHER_TOKEN)
    assert LedgerRefusalEvent.objects.count() == 0
    assert_ledger_verified()


@pytest.mark.parametrize("with_purchase_tender", [True, False])
def test_without_both_tenders_there_is_nothing_to_compare(pos, member, with_purchase_tender):
    extra = {"tender_ref": TOKEN} if with_purchase_tender else {}
    assert pos.post("purchases", purchase(member, **extra)).status_code == 201
    return_extra = {} if with_purchase_tender else {"tender_ref": OTHER_TOKEN}
    response = pos.post("returns", a_return(member, **return_extra))
    assert response.status_code == 201 and "refund_advice" not in response.json()


def test_a_refused_tender_is_the_key_s_answer_a_new_key_may_try_the_right_tender(pos, member, bought):
    first = pos.post("returns", a_return(member, tender_ref=OTHER_TOKEN), key="ret-1")
    replay = pos.post("returns", a_return(member, tender_ref=OTHER_TOKEN), key="ret-1")
    assert first.status_code == replay.status_code == 409 and replay["Idempotency-Replayed"] == "true"
    assert LedgerRefusalEvent.objects.count() == 1  # a replay records nothing
    assert_error(pos.post("returns", a_return(member, tender_ref=TOKEN), key="ret-1"), 422, "idempotency_key_reused")
    assert pos.post("returns", a_return(member, tender_ref=TOKEN), key="ret-2").status_code == 201
    assert LedgerRefusalEvent.objects.count() == 1


# --- refusals recorded (FRAUD.md rows 1, 3 and 13) ---------------------------------------------------


def test_a_return_without_a_recorded_purchase_is_recorded_without_its_receipt(pos, member):
    error = assert_error(pos.post("returns", a_return(member, receipt="NOPE-77")), 404, "purchase_not_found")
    assert error["detail"]["receipt_ref"].endswith("/NOPE-77")  # the till is told, as before
    refusal = LedgerRefusalEvent.objects.get()
    assert (refusal.kind, refusal.code, refusal.member_id, refusal.actor_till_id) == (
        "reverse_earn", "purchase_not_found", member.pk, pos.till.pk,
    )  # fmt: skip
    assert refusal.facts == {}  # the receipt reference (text the till typed) is not kept
    assert "NOPE" not in str(LedgerRefusalEvent.objects.values().get())
    assert "NOPE" not in str(refusal) and member.loyalty_number not in str(refusal)


def test_a_refused_earn_is_recorded_with_its_counts(pos, member, settings):
    settings.LOYALTY_VELOCITY = {**settings.LOYALTY_VELOCITY, "earn_transactions_per_day": 1}
    assert pos.post("purchases", purchase(member, receipt="A")).status_code == 201
    assert_error(pos.post("purchases", purchase(member, receipt="B")), 422, "daily_earn_transactions_exceeded")
    refusal = LedgerRefusalEvent.objects.get()
    assert (refusal.kind, refusal.code, refusal.member_id) == ("earn", "daily_earn_transactions_exceeded", member.pk)
    assert refusal.facts and all(isinstance(v, int) for v in refusal.facts.values())


def test_the_receipt_used_twice_is_a_recorded_refusal(pos, member):
    assert pos.post("purchases", purchase(member)).status_code == 201
    assert_error(pos.post("purchases", purchase(member)), 409, "receipt_already_used")
    assert LedgerRefusalEvent.objects.get().code == "receipt_already_used"


def test_refusal_records_are_append_only(pos, member):
    pos.post("returns", a_return(member, receipt="NOPE"))
    refusal = LedgerRefusalEvent.objects.get()
    with pytest.raises(TypeError):
        refusal.save()
    with pytest.raises(TypeError):
        LedgerRefusalEvent.objects.all().delete()


def test_a_pending_purchase_keeps_its_till_data_and_its_return_is_checked_alike(pos, member, settings):
    settings.LOYALTY_PENDING_DAYS = 14
    assert pos.post("purchases", purchase(member, items=ITEMS, tender_ref=TOKEN)).status_code == 201
    op = LedgerOperation.objects.get()
    assert op.pending_until is not None and op.tender_hash == keyed("tender", TOKEN) and len(op.item_lines) == 2
    assert_error(pos.post("returns", a_return(member, tender_ref=OTHER_TOKEN)), 409, "refund_tender_mismatch")
    response = pos.post("returns", a_return(member, tender_ref=TOKEN, receipt_presented=True))
    assert response.status_code == 201 and response.json()["pending_reduced"] == 10
    assert LedgerOperation.objects.get(kind="reverse_earn").receipt_presented is True
    assert_ledger_verified()
