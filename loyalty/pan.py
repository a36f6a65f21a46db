"""Payment card number (PAN) detection. The product never stores or logs a PAN.

A value looks like a PAN when a run of 13 to 19 digits (spaces or dashes allowed
between them) passes the Luhn check and starts with a card-brand prefix (IIN).
Loyalty numbers are allocated from a non-payment prefix so they never match.
"""

from __future__ import annotations

import re

# Digits with optional single spaces or dashes between them, 13-19 digits in all.
PAN_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
# The same, standing alone: not glued to letters, as inside a hex or base64 token
# (a random 32-character hex key holds a card-like digit run about once in 500).
STANDALONE_PAN_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")

_BRAND_PREFIXES = (
    ("4",),  # Visa
    tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)),  # Mastercard
    ("34", "37"),  # Amex
    ("6011", "65") + tuple(str(p) for p in range(644, 650)),  # Discover
    tuple(str(p) for p in range(3528, 3590)),  # JCB
    ("300", "301", "302", "303", "304", "305", "36", "38", "39"),  # Diners
    ("62",),  # UnionPay
    ("50",) + tuple(str(p) for p in range(56, 70)),  # Maestro
)
_ALL_PREFIXES = tuple(p for group in _BRAND_PREFIXES for p in group)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def looks_like_pan(text: str) -> bool:
    """True if ``text`` (one candidate run) is a plausible payment card number."""
    digits = re.sub(r"[ -]", "", text)
    if not (13 <= len(digits) <= 19) or not digits.isdigit():
        return False
    return digits.startswith(_ALL_PREFIXES) and luhn_valid(digits)


def contains_pan(text: str, *, standalone: bool = False) -> bool:
    """True if any digit run inside ``text`` looks like a payment card number.

    ``standalone`` ignores digit runs glued to letters: for opaque tokens (keys, ids),
    where such runs are random, not card numbers someone typed.
    """
    pattern = STANDALONE_PAN_CANDIDATE if standalone else PAN_CANDIDATE
    return any(looks_like_pan(m.group(0)) for m in pattern.finditer(text))
