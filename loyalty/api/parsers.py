"""Strict JSON parsing for the API (``DEFAULT_PARSER_CLASSES``).

Kept free of other project imports: DRF imports it while defining ``APIView``.
"""

from __future__ import annotations

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


def _no_duplicate_keys(pairs: list) -> dict:
    # {"points": 1, "points": 9000}: parsers disagree on which wins; refuse it.
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def strict_json_loads(raw: bytes):
    """Parse UTF-8 JSON; refuse duplicate keys, NaN/Infinity and nesting deeper than
    ``MAX_JSON_DEPTH``. Raises ValueError (UnicodeDecodeError included) or RecursionError."""
    value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError("nested too deeply")
    return value


class StrictJSONParser(JSONParser):
    """DRF's JSON parser made strict (see ``strict_json_loads``); deep nesting is a 400,
    not a RecursionError and a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return strict_json_loads(stream.read())
        except (ValueError, RecursionError):
            raise ParseError() from None
