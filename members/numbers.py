"""Loyalty numbers: 16 digits, random, from a prefix no payment card uses.

``99`` + 13 random digits + a Luhn check digit. The check digit catches a mistyped
number before any look-up; the ``99`` prefix is outside every card brand's range, so
the card-number (PAN) detector never mistakes a loyalty number for a card.
"""

from __future__ import annotations

import secrets

from loyalty.kernel.pan import luhn_valid

PREFIX = "99"
LENGTH = 16


def check_digit(partial: str) -> str:
    """The Luhn check digit completing ``partial``."""
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise AssertionError("unreachable: one digit always completes a Luhn number")


def loyalty_number_generate() -> str:
    body = PREFIX + "".join(secrets.choice("0123456789") for _ in range(LENGTH - len(PREFIX) - 1))
    return body + check_digit(body)


def loyalty_number_is_well_formed(value: str) -> bool:
    # isascii: str.isdigit() also accepts fullwidth and other scripts' digits.
    return (
        len(value) == LENGTH and value.isascii() and value.isdigit() and value.startswith(PREFIX) and luhn_valid(value)
    )
