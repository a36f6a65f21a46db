"""Payment card number (PAN) detection: the product's one detector. It never stores or logs a PAN.

The rule (SECURITY.md §3): a run of 13 to 19 digits, single spaces or dashes allowed
between them, that passes the Luhn check and starts with a card-brand prefix (IIN).
Loyalty numbers are allocated from a non-payment prefix (``99``) so they never match.

Text is normalised before the rule applies, so look-alikes do not slip through: NFKC
(fullwidth ``４`` and ``－``), then every other Unicode decimal digit becomes its ASCII
digit (Arabic-Indic ``٤``), every other space its ASCII space, every dash a ``-``, and
invisible format characters (zero-width spaces, bidi controls) are dropped.

Inside a run of digit groups (``4111 1111 1111 1111 123``, a card and its CVV, or
``card 4111 1111 1111 1111 12 29``), every stretch of whole groups holding 13 to 19
digits is a candidate, so digits typed after a card number do not hide it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

MIN_DIGITS = 13
MAX_DIGITS = 19
# A maximal run of ASCII digit groups separated by single spaces or dashes (after normalisation).
_RUN = re.compile(r"(?<![0-9])[0-9]+(?:[ -][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_GLUE = re.compile(r"[0-9A-Za-z]")

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


def normalise(text: str) -> str:
    """``text`` as the detector reads it (see the module docstring). ASCII text is unchanged."""
    if text.isascii():
        return text
    out = []
    for char in unicodedata.normalize("NFKC", text):
        if char.isascii():
            out.append(char)
            continue
        digit = unicodedata.decimal(char, None)
        category = unicodedata.category(char)
        if digit is not None:
            out.append(str(digit))
        elif category == "Zs":
            out.append(" ")
        elif category == "Pd" or char == "\u2212":  # dashes, and the minus sign
            out.append("-")
        elif category != "Cf":
            out.append(char)
    return "".join(out)


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


def _is_pan(digits: str) -> bool:
    return (
        MIN_DIGITS <= len(digits) <= MAX_DIGITS
        and digits.isascii()
        and digits.isdigit()
        and digits.startswith(_ALL_PREFIXES)
        and luhn_valid(digits)
    )


def looks_like_pan(text: str) -> bool:
    """True if ``text``, as a whole (separators aside), is a plausible payment card number."""
    return _is_pan(re.sub(r"[ -]", "", normalise(text)))


def _pan_spans(text: str, *, standalone: bool) -> Iterator[tuple[int, int]]:
    """(start, end) of each card number found in ``text`` (already normalised)."""
    for run in _RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in _GROUP.finditer(run.group(0))]
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                digits += text[groups[last][0] : groups[last][1]]
                if len(digits) > MAX_DIGITS:
                    break
                start, end = groups[first][0], groups[last][1]
                if standalone and (
                    (start > 0 and _GLUE.match(text[start - 1])) or (end < len(text) and _GLUE.match(text[end]))
                ):
                    continue
                if _is_pan(digits):
                    yield start, end
                    break


def contains_pan(text: str, *, standalone: bool = False) -> bool:
    """True if any digit run inside ``text`` holds a payment card number.

    ``standalone`` ignores digit runs glued to letters: for opaque tokens (keys, ids),
    where such runs are random, not card numbers someone typed (a random 32-character
    hex key holds a card-like digit run about once in 500).
    """
    return next(_pan_spans(normalise(text), standalone=standalone), None) is not None


def redact_pans(text: str, replacement: str = "[REDACTED]") -> str:
    """``text`` with each card number replaced. Text holding one is returned normalised
    (its look-alike digits as ASCII); any other text is returned unchanged."""
    normalised = normalise(text)
    spans = list(_pan_spans(normalised, standalone=False))
    if not spans:
        return text
    out, position = [], 0
    for start, end in spans:
        if end <= position:  # inside the previous one (a later window of the same run)
            continue
        start = max(start, position)
        out.append(normalised[position:start])
        out.append(replacement)
        position = max(position, end)
    out.append(normalised[position:])
    return "".join(out)
