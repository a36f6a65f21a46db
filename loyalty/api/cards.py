"""Card numbers are refused at the door, before a body is used for anything.

``card_numbers_refuse`` runs before a request body is parsed for use, validated or
stored: every string, number and key anywhere in the JSON body (and the raw body
text, which also covers bodies that are not JSON) goes through the PAN detector
(``loyalty.pan``, SECURITY.md §3). A hit answers 422 ``card_number_refused`` naming
only the field path; the value is never logged, echoed or stored.

Before the detector, text is normalised so that look-alike digits do not slip
through: every Unicode decimal digit becomes its ASCII digit (fullwidth ``４``,
Arabic-Indic ``٤``) and invisible format characters (zero-width spaces) are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata

from loyalty.api.errors import CardNumberRefused
from loyalty.api.parsers import strict_json_loads
from loyalty.pan import contains_pan
from staffauth.models import SecurityEvent
from staffauth.services import security_event_record

logger = logging.getLogger("loyalty.api.till")

MAX_PATH_PART = 64
# A canonical UUID (8-4-4-4-12 hex) is exempt in the Idempotency-Key header only: the
# detector allows a dash between any two digits, so about 1 UUID in 1,100 has an
# all-digit 8-4-4 prefix that passes Luhn with a brand prefix, and no card is ever
# written in 8-4-4 groups. Anything else in the header is checked like the body.
UUID_FORMAT = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def _normalise(text: str) -> str:
    if text.isascii():
        return text
    out = []
    for char in text:
        digit = unicodedata.decimal(char, None)
        if digit is not None:
            out.append(str(digit))
        elif unicodedata.category(char) != "Cf":
            out.append(char)
    return "".join(out)


def text_has_pan(text: str, *, standalone: bool = False) -> bool:
    return contains_pan(_normalise(text), standalone=standalone)


# --- The card-number guard -----------------------------------------------------------------


def _part(key: str) -> str:
    if text_has_pan(key):
        return "[key withheld]"
    return key if len(key) <= MAX_PATH_PART else key[:MAX_PATH_PART] + "…"


def find_card_number(value) -> str | None:
    """The path (``items[0].note``) of the first key, string or number in ``value``
    that looks like a card number, or None. Iterative: any depth, no recursion."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{_part(key)}" if path else _part(key)
                if text_has_pan(key):
                    return child_path
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
        elif isinstance(item, str | int | float) and not isinstance(item, bool) and text_has_pan(str(item)):
            return path or "(body)"
    return None


def card_numbers_refuse(request, *, path_values: dict, till=None) -> None:
    """Raise CardNumberRefused if the body, the Idempotency-Key header or a path value
    looks like it holds a card number. Logs the field path only."""
    field = None
    body = request.body
    if body:
        with contextlib.suppress(ValueError, RecursionError):  # not JSON: the raw check below applies
            field = find_card_number(strict_json_loads(body))
        if field is None and text_has_pan(body.decode("utf-8", errors="replace")):
            field = "(body)"
    key = request.headers.get("Idempotency-Key")
    # The key is an opaque token: digit runs inside hex or base64 are random, not cards.
    if field is None and key and not UUID_FORMAT.match(key) and text_has_pan(key, standalone=True):
        field = "header:Idempotency-Key"
    if field is None:
        field = next((f"path:{name}" for name, value in path_values.items() if text_has_pan(str(value))), None)
    if field is None:
        return
    security_event_record(
        kind=SecurityEvent.Kind.CARD_NUMBER_REFUSED, detail={"field": field, "till_id": getattr(till, "pk", None)}
    )
    logger.warning(
        "card number refused in %s",
        field,
        extra={"event": "card_number_refused", "field": field, "till_id": getattr(till, "pk", None)},
    )
    raise CardNumberRefused(detail={"field": field})
