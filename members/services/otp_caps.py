"""Counters behind the per-sender caps on SMS code requests (issue 11, D8: "SMS pumping").

A fixed window per counter: ``window_hit`` counts one request for ``(scope, ident)`` in
the current window (``window_seconds`` long, aligned on the epoch, read from
``django.utils.timezone.now()``) and answers the count so far and the seconds until the
window ends. Over any hour a sender gets at most twice its cap (the end of one window
and the start of the next), and at most the cap within one window.

Where the counts live:

- Redis (``REDIS_URL``), shared by every web process: one ``INCR`` of a key named by
  the window, with its ``EXPIRE``, in a ``MULTI`` transaction, so parallel requests each
  get their own count and none slips past the cap (no read-then-write, unlike DRF's
  throttles, which SECURITY.md says not to rely on);
- without Redis (first run, demo) or while Redis does not answer: this process's
  memory, under a lock, so each process caps on its own (a broken Redis never lifts the
  cap altogether, nor refuses every request).

Keys hold a keyed hash of what is counted (``members.services.pii.blind_index``), never the
address or the device fingerprint itself.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings
from django.utils import timezone

from members.services.pii import blind_index

if TYPE_CHECKING:
    import redis

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

KEY_PREFIX = "loyalty:otp-cap:"
# Keys outlive their window by this much (the clock of the web process may be behind Redis's).
EXPIRY_MARGIN_SECONDS = 60
# The in-process fallback forgets everything beyond this many counters (a flood of
# addresses must not eat the memory); it then starts again from zero.
LOCAL_MAX_COUNTERS = 100_000


@dataclass(frozen=True)
class Hit:
    """One counted request: ``count`` in the window so far (this one included) and the
    whole seconds until the window ends (at least 1)."""

    count: int
    retry_after: int


def window_hit(*, scope: str, ident: str, window_seconds: int) -> Hit:
    """Count one request of ``ident`` (an address, a device fingerprint) under ``scope``
    in the current window; atomic (see the module docstring)."""
    now = timezone.now().timestamp()
    window = int(now // window_seconds)
    retry_after = max(1, math.ceil((window + 1) * window_seconds - now))
    key = f"{KEY_PREFIX}{scope}:{blind_index(f'otp_cap_{scope}', ident)}:{window}"
    _touched.set()
    if settings.REDIS_URL:
        try:
            return Hit(_redis_incr(key, expire=retry_after + EXPIRY_MARGIN_SECONDS), retry_after)
        except Exception as exc:  # the cap still holds, per process; never a 500
            logger.warning("otp request caps: Redis unavailable, counting in this process (%s)", type(exc).__name__)
    return Hit(_local_incr(key, window), retry_after)


def counters_clear() -> None:
    """Forget every count (tests start each case from zero; an operator lifting a cap)."""
    with _local_lock:
        _local.clear()
    if settings.REDIS_URL:
        client = _redis_client(settings.REDIS_URL)
        for keys in _batches(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000), 1000):
            client.delete(*keys)
    _touched.clear()


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def counters_touched() -> bool:
    """True when this process counted anything since the last ``counters_clear``."""
    return _touched.is_set()


_touched = threading.Event()

# --- Redis ---------------------------------------------------------------------------------

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis_client(url: str) -> redis.Redis:
    with _clients_lock:
        if url not in _clients:
            import redis

            _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return _clients[url]


def _redis_incr(key: str, *, expire: int) -> int:
    # MULTI/EXEC: the increment and its expiry are one step, so no key is left without one.
    pipe = _redis_client(settings.REDIS_URL).pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, expire)
    count, _ = pipe.execute()
    return int(count)


# --- in-process fallback -------------------------------------------------------------------

_local: dict[str, tuple[int, int]] = {}  # key -> (window, count)
_local_lock = threading.Lock()


def _local_incr(key: str, window: int) -> int:
    with _local_lock:
        if len(_local) >= LOCAL_MAX_COUNTERS:
            for stale in [k for k, (w, _) in _local.items() if w < window]:
                del _local[stale]
            if len(_local) >= LOCAL_MAX_COUNTERS:
                _local.clear()
        _, count = _local.get(key, (window, 0))
        _local[key] = (window, count + 1)
        return count + 1
