"""Issue 11 (D5, smaller findings): what the member API refuses in free text.

- a card number in any free-text field (name, address, email, device label) or in a
  stored header (Idempotency-Key), in every form it was typed: 422 ``card_number_refused``
  naming the field, nothing stored, nothing echoed or logged;
- bidi controls and zero-width characters in names and addresses: 400, each with its code;
- ``PATCH /me`` with nothing to change: 400 ``empty_update``.
"""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from loyalty.kernel.pan import contains_pan, luhn_valid
from members.models import MemberDevice
from members.services.pii import member_pii_read
from staffauth.models import SecurityEvent
from tests.members.api.input_guard_helpers import PAN, assert_unchanged, error
from vouchers.models import Voucher

pytestmark = pytest.mark.django_db

# Every form the independent test got through PATCH /me (issue 11, D5).
CARD_FORMS = {
    "plain": PAN,
    "spaced": "4111 1111 1111 1111",
    "dashed": "4111-1111-1111-1111",
    "amex": "3782 822463 10005",
    "discover": "6011 1111 1111 1117",
    "with expiry": "card 4111 1111 1111 1111 exp 12/29",
    "with cvv": "4111 1111 1111 1111 123",
    "fullwidth": "４１１１ １１１１ １１１１ １１１１",
    "arabic-indic": "٤١١١١١١١١١١١١١١١",
    "zero-width joined": "4111\u200b1111\u200b1111\u200b1111",
    "en dashes": "4111–1111–1111–1111",
}
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


# --- D5: card numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "address"])
@pytest.mark.parametrize("form", CARD_FORMS, ids=list(CARD_FORMS))
def test_a_card_number_in_name_or_address_is_refused_and_nothing_stored(api, member, field, form):
    response = api.patch("/api/v1/me", {field: CARD_FORMS[form]}, format="json")
    assert error(response, 422, "card_number_refused")["detail"] == {"field": field}
    assert CARD_FORMS[form].encode() not in response.content and PAN.encode() not in response.content
    assert_unchanged(member)


def test_a_card_number_in_one_field_refuses_the_whole_change(api, member):
    response = api.patch("/api/v1/me", {"name": "Aminah Yusof", "address": f"card {PAN}"}, format="json")
    error(response, 422, "card_number_refused")
    assert_unchanged(member)


def test_a_card_number_as_the_email_is_refused(api, member):
    response = api.patch("/api/v1/me", {"email": f"{PAN}@example.com"}, format="json")
    assert error(response, 422, "card_number_refused")["detail"] == {"field": "email"}


@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.lists(st.integers(0, 9), min_size=12, max_size=18),
    prefix=st.sampled_from(["4", "51", "2221", "34", "37", "6011", "65", "3528", "36", "62", "50"]),
    separator=st.sampled_from(["", " ", "-"]),
    wide=st.booleans(),
)
def test_generated_card_numbers_are_refused_in_any_form(api, member, body, prefix, separator, wide):
    digits = (prefix + "".join(map(str, body)))[:18]
    digits += next(d for d in "0123456789" if luhn_valid(digits + d))
    typed = separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    if wide:
        typed = typed.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    response = api.patch("/api/v1/me", {"name": f"card {typed} please"}, format="json")
    error(response, 422, "card_number_refused")
    assert_unchanged(member)


def test_a_loyalty_number_and_ordinary_text_are_accepted(api, member):
    text = f"{member.loyalty_number} Lot 12-3, Jalan 45/6, 47301 Petaling Jaya, tel 012-345 6789"
    response = api.patch("/api/v1/me", {"name": "Siti Nur'aini Ahmad", "address": text}, format="json")
    assert response.status_code == 200, response.content
    member.refresh_from_db()
    assert member_pii_read(member).address == text


def test_a_card_number_as_the_voucher_idempotency_key_is_refused(api, member):
    for key in (PAN, f"order-{PAN}", "4111 1111 1111 1111", "4111-1111-1111-1111"):
        response = api.post("/api/v1/me/vouchers", {"reward_id": 1}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert error(response, 422, "card_number_refused")["detail"] == {"field": "header:Idempotency-Key"}
    assert not Voucher.objects.exists()


def test_a_card_number_as_the_device_label_is_refused_at_sign_in(member):
    body = {
        "phone": "+60125550101",
        "password": "not-checked-first",
        "channel": "app",
        "device": {"fingerprint": "fp-new", "label": "４１１１ １１１１ １１１１ １１１１"},
    }
    response = APIClient().post("/api/v1/auth/password/login", body, format="json")
    assert error(response, 422, "card_number_refused")["detail"] == {"field": "device.label"}
    assert not MemberDevice.objects.filter(label__contains="1111").exists()


def test_a_card_refusal_is_logged_and_recorded_by_field_name_only(api, member, caplog):
    with caplog.at_level(logging.DEBUG):
        api.patch("/api/v1/me", {"address": f"card {PAN} exp 12/29"}, format="json")
    events = [r for r in caplog.records if getattr(r, "event", None) == "card_number_refused"]
    assert [e.field for e in events] == ["address"]
    assert not any(contains_pan(r.getMessage()) for r in caplog.records)
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.CARD_NUMBER_REFUSED)
    assert event.detail["field"] == "address" and PAN not in json.dumps(event.detail)


# --- smaller findings: bidi controls, invisible characters, empty updates -------------------------


# Each bidi control and each invisible character, inside a name or an address, and the code refusing it.
HIDDEN_CHARACTERS = [
    *(pytest.param(f"Aminah {c}fosuY", "bidi_control_refused", id=f"bidi-U+{ord(c):04X}") for c in BIDI),
    *(pytest.param(f"Ami{c}nah", "invisible_character_refused", id=f"invisible-U+{ord(c):04X}") for c in INVISIBLE),
]


@pytest.mark.parametrize("field", ["name", "address"])
@pytest.mark.parametrize(("value", "code"), HIDDEN_CHARACTERS)
def test_bidi_controls_and_invisible_characters_are_refused_in_names_and_addresses(api, member, field, value, code):
    response = api.patch("/api/v1/me", {field: value}, format="json")
    assert error(response, 400, code)["detail"] == {"field": field}
    assert_unchanged(member)


def test_names_in_other_scripts_are_accepted(api, member):
    for name in ("محمد بن عبدالله", "李小龍", "முத்து", "Zoë Ñúñez"):
        assert api.patch("/api/v1/me", {"name": name}, format="json").status_code == 200
        member.refresh_from_db()
        assert member_pii_read(member).name == name


@pytest.mark.parametrize("body", [{}, None])
def test_an_empty_update_is_refused(api, member, body):
    response = api.patch("/api/v1/me", body, format="json") if body is not None else api.patch("/api/v1/me")
    error(response, 400, "empty_update")
    assert_unchanged(member)
