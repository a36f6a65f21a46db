"""Enumeration guard (FRAUD.md §1 row 25): a client that keeps getting "not found" from
the API's lookups is probing for loyalty numbers or voucher codes.

``ApiEnumerationGuardMiddleware`` counts, per client and fixed window, the client's
requests under ``/api/v1/`` and the 404s it was answered (every 404 there is a lookup's:
a member, a voucher, a hold, a redemption, a reward). When a window holds at least
``enumeration_404s`` 404s and they are at least ``enumeration_share_percent`` of the
client's requests, the client is answered 429 ``too_many_not_found`` for
``enumeration_block_seconds`` (before any view runs) and a fraud alert
``enumeration_404`` is raised (medium; high once the client's 404s in the clock hour
reach ``enumeration_404s_per_hour_high``, when a person revokes the credential).
Numbers: ``settings.FRAUD_ENFORCEMENT``.

The client is the till (its ``X-Till-Key``), else the member session (the session id in
a validly signed access token), else the network the request came from (its /24, or
/48 for IPv6: CGNAT and privacy addresses make single addresses meaningless). Counters
and alert facts hold a keyed hash of that, never an address, a key or a token. A
claimed till key cannot be counted by someone else: a request whose signature fails is
answered 401, never 404; at worst a forger is blocked along with the till it names.

Counting costs one Redis round trip per API request (a pipeline: the block check and the
request count) and one more per 404. Without Redis (first runs, some tests) Django's
cache counts in the process.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import JsonResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from fraud.scoring import Subject
from fraud.services import alert_raise
from loyalty.api.auth import HEADER_KEY
from loyalty.kernel.statuses import REFUSAL_STATUS, error_body
from members.services.sessions import ACCESS_SIGNING_SALT
from staffauth.net import client_ip

logger = logging.getLogger(__name__)

COUNTED_PREFIX = "/api/v1/"
KEY_PREFIX = "loyalty:enum:"
CODE = "too_many_not_found"
MESSAGE = "Too many requests for things that do not exist; try again later."
ALERT_KIND = "enumeration_404"
HASH_SALT = "loyalty.api.enumeration"  # a key-derivation salt: never renamed with the module


@dataclass(frozen=True)
class Client:
    kind: str  # till | session | network
    digest: str  # keyed hash of the till key id, session id or network


def _conf(name: str) -> int:
    return int(settings.FRAUD_ENFORCEMENT[name])


def _digest(value: str) -> str:
    return salted_hmac(HASH_SALT, value, algorithm="sha256").hexdigest()[:32]


def network_of(address: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of ``address``; "unknown" without one."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def client_of(request) -> Client:
    """Who is asking (see the module docstring), without a query."""
    if key_id := request.headers.get(HEADER_KEY, "").strip():
        return Client("till", _digest(f"till:{key_id[:64]}"))
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Bearer" and token.strip():
        try:
            session_id = str(signing.loads(token.strip(), salt=ACCESS_SIGNING_SALT)["s"])
        except (signing.BadSignature, KeyError, TypeError, ValueError):
            pass
        else:
            return Client("session", _digest(f"session:{session_id}"))
    return Client("network", _digest(f"network:{network_of(client_ip(request))}"))


# --- counters -----------------------------------------------------------------------------

_redis_clients: dict[str, Any] = {}
_redis_lock = threading.Lock()


def _redis() -> Any | None:
    url = settings.REDIS_URL
    if not url:
        return None
    with _redis_lock:
        if url not in _redis_clients:
            import redis

            _redis_clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return _redis_clients[url]


def _keys(client: Client, now: float) -> dict[str, str]:
    window = int(now // _conf("enumeration_window_seconds"))
    hour = int(now // 3600)
    base = f"{KEY_PREFIX}{client.kind}:{client.digest}"
    return {
        "block": f"{base}:block",
        "requests": f"{base}:req:{window}",
        "not_found": f"{base}:404:{window}",
        "hour": f"{base}:404h:{hour}",
        "window": str(window),
        "hour_no": str(hour),
    }


def _blocked_and_count(keys: dict[str, str]) -> tuple[int | None, int]:
    """(seconds the client stays blocked or None, its requests in the window so far)."""
    expire = _conf("enumeration_window_seconds") + 60
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=True)
        pipe.get(keys["block"])
        pipe.incr(keys["requests"])
        pipe.expire(keys["requests"], expire)
        until, requests, _ = pipe.execute()
    else:
        until = cache.get(keys["block"])
        cache.add(keys["requests"], 0, expire)
        requests = cache.incr(keys["requests"])
    # The block holds its end time (the key outlives it a little): this clock decides.
    left = math.ceil(float(until) - time.time()) if until else 0
    return (left if left > 0 else None), int(requests)


def _count_not_found(keys: dict[str, str]) -> tuple[int, int]:
    """Count one 404: (404s in the window, 404s in the clock hour)."""
    expire = _conf("enumeration_window_seconds") + 60
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=True)
        pipe.incr(keys["not_found"])
        pipe.expire(keys["not_found"], expire)
        pipe.incr(keys["hour"])
        pipe.expire(keys["hour"], 3600 + 60)
        in_window, _, in_hour, _ = pipe.execute()
        return int(in_window), int(in_hour)
    cache.add(keys["not_found"], 0, expire)
    cache.add(keys["hour"], 0, 3600 + 60)
    return cache.incr(keys["not_found"]), cache.incr(keys["hour"])


def _block(keys: dict[str, str]) -> None:
    seconds = _conf("enumeration_block_seconds")
    until = time.time() + seconds
    client = _redis()
    if client is not None:
        client.set(keys["block"], repr(until), ex=seconds + 60)
    else:
        cache.set(keys["block"], until, seconds + 60)


_touched = threading.Event()


def counters_clear() -> None:
    """Forget every count and block, and every reveal throttle kept in the cache (tests;
    an operator lifting a block)."""
    client = _redis()
    if client is not None:
        keys = list(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    cache.clear()
    _touched.clear()


def counters_touched() -> bool:
    """True when this process counted anything since the last ``counters_clear``."""
    return _touched.is_set()


# --- the decision ---------------------------------------------------------------------------


def _judge(client: Client, keys: dict[str, str], requests: int) -> None:
    in_window, in_hour = _count_not_found(keys)
    facts = {
        "client_kind": client.kind,
        "client_hash": client.digest,
        "not_found": in_window,
        "requests": requests,
        "window_seconds": _conf("enumeration_window_seconds"),
        "not_found_hour": in_hour,
    }
    tripped = (
        in_window >= _conf("enumeration_404s") and in_window * 100 >= _conf("enumeration_share_percent") * requests
    )
    if tripped:
        _block(keys)
        _alert(client, f"{ALERT_KIND}:{client.digest}:{keys['window']}", "medium", facts)
    if in_hour >= _conf("enumeration_404s_per_hour_high"):
        _alert(client, f"{ALERT_KIND}:{client.digest}:h{keys['hour_no']}", "high", facts)


def _alert(client: Client, dedupe_key: str, severity: str, facts: dict[str, Any]) -> None:
    """The alert with its signal on the client (``client:<kind>:<digest>``): the client's
    risk score and case carry it, as every other detector's do."""
    try:
        alert_raise(
            detector=ALERT_KIND, subjects=[Subject.client(f"{client.kind}:{client.digest}")], facts=facts,
            occurred_at=timezone.now(), dedupe_key=dedupe_key, severity=severity,
        )  # fmt: skip
    except Exception:  # the alert must never turn the answer into a 500
        logger.exception("enumeration alert could not be raised")


def too_many_not_found(retry_after: int) -> JsonResponse:
    response = JsonResponse(error_body(CODE, MESSAGE), status=REFUSAL_STATUS[CODE])
    response["Retry-After"] = str(max(1, retry_after))
    response["Cache-Control"] = "no-store"
    return response


class ApiEnumerationGuardMiddleware:
    """See the module docstring. Under ``/api/v1/`` only; a Redis failure counts nothing
    and blocks nobody (logged), never a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(COUNTED_PREFIX):
            return self.get_response(request)
        client = client_of(request)
        keys = _keys(client, time.time())
        _touched.set()
        try:
            blocked_for, requests = _blocked_and_count(keys)
        except Exception as exc:
            logger.warning("enumeration guard: counters unavailable (%s)", type(exc).__name__)
            return self.get_response(request)
        if blocked_for is not None:
            return too_many_not_found(blocked_for)
        response = self.get_response(request)
        if response.status_code == 404:
            try:
                _judge(client, keys, requests)
            except Exception as exc:
                logger.warning("enumeration guard: counters unavailable (%s)", type(exc).__name__)
        return response
