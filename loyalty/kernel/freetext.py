"""What free text may hold, wherever it comes in (API fields, admin forms, stored headers).

Free text is refused, with a stable code per reason, when it holds:

- ``card_number_refused``: a payment card number (``loyalty.kernel.pan``, SECURITY.md §3: the
  product stays out of PCI scope by never storing one);
- ``bidi_control_refused``: a bidirectional embedding, override or isolate (U+202A to
  U+202E, U+2066 to U+2069), which makes text display in another order than it is stored
  (a name that reads differently in the admin);
- ``invisible_character_refused``: a zero-width character (U+200B to U+200D, U+2060,
  U+FEFF), which makes two different values look the same.

The card check comes first: ``4111<U+200B>1111…`` is a card number, not merely an
invisible character. Callers report the field, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyalty.kernel.pan import contains_pan

CARD_NUMBER = "card_number_refused"
BIDI_CONTROL = "bidi_control_refused"
INVISIBLE_CHARACTER = "invisible_character_refused"

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
INVISIBLE_CHARACTERS = frozenset("\u200b\u200c\u200d\u2060\ufeff")

MESSAGES = {
    CARD_NUMBER: "A value looks like a payment card number. Card numbers are never accepted.",
    BIDI_CONTROL: "Text direction control characters (U+202A-U+202E, U+2066-U+2069) are not allowed.",
    INVISIBLE_CHARACTER: "Invisible characters (zero-width spaces and joiners, U+2060, U+FEFF) are not allowed.",
}


@dataclass(frozen=True)
class FreeTextRefusal:
    code: str

    @property
    def message(self) -> str:
        return MESSAGES[self.code]


def free_text_refusal(value: str) -> FreeTextRefusal | None:
    """Why ``value`` may not be taken as free text, or None if it may."""
    if contains_pan(value):
        return FreeTextRefusal(CARD_NUMBER)
    if value.isascii():
        return None
    characters = set(value)
    if characters & BIDI_CONTROLS:
        return FreeTextRefusal(BIDI_CONTROL)
    if characters & INVISIBLE_CHARACTERS:
        return FreeTextRefusal(INVISIBLE_CHARACTER)
    return None
