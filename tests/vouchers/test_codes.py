"""Voucher codes: generated with their check character, never card-like, and every
single-symbol typo and every transposition refused before any lookup."""

from __future__ import annotations

import random
import re
import secrets
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.kernel.pan import contains_pan, luhn_valid
from vouchers.services.codes import (
    ALPHABET,
    WEIGHTS,
    CodeInvalid,
    code_check_symbol,
    code_format,
    code_generate,
    code_issuable,
    code_normalise,
)

FORMATTED = re.compile(r"\A[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){3}\Z")
SYMBOL_VALUES = st.integers(min_value=0, max_value=len(ALPHABET) - 1)
# Values 0-7 are the digits 2-9: lists biased towards them reach the card-number and
# too-few-letters rules far more often than uniform draws would.
DIGIT_HEAVY_VALUES = st.one_of(st.integers(min_value=0, max_value=7), SYMBOL_VALUES)
BODIES = st.lists(SYMBOL_VALUES, min_size=15, max_size=15).map(lambda vs: "".join(ALPHABET[v] for v in vs))
CODES = BODIES.map(lambda body: body + code_check_symbol(body))


def refusal_of(text) -> str:
    """The code of ``code_normalise``'s refusal of ``text`` (it must refuse)."""
    with pytest.raises(CodeInvalid) as caught:
        code_normalise(text)
    return caught.value.code


def steered(values):
    """A ``randbelow`` that returns ``values`` first, then real random draws."""
    queue = list(values)

    def randbelow(n: int) -> int:
        assert n == len(ALPHABET)
        return queue.pop(0) if queue else secrets.randbelow(n)

    return randbelow


def values_of(code: str) -> list[int]:
    return [ALPHABET.index(symbol) for symbol in code]


def find_code(predicate, *, seed: int, digits_only: bool = False) -> str:
    """A valid code satisfying ``predicate``, found by a seeded search."""
    rng = random.Random(seed)
    pool = "23456789" if digits_only else ALPHABET
    for _ in range(2_000_000):
        body = "4" + "".join(rng.choice(pool) for _ in range(14))
        code = body + code_check_symbol(body)
        if predicate(code):
            return code
    raise AssertionError("no such code found")


# --- the alphabet and the check: exhaustive proofs ----------------------------------------------


def test_the_alphabet_has_31_distinct_symbols_and_no_look_alikes():
    assert len(ALPHABET) == len(set(ALPHABET)) == 31
    assert all(31 % d for d in range(2, 31))  # 31 is prime
    assert not set(ALPHABET) & set("01OIL")
    assert ALPHABET.upper() == ALPHABET


def test_the_weights_are_distinct_and_non_zero_mod_31():
    assert len(WEIGHTS) == 16
    assert len({w % 31 for w in WEIGHTS}) == 16
    assert all(w % 31 for w in WEIGHTS)


def test_every_single_substitution_changes_the_checksum_exhaustively():
    # A substitution at position i changes the weighted sum by w_i * (new - old);
    # for every position and every possible pair of symbols this is non-zero mod 31.
    for weight in WEIGHTS:
        for old in range(31):
            for new in range(31):
                if new != old:
                    assert weight * (new - old) % 31 != 0


def test_every_transposition_changes_the_checksum_exhaustively():
    # Swapping the symbols a, b at positions i, j changes the sum by (w_i - w_j) * (b - a).
    for (i, wi), (j, wj) in combinations(enumerate(WEIGHTS), 2):
        for a in range(31):
            for b in range(31):
                if a != b:
                    assert (wi - wj) * (b - a) % 31 != 0, (i, j)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(CODES)
def test_every_single_symbol_change_of_a_code_is_refused(code):
    assert code_normalise(code) == code
    for position in range(len(code)):
        for symbol in ALPHABET:
            if symbol == code[position]:
                continue
            typo = code[:position] + symbol + code[position + 1 :]
            assert refusal_of(typo) == "code_check_failed"


@settings(derandomize=True, max_examples=200, deadline=None)
@given(CODES)
def test_every_adjacent_transposition_of_a_code_is_refused(code):
    for position in range(len(code) - 1):
        a, b = code[position], code[position + 1]
        if a == b:
            continue
        swapped = code[:position] + b + a + code[position + 2 :]
        assert refusal_of(swapped) == "code_check_failed"


@settings(derandomize=True, max_examples=100, deadline=None)
@given(CODES)
def test_every_transposition_of_a_code_is_refused_even_non_adjacent(code):
    for i, j in combinations(range(len(code)), 2):
        if code[i] == code[j]:
            continue
        chars = list(code)
        chars[i], chars[j] = chars[j], chars[i]
        with pytest.raises(CodeInvalid):
            code_normalise("".join(chars))


def test_the_check_symbol_makes_the_weighted_sum_zero():
    code = "7KQ2M9XD4RTBHW3" + code_check_symbol("7KQ2M9XD4RTBHW3")
    assert sum(w * v for w, v in zip(WEIGHTS, values_of(code), strict=True)) % 31 == 0


# --- generation ---------------------------------------------------------------------------------


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(DIGIT_HEAVY_VALUES, min_size=15, max_size=45))
def test_generated_codes_pass_their_check_and_never_look_like_a_card_number(values):
    code = code_generate(randbelow=steered(values))
    assert len(code) == 16
    assert set(code) <= set(ALPHABET)
    assert code_normalise(code) == code
    assert sum(symbol.isalpha() for symbol in code) >= 2
    assert not contains_pan(code)
    assert not contains_pan(code_format(code))
    assert FORMATTED.match(code_format(code))


def test_real_generated_codes_are_valid_and_distinct():
    codes = [code_generate() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert code_normalise(code) == code
        assert code_issuable(code)
    # Every symbol turns up (the draw covers the whole alphabet).
    assert set("".join(codes)) == set(ALPHABET)


def test_a_card_like_code_is_drawn_again():
    # given a valid code made of digits that passes Luhn with a Visa prefix
    card_like = find_code(lambda c: c.isdigit() and luhn_valid(c), seed=1, digits_only=True)
    assert contains_pan(card_like)
    assert code_normalise(card_like) == card_like  # a valid code, just not issuable
    # when the draw first produces it, then an ordinary code
    ordinary = "7KQ2M9XD4RTBHW3"
    code = code_generate(randbelow=steered(values_of(card_like[:15]) + values_of(ordinary)))
    # then the card-like code is thrown away
    assert code == ordinary + code_check_symbol(ordinary)


def test_a_code_with_a_card_number_between_two_letters_is_not_issuable():
    # 14 digits between a leading letter and a letter check symbol: 2 letters, still card-like
    def card_inside(code: str) -> bool:
        return code[1:15].isdigit() and code[15].isalpha() and contains_pan(code)

    rng = random.Random(7)
    while True:
        body = "A4" + "".join(rng.choice("23456789") for _ in range(13))
        code = body + code_check_symbol(body)
        if card_inside(code):
            break
    assert sum(symbol.isalpha() for symbol in code) == 2
    assert not code_issuable(code)


def test_a_code_with_fewer_than_two_letters_is_drawn_again():
    one_letter = find_code(lambda c: sum(s.isalpha() for s in c) == 1 and not contains_pan(c), seed=3, digits_only=True)
    assert not code_issuable(one_letter)
    ordinary = "7KQ2M9XD4RTBHW3"
    code = code_generate(randbelow=steered(values_of(one_letter[:15]) + values_of(ordinary)))
    assert code == ordinary + code_check_symbol(ordinary)


# --- formatting and normalising -----------------------------------------------------------------


def test_format_groups_by_four_and_normalise_reverses_it():
    code = "7KQ2M9XD4RTBHW3" + code_check_symbol("7KQ2M9XD4RTBHW3")
    formatted = code_format(code)
    assert formatted == f"7KQ2-M9XD-4RTB-HW3{code[-1]}"
    assert code_format(formatted) == formatted
    assert code_normalise(formatted) == code


@pytest.mark.parametrize(
    "typed",
    [
        "{g}",
        "{g_lower}",
        "  {g}  ",
        "{spaced}",
        "{en_dashed}",
        "{nbsp}",
        "{mixed_case}",
    ],
)
def test_normalise_accepts_separators_and_lower_case(typed):
    code = code_generate()
    grouped = code_format(code)
    forms = {
        "g": grouped,
        "g_lower": grouped.lower(),
        "spaced": grouped.replace("-", " "),
        "en_dashed": grouped.replace("-", "\u2013"),
        "nbsp": grouped.replace("-", "\u00a0"),
        "mixed_case": "".join(c.lower() if i % 2 else c for i, c in enumerate(code)),
    }
    assert code_normalise(typed.format(**forms)) == code


@pytest.mark.parametrize("look_alike", ["0", "O", "o", "1", "I", "i", "L", "l"])
def test_look_alike_characters_are_refused_not_guessed(look_alike):
    code = code_generate()
    typo = look_alike + code[1:]
    assert refusal_of(typo) == "code_malformed"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ABC",
        "7KQ2M9XD4RTBHW3",  # 15 symbols
        "7KQ2M9XD4RTBHW3XX",  # 17 symbols
        "7KQ2_M9XD_4RTB_HW3C",
        "7KQ2.M9XD.4RTB.HW3C",
        "\u0131" * 16,  # dotless i: "ı".upper() == "I"
        "\u017f" * 16,  # long s: "ſ".upper() == "S"
        "\uff21" * 16,  # fullwidth A
        "\u0410" * 16,  # Cyrillic A
        "A" * 100_000,
        "-" * 10_000,
    ],
)
def test_malformed_text_is_refused(text):
    assert refusal_of(text) == "code_malformed"


@pytest.mark.parametrize("value", [None, 12345, b"7KQ2M9XD4RTBHW3C"])
def test_non_text_is_refused(value):
    assert refusal_of(value) == "code_malformed"


def test_the_refusal_never_contains_the_code():
    code = code_generate()
    typo = code[:-1] + next(s for s in ALPHABET if s != code[-1])
    for text, expected in [(typo, "code_check_failed"), (code + "Z", "code_malformed")]:
        with pytest.raises(CodeInvalid) as caught:
            code_normalise(text)
        assert caught.value.code == expected
        for shown in (str(caught.value), repr(caught.value), " ".join(map(str, caught.value.args))):
            assert code[:4] not in shown
            assert code[4:8] not in shown


@pytest.mark.parametrize("body", ["", "7KQ2M9XD4RTBHW", "7KQ2M9XD4RTBHW3C", "7KQ2M9XD4RTBHW0", "7kq2m9xd4rtbhw3"])
def test_check_symbol_refuses_a_malformed_body(body):
    with pytest.raises(CodeInvalid) as caught:
        code_check_symbol(body)
    assert caught.value.code == "code_malformed"


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_either_a_valid_code_or_refused_with_a_known_code(text):
    try:
        code = code_normalise(text)
    except CodeInvalid as exc:
        assert exc.code in {"code_malformed", "code_check_failed"}
    else:
        assert code_normalise(code) == code
