"""Voucher codes: random, readable aloud, with a check character.

A code is 15 random symbols and 1 check symbol from a 31-symbol alphabet without
look-alike characters (no 0/O, no 1/I/L). It is stored and compared in its normalised
form (16 upper-case symbols, no separators) and shown grouped (``7KQ2-M9XD-4RTB-HW3C``).

The check symbol makes ``sum(weight[i] * value[i]) % 31 == 0`` over all 16 positions,
with the weights 16, 15, ..., 1 (the check symbol's weight is 1). Because 31 is prime
and the weights are distinct and non-zero mod 31:

- a single changed symbol changes the sum by ``w * (v' - v)``, and neither factor is
  0 mod 31, so the product is not 0 mod 31: every substitution is caught;
- swapping the symbols at positions i and j changes the sum by
  ``(w_i - w_j) * (v_j - v_i)``, again a product of two non-zero residues: every
  transposition of two different symbols is caught, adjacent or not.

So a mistyped code is refused by ``code_normalise`` before any database lookup. The
code itself never appears in an exception message or a log line: it is a bearer
secret until it is redeemed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from loyalty.kernel.pan import contains_pan

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BASE = len(ALPHABET)  # 31, a prime
BODY_LENGTH = 15
CODE_LENGTH = BODY_LENGTH + 1
GROUP = 4
MIN_LETTERS = 2
# Longer input is refused before it is looked at (a formatted code is 19 characters).
MAX_INPUT_LENGTH = 64
# Separators people type or paste between groups: spaces, tabs and dash look-alikes.
SEPARATORS = frozenset(" \t\r\n-\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")

_VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Position i (0-based, over all 16 symbols) has weight 16 - i; the check symbol has 1.
WEIGHTS = tuple(range(CODE_LENGTH, 0, -1))


class CodeInvalid(ValueError):
    """A voucher code was refused before any lookup.

    ``code`` is ``code_malformed`` (wrong length or characters) or
    ``code_check_failed`` (the check character does not match). The message never
    contains the code.
    """

    MESSAGES = {
        "code_malformed": "The voucher code is not in the expected form.",
        "code_check_failed": "The voucher code has a typing error (its check character does not match).",
    }

    def __init__(self, code: str):
        self.code = code
        super().__init__(self.MESSAGES[code])


def code_check_symbol(body: str) -> str:
    """The check symbol for a 15-symbol body (upper case, from ``ALPHABET``).

    Raises CodeInvalid(``code_malformed``) if the body has the wrong length or a symbol
    outside the alphabet.
    """
    if len(body) != BODY_LENGTH or any(symbol not in _VALUES for symbol in body):
        raise CodeInvalid("code_malformed")
    total = sum(weight * _VALUES[symbol] for weight, symbol in zip(WEIGHTS, body, strict=False))
    # The check symbol's weight is 1, so its value is whatever brings the sum to 0.
    return ALPHABET[-total % BASE]


def _group(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def code_format(code: str) -> str:
    """The code in groups of 4 joined by "-", for printing and reading aloud.

    Accepts the plain or an already grouped code; raises CodeInvalid like
    ``code_normalise`` for anything that is not a valid code.
    """
    return _group(code_normalise(code))


def code_issuable(code: str) -> bool:
    """True if a (valid, normalised) code may be handed out: it holds at least 2
    letters and neither its plain nor its grouped form looks like a card number."""
    letters = sum(symbol.isalpha() for symbol in code)
    return letters >= MIN_LETTERS and not contains_pan(code) and not contains_pan(_group(code))


def code_generate(*, randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A new normalised code (16 symbols: 15 from ``secrets`` plus the check symbol).

    Codes that could be mistaken for a card number, or have fewer than 2 letters, are
    thrown away and drawn again (about 1 draw in 55 million has fewer than 2 letters; a
    card-like code is rarer still). ``randbelow`` exists for tests that need to steer
    the draw; production callers never pass it.
    Uniqueness is the caller's business (a unique constraint on the stored code).
    """
    while True:
        body = "".join(ALPHABET[randbelow(BASE)] for _ in range(BODY_LENGTH))
        code = body + code_check_symbol(body)
        if code_issuable(code):
            return code


def code_normalise(text: str) -> str:
    """The normalised code (16 upper-case symbols) from what a person typed or scanned.

    Spaces and dashes are dropped and lower case is accepted. Nothing else is mapped:
    ``0``, ``O``, ``1``, ``I`` and ``L`` are not in the alphabet, and guessing which
    symbol was meant could turn one mistyped code into someone else's valid one, so
    they are refused. Non-ASCII text is refused before upper-casing (``"ı".upper()``
    is ``"I"``, ``"ſ".upper()`` is ``"S"``).

    Raises CodeInvalid with ``code_malformed`` (wrong length or characters) or
    ``code_check_failed`` (wrong check character). Runs before any database lookup.
    """
    if not isinstance(text, str) or len(text) > MAX_INPUT_LENGTH:
        raise CodeInvalid("code_malformed")
    code = "".join(char for char in text if char not in SEPARATORS)
    if not code.isascii():
        raise CodeInvalid("code_malformed")
    code = code.upper()
    if len(code) != CODE_LENGTH or any(symbol not in _VALUES for symbol in code):
        raise CodeInvalid("code_malformed")
    if code_check_symbol(code[:BODY_LENGTH]) != code[BODY_LENGTH]:
        raise CodeInvalid("code_check_failed")
    return code
