"""JSON answers whose bytes depend only on their content, not on how it was built.

A till write's answer is saved under its Idempotency-Key (a ``jsonb`` column, which keeps
an object's keys in its own order: shorter keys first) and a retry answers the saved
body. With keys in the order the service happened to build them, the retry's bytes
would differ from the first answer's although the content is the same; with keys
sorted at every level, the first answer and every replay are the same bytes.
"""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer


def keys_sorted(value: Any) -> Any:
    """``value`` with every object's keys in sorted order (lists keep theirs)."""
    if isinstance(value, dict):
        return {str(key): keys_sorted(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [keys_sorted(item) for item in value]
    return value


class CanonicalJSONRenderer(JSONRenderer):
    """DRF's JSON renderer over the answer with its keys sorted (``keys_sorted``)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return super().render(keys_sorted(data), accepted_media_type, renderer_context)
