"""Till authentication: every request is signed with the till's own secret.

A till sends three headers:

- ``X-Till-Key``: its public key id (``Till.key_id``);
- ``X-Timestamp``: the current time in whole Unix seconds;
- ``X-Signature``: lowercase hex HMAC-SHA256, keyed with the till's secret (its UTF-8
  bytes), over ``f"{timestamp}\\n{METHOD}\\n{path}\\n"`` followed by the raw body bytes.
  ``path`` is the request target exactly as the till sent it on the request line: the
  path with the query string if there is one, its percent-encoding untouched (no
  decoding, no re-encoding, no normalising); ``METHOD`` is upper case.

The server verifies over the same bytes (``request_target``): the raw target its WSGI
server reports (gunicorn's ``RAW_URI``, or ``REQUEST_URI``), not Django's re-encoded
path, so a till that encodes a character Django would not (``%2D`` for ``-``) or leaves
one unencoded that Django would encode (``;``, ``=``) is not refused. A server that
gives no raw target is verified against ``SCRIPT_NAME`` + ``PATH_INFO`` percent-encoded
in RFC 3986's normal form (only what a path may not contain, upper-case hex) and the
query string as received. A proxy in front must pass the request URI on unchanged.

The signature is compared in constant time, then the timestamp must be within
``TILL_SIGNATURE_MAX_SKEW_SECONDS`` (default 300) of the server's clock, so a captured
request cannot be replayed later. Within the window, replays are harmless: every write
carries an Idempotency-Key, and a receipt earns once whatever the key.

Secrets are stored encrypted (``loyalty.kernel.crypto``, MultiFernet) because the server must
read them to check signatures. Tills are not users: ``request.user`` stays unset
(``UNAUTHENTICATED_USER``) and ``request.auth`` is the ``Till``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from loyalty.api.errors import IpNotAllowed
from loyalty.api.limits import till_body_read as _read_body
from loyalty.kernel.crypto import DecryptionFailed, decrypt_str, encrypt_str
from loyalty.kernel.models import Store, Till
from staffauth.models import SecurityEvent
from staffauth.net import client_ip
from staffauth.services import security_event_record

logger = logging.getLogger("loyalty.api.till")

HEADER_KEY = "X-Till-Key"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_SIGNATURE = "X-Signature"
SCHEME = "Till-HMAC-SHA256"
TILL_CODE_FORMAT = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z")
_KEY_ID_FORMAT = re.compile(r"\A[!-~]{1,40}\Z")
_TIMESTAMP_FORMAT = re.compile(r"\A[0-9]{1,12}\Z")
_SIGNATURE_FORMAT = re.compile(r"\A[0-9a-fA-F]{64}\Z")


def signature_compute(*, secret: str, timestamp: str, method: str, path: str | bytes, body: bytes) -> str:
    """The hex signature a till sends for this request (``path``: the request target as
    sent; bytes as they were on the wire, or a str encoded as UTF-8)."""
    target = path if isinstance(path, bytes) else path.encode()
    message = f"{timestamp}\n{method.upper()}\n".encode() + target + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# RFC 3986 pchar (unreserved, sub-delims, ":" and "@") and the "/" between segments: what
# a path may hold unencoded. Everything else is percent-encoded (upper-case hex).
_PATH_SAFE = "-._~" + "!$&'()*+,;=" + ":@" + "/"


def _wsgi_bytes(value: str) -> bytes:
    """A WSGI environ string as the bytes that were on the wire (PEP 3333: latin-1)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # not a server's value (a test's environ): its UTF-8
        return value.encode()


def request_target(request) -> bytes:
    """The request target (path and query string) exactly as the client sent it, which
    is what a till signs (module docstring).

    ``RAW_URI`` (gunicorn) or ``REQUEST_URI`` (uWSGI, Apache, werkzeug) when the server
    gives it, an absolute-form target (``http://host/path``) reduced to its path and
    query. Otherwise rebuilt from ``SCRIPT_NAME`` + ``PATH_INFO`` (decoded by the
    server and by Django, re-encoded here as UTF-8 in RFC 3986's normal form) and
    ``QUERY_STRING`` (never decoded by a WSGI server, so used as received).
    """
    meta = request.META
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if raw:
        target = _wsgi_bytes(raw)
        if not target.startswith(b"/"):
            parts = urlsplit(target)
            if parts.scheme and parts.netloc:
                target = urlunsplit((b"", b"", parts.path or b"/", parts.query, b""))
        return target
    # request.path: SCRIPT_NAME + PATH_INFO as Django decoded them (UTF-8).
    target = quote(request.path.encode(), safe=_PATH_SAFE).encode("ascii")
    query = meta.get("QUERY_STRING", "")
    return target + b"?" + _wsgi_bytes(query) if query else target


def till_create(
    *, store: Store, code: str, allowed_ips: list[str] | None = None, key_id: str | None = None
) -> tuple[Till, str]:
    """Create a till with a fresh key id (or ``key_id``, e.g. the demo's published one)
    and secret (from ``secrets``); the secret is stored encrypted and returned once, in
    plain, for the caller to hand over.

    Raises ValueError for a malformed till code or allow-list entry.
    """
    if not TILL_CODE_FORMAT.match(code):
        raise ValueError("a till code is 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit")
    networks = [str(ipaddress.ip_network(entry.strip(), strict=False)) for entry in allowed_ips or []]
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        till = Till.objects.create(
            store=store,
            code=code,
            key_id=key_id or f"tk_{secrets.token_hex(16)}",
            secret_encrypted=encrypt_str(secret),
            allowed_ips=networks,
        )
    return till, secret


def _refuse(code: str, message: str, *, till: Till | None = None, request=None) -> exceptions.AuthenticationFailed:
    # Only the reason, the till (when known) and the caller's address: never header values.
    security_event_record(
        kind=SecurityEvent.Kind.TILL_AUTH_FAILED, detail={"reason": code, "till_id": getattr(till, "pk", None)}
    )
    logger.warning(
        "till authentication failed: %s",
        code,
        extra={
            "event": "till_auth_failed",
            "reason": code,
            "till_id": getattr(till, "pk", None),
            "ip": client_ip(request) if request is not None else None,
        },
    )
    return exceptions.AuthenticationFailed(message, code=code)


class TillSignatureAuthentication(BaseAuthentication):
    """Authenticates a till by the HMAC signature of the request (see module docstring).

    Failures answer 401 with a stable code: ``authentication_required`` (headers
    missing), ``invalid_timestamp``, ``invalid_till_key`` (unknown or inactive till,
    or inactive store: one code, so a probe cannot tell which), ``invalid_signature``,
    ``timestamp_out_of_window``.
    """

    def authenticate(self, request):
        django_request = request._request
        key_id = request.headers.get(HEADER_KEY, "")
        timestamp = request.headers.get(HEADER_TIMESTAMP, "")
        signature = request.headers.get(HEADER_SIGNATURE, "")
        if not (key_id and timestamp and signature):
            raise exceptions.NotAuthenticated(
                f"Sign the request: {HEADER_KEY}, {HEADER_TIMESTAMP} and {HEADER_SIGNATURE} are required.",
                code="authentication_required",
            )
        if not _TIMESTAMP_FORMAT.match(timestamp):
            raise _refuse("invalid_timestamp", f"{HEADER_TIMESTAMP} must be whole Unix seconds.", request=request)
        body = _read_body(django_request)

        till = None
        if _KEY_ID_FORMAT.match(key_id):
            till = Till.objects.select_related("store").filter(key_id=key_id).first()
        if till is None or not till.active or not till.store.active:
            raise _refuse("invalid_till_key", "Unknown or inactive till.", till=till, request=request)
        try:
            secret = decrypt_str(till.secret_encrypted)
        except DecryptionFailed:
            logger.error(
                "till secret cannot be decrypted", extra={"event": "till_secret_unreadable", "till_id": till.pk}
            )
            raise _refuse("invalid_till_key", "Unknown or inactive till.", till=till, request=request) from None

        expected = signature_compute(
            secret=secret,
            timestamp=timestamp,
            method=request.method,
            path=request_target(django_request),
            body=body,
        )
        given = signature.lower() if _SIGNATURE_FORMAT.match(signature) else ""
        if not hmac.compare_digest(expected, given):
            raise _refuse("invalid_signature", "The signature does not match the request.", till=till, request=request)

        skew = settings.TILL_SIGNATURE_MAX_SKEW_SECONDS
        if abs(time.time() - int(timestamp)) > skew:
            raise _refuse(
                "timestamp_out_of_window",
                f"{HEADER_TIMESTAMP} is more than {skew} seconds from the server's clock.",
                till=till,
                request=request,
            )
        return (None, till)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated requests.
        return SCHEME


def ip_allowed(address: str | None, allowed: list[str]) -> bool:
    """True if ``address`` is in one of the ``allowed`` addresses or networks.

    An entry that does not parse allows nothing (and is logged, without the address).
    """
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if getattr(ip, "ipv4_mapped", None) is not None:
        ip = ip.ipv4_mapped
    for entry in allowed:
        try:
            network = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            logger.error("till allow-list entry does not parse", extra={"event": "till_allowlist_invalid"})
            continue
        if ip.version == network.version and ip in network:
            return True
    return False


class TillPermission(BasePermission):
    """A signed till, calling from an allowed address when its allow-list is set."""

    def has_permission(self, request, view) -> bool:
        till = request.auth
        if not isinstance(till, Till):
            return False  # DRF answers 401: no authenticator succeeded
        if till.allowed_ips and not ip_allowed(client_ip(request._request), till.allowed_ips):
            logger.warning(
                "till called from an address not on its allow-list",
                extra={"event": "till_ip_refused", "till_id": till.pk, "ip": client_ip(request._request)},
            )
            raise IpNotAllowed()
        return True


class TillRateThrottle(SimpleRateThrottle):
    """Per-till request rate (``TILL_RATE_LIMIT``). A courtesy limit against runaway
    tills, not a security control (SECURITY.md: DRF throttles are not atomic)."""

    scope = "till"

    def get_cache_key(self, request, view):
        till = request.auth
        if not isinstance(till, Till):
            return None
        return self.cache_format % {"scope": self.scope, "ident": till.pk}


class TillSignatureScheme(OpenApiAuthenticationExtension):
    """The three signing headers as one OpenAPI security requirement (all required)."""

    target_class = TillSignatureAuthentication
    name = ["TillKey", "TillTimestamp", "TillSignature"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": HEADER_KEY,
                "description": "The till's public key id (issued by `manage.py till_create`).",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": HEADER_TIMESTAMP,
                "description": "Current time in whole Unix seconds; must be within TILL_SIGNATURE_MAX_SKEW_SECONDS (default 300) of the server clock.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": HEADER_SIGNATURE,
                "description": (
                    "Lowercase hex HMAC-SHA256, keyed with the till's secret, over "
                    "`{timestamp}\\n{METHOD}\\n{path}\\n` followed by the raw request body bytes. "
                    "`path` is the request target exactly as sent on the request line: the path and the "
                    "query string when there is one, percent-encoding untouched (not decoded, not re-encoded)."
                ),
            },
        ]
