"""Issue 11 (D5): the one card-number detector (``loyalty.kernel.pan``) and what it reads.

Normalised first (fullwidth and other scripts' digits, Unicode spaces and dashes,
invisible characters), then the rule of SECURITY.md §3 over every stretch of whole digit
groups, so digits typed after a card number (a CVV, an expiry) do not hide it.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.kernel.pan import contains_pan, looks_like_pan, luhn_valid
from members.numbers import loyalty_number_generate
from staffauth.logging import RedactingFilter

FOUND = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "3782 822463 10005",  # Amex
    "6011 1111 1111 1117",  # Discover
    "card 4111 1111 1111 1111 exp 12/29",
    "4111 1111 1111 1111 123",  # with the CVV
    "4111 1111 1111 1111 12 29",  # with the expiry
    "paid 12 4111 1111 1111 1111",  # a number before it
    "４１１１１１１１１１１１１１１１",  # fullwidth
    "４１１１－１１１１－１１１１－１１１１",  # fullwidth dashes
    "٤١١١١١١١١١١١١١١١",  # Arabic-Indic
    "4111\u200b1111\u200b1111\u200b1111",  # zero-width spaces
    "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
    "4111–1111–1111–1111",  # en dashes
]
NOT_FOUND = [
    "4111111111111112",  # Luhn fails
    "9912345678901234",  # a loyalty number's prefix
    "Lot 12-3, Jalan 45/6, 47301 Petaling Jaya",
    "tel 012-345 6789",
    "2026-01-31T14:05:00.123456+08:00",
    "ab4111111111111111cd"[2:-2][:12],  # too short
]


@pytest.mark.parametrize("text", FOUND)
def test_card_numbers_are_found_in_every_form(text):
    from loyalty.kernel.pan import redact_pans

    assert contains_pan(text)
    assert "[REDACTED]" in redact_pans(text) and "1111" not in redact_pans(text).replace("12 29", "")


@pytest.mark.parametrize("text", NOT_FOUND)
def test_ordinary_text_is_not_a_card_number(text):
    assert not contains_pan(text)


def test_looks_like_pan_reads_fullwidth_digits():
    assert looks_like_pan("４１１１ １１１１ １１１１ １１１１") and not looks_like_pan("4111 1111 1111 1112")


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.just(None).map(lambda _: loyalty_number_generate()), st.sampled_from(["", " ", "-"]))
def test_loyalty_numbers_never_look_like_a_card_however_typed(number, separator):
    typed = separator.join(number[i : i + 4] for i in range(0, 16, 4))
    # The other number stands apart (a word between): glued on with a space, a loyalty
    # number's last 12 digits and a 3-digit number can form a Luhn-valid 15-digit run,
    # which is card-shaped whatever it was typed as (found by this test at random).
    assert not contains_pan(typed) and not contains_pan(f"member {typed} on till 123")


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=12, max_size=18), st.sampled_from(["4", "51", "34", "6011", "3528"]))
def test_generated_card_numbers_followed_by_a_cvv_are_found(body, prefix):
    digits = (prefix + "".join(map(str, body)))[:18]
    digits += next(d for d in "0123456789" if luhn_valid(digits + d))
    typed = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    assert contains_pan(f"{typed} 123") and contains_pan(f"card {typed} exp 12/29")


def test_the_log_filter_redacts_fullwidth_card_numbers():
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "typed %s", ("４１１１ １１１１ １１１１ １１１１",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "typed [REDACTED]"
