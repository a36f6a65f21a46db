"""Card numbers (and other text nobody may store) are refused at the door, by every API.

- ``card_numbers_refuse`` (the till API) runs before a request body is parsed for use,
  validated or stored: every string, number and key anywhere in the JSON body (and the
  raw body text, which also covers bodies that are not JSON), the Idempotency-Key header
  and path values go through the PAN detector (``loyalty.kernel.pan``, SECURITY.md §3).
- ``free_text_refuse`` guards one free-text value of any API (``StrictCharField`` calls
  it for every field not marked ``free_text=False``): a card number, a bidi control or
  an invisible character (``loyalty.kernel.freetext``) is refused with its own code.
- ``ApiRequestGuardMiddleware`` (``loyalty.api.middleware``) refuses card-like query
  values before any view or log line sees them.

A card number answers 422 ``card_number_refused`` naming only the field; the value is
never logged, echoed or stored. Each is also a ``card_number_refused`` security event.
"""

from __future__ import annotations

import contextlib
import logging
import re

from loyalty.api.errors import BidiControlRefused, CardNumberRefused, InvisibleCharacterRefused
from loyalty.api.parsers import strict_json_loads
from loyalty.kernel.freetext import BIDI_CONTROL, CARD_NUMBER, free_text_refusal
from loyalty.kernel.pan import contains_pan
from staffauth.models import SecurityEvent
from staffauth.services import security_event_record

logger = logging.getLogger("loyalty.api.input")

MAX_PATH_PART = 64
# A canonical UUID (8-4-4-4-12 hex) is exempt in the Idempotency-Key header only: the
# detector allows a dash between any two digits, so about 1 UUID in 1,100 has an
# all-digit 8-4-4 prefix that passes Luhn with a brand prefix, and no card is ever
# written in 8-4-4 groups. Anything else in the header is checked like the body.
UUID_FORMAT = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def idempotency_key_has_pan(key: str) -> bool:
    """The Idempotency-Key header (either API) holds a card number. The key is an opaque
    token: digit runs glued to letters (inside hex or base64) are random, not cards."""
    return bool(key) and not UUID_FORMAT.match(key) and contains_pan(key, standalone=True)


def card_number_refusal(field: str, *, till=None) -> CardNumberRefused:
    """The refusal to raise for a card number in ``field``, recorded (security event) and
    logged with the field's name only."""
    till_id = getattr(till, "pk", None)
    security_event_record(kind=SecurityEvent.Kind.CARD_NUMBER_REFUSED, detail={"field": field, "till_id": till_id})
    logger.warning(
        "card number refused in %s", field, extra={"event": "card_number_refused", "field": field, "till_id": till_id}
    )
    return CardNumberRefused(detail={"field": field})


def free_text_refuse(value: str, *, field: str) -> None:
    """Raise the API refusal for ``value`` if it is not acceptable free text
    (``loyalty.kernel.freetext``): 422 ``card_number_refused``, 400 ``bidi_control_refused`` or
    400 ``invisible_character_refused``, with ``detail`` ``{"field": field}``."""
    refusal = free_text_refusal(value)
    if refusal is None:
        return
    if refusal.code == CARD_NUMBER:
        raise card_number_refusal(field)
    logger.info("%s in %s", refusal.code, field, extra={"event": refusal.code, "field": field})
    raise (BidiControlRefused if refusal.code == BIDI_CONTROL else InvisibleCharacterRefused)(detail={"field": field})


# --- The card-number guard -----------------------------------------------------------------


def _part(key: str) -> str:
    if contains_pan(key):
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
                if contains_pan(key):
                    return child_path
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
        elif isinstance(item, str | int | float) and not isinstance(item, bool) and contains_pan(str(item)):
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
        if field is None and contains_pan(body.decode("utf-8", errors="replace")):
            field = "(body)"
    if field is None and idempotency_key_has_pan(request.headers.get("Idempotency-Key", "")):
        field = "header:Idempotency-Key"
    if field is None:
        field = next((f"path:{name}" for name, value in path_values.items() if contains_pan(str(value))), None)
    if field is not None:
        raise card_number_refusal(field, till=till)
