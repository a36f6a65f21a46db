"""The rotating QR token: a short-lived Ed25519 signature over voucher, member and time step.

A member's app shows a new token every time step (``VOUCHERS["qr_step_seconds"]``,
default 30 s). A token is valid only during its own step, so a screenshot stops
working when the step ends. The server signs; anyone with the published public key
(``public_keys()``) can verify, so a till can check a token offline. Redemption itself
is always online and single-use: a valid token only says "this member's app showed
this voucher during this step".

Token (ASCII, about 165 characters, QR byte mode)::

    v1.<kid>.<payload>.<signature>

- ``kid``: the first 8 hex digits of SHA-256 of the raw 32-byte public key;
- ``payload``: base64url (no padding) of 49 bytes, big-endian:
  version (1 byte, 1), voucher id (16), member id (16, a pseudonymous UUID),
  step (8, unsigned), expiry (8, unsigned unix seconds) where
  ``expiry == (step + 1) * step_seconds``, so the step's length travels with the token;
- ``signature``: base64url (no padding) of the 64-byte Ed25519 signature over
  ``SIGNING_CONTEXT + "v1.<kid>.<payload>"`` (the context keeps these signatures
  from being valid for anything else signed with the same key).

Keys: the private key is derived from ``settings.VOUCHER_SIGNING_KEY`` (a secret
string) with HKDF-SHA256 (info ``vouchers.qr-token.ed25519``) into the 32-byte Ed25519
seed. ``settings.VOUCHER_SIGNING_KEYS_PREVIOUS`` (secret strings of the same kind)
stay valid for verification during a rotation; new tokens are always signed with the
current key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils import timezone

VERSION = 1
PREFIX = "v1"
HKDF_INFO = b"vouchers.qr-token.ed25519"
SIGNING_CONTEXT = b"vouchers.qr-token.v1\x00"
DEFAULT_STEP_SECONDS = 30
# A real token is 165 characters; anything much longer is refused unread.
MAX_TOKEN_LENGTH = 256

_PAYLOAD = struct.Struct(">B16s16sQQ")
_SIGNATURE_LENGTH = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TOKEN_SHAPE = re.compile(r"\Av1\.([0-9a-f]{8})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\Z")


class QrTokenInvalid(ValueError):
    """A QR token was refused. ``code`` is one of ``qr_malformed``, ``qr_unknown_key``,
    ``qr_signature_invalid``, ``qr_expired`` or ``qr_not_yet_valid``. The message never
    contains the token."""

    MESSAGES = {
        "qr_malformed": "The QR code is not a voucher token.",
        "qr_unknown_key": "The QR code was signed with a key that is not (or no longer) accepted.",
        "qr_signature_invalid": "The QR code's signature does not verify.",
        "qr_expired": "The QR code has expired; ask the member to show the current one.",
        "qr_not_yet_valid": "The QR code is not valid yet; check the till's clock.",
    }

    def __init__(self, code: str):
        self.code = code
        super().__init__(self.MESSAGES[code])


@dataclass(frozen=True)
class QrToken:
    token: str
    step: int
    expires_at: datetime


@dataclass(frozen=True)
class QrClaims:
    voucher_id: uuid.UUID
    member_id: uuid.UUID
    step: int
    expires_at: datetime
    key_id: str


# --- keys ----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict: only the canonical encoding is accepted (no padding, no stray bits), so
    each byte string has exactly one textual form."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise QrTokenInvalid("qr_malformed") from None
    if _b64url(data) != text:
        raise QrTokenInvalid("qr_malformed")
    return data


def key_id(public_key_bytes: bytes) -> str:
    """The key id: the first 8 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(public_key_bytes).hexdigest()[:8]


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@lru_cache(maxsize=16)
def _private_key(secret: str) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret.encode("utf-8"))
    return Ed25519PrivateKey.from_private_bytes(seed)


def _secrets() -> list[str]:
    current = settings.VOUCHER_SIGNING_KEY
    if not current:
        raise ValueError("VOUCHER_SIGNING_KEY is not set")
    previous = getattr(settings, "VOUCHER_SIGNING_KEYS_PREVIOUS", []) or []
    # Current first; empty entries and repeats are dropped (each key is published once).
    return list(dict.fromkeys(s for s in [current, *previous] if s))


def _verification_keys() -> dict[str, list[Ed25519PublicKey]]:
    """Public keys by key id, the current key first (a list: two keys could share an id)."""
    keys: dict[str, list[Ed25519PublicKey]] = {}
    for secret in _secrets():
        public = _private_key(secret).public_key()
        keys.setdefault(key_id(_raw_public(public)), []).append(public)
    return keys


def public_keys() -> list[dict[str, str]]:
    """The verification keys to publish (current first): ``key_id``, ``algorithm``
    ("Ed25519"), ``public_key`` (standard base64 of the raw 32 bytes) and ``pem``
    (SubjectPublicKeyInfo). Nothing here is secret."""
    published = []
    for secret in _secrets():
        public = _private_key(secret).public_key()
        raw = _raw_public(public)
        published.append(
            {
                "key_id": key_id(raw),
                "algorithm": "Ed25519",
                "public_key": base64.b64encode(raw).decode("ascii"),
                "pem": public.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ).decode("ascii"),
            }
        )
    return published


# --- time ----------------------------------------------------------------------------------


def step_seconds() -> int:
    """The length of a time step, from ``VOUCHERS["qr_step_seconds"]`` (default 30)."""
    value = getattr(settings, "VOUCHERS", {}).get("qr_step_seconds", DEFAULT_STEP_SECONDS)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3600:
        raise ValueError("VOUCHERS['qr_step_seconds'] must be a whole number of seconds from 1 to 3600")
    return value


def _now(now: datetime | None) -> datetime:
    now = timezone.now() if now is None else now
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    return now


def _step_at(now: datetime, period: int) -> int:
    # Integer microseconds: exact at step boundaries, unlike float timestamps.
    return ((now - _EPOCH) // _MICROSECOND) // (period * 1_000_000)


# --- issue and verify ----------------------------------------------------------------------


def _signed_part(kid: str, payload: bytes) -> str:
    return f"{PREFIX}.{kid}.{_b64url(payload)}"


def qr_token_issue(*, voucher_id: uuid.UUID, member_id: uuid.UUID, now: datetime | None = None) -> QrToken:
    """A token for the current time step, signed with the current key. It is valid from
    the start of the step until ``expires_at`` (the start of the next step), exclusive."""
    period = step_seconds()
    step = _step_at(_now(now), period)
    expires = (step + 1) * period
    private = _private_key(_secrets()[0])
    kid = key_id(_raw_public(private.public_key()))
    payload = _PAYLOAD.pack(VERSION, voucher_id.bytes, member_id.bytes, step, expires)
    signed = _signed_part(kid, payload)
    signature = private.sign(SIGNING_CONTEXT + signed.encode("ascii"))
    return QrToken(token=f"{signed}.{_b64url(signature)}", step=step, expires_at=_EPOCH + timedelta(seconds=expires))


def _parse(token: str) -> tuple[str, bytes, bytes, bytes]:
    """(key id, signed bytes, payload, signature); checks the shape only."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise QrTokenInvalid("qr_malformed")
    match = _TOKEN_SHAPE.match(token)
    if match is None:
        raise QrTokenInvalid("qr_malformed")
    kid, payload_text, signature_text = match.groups()
    payload = _b64url_decode(payload_text)
    signature = _b64url_decode(signature_text)
    if len(payload) != _PAYLOAD.size or len(signature) != _SIGNATURE_LENGTH:
        raise QrTokenInvalid("qr_malformed")
    signed = SIGNING_CONTEXT + f"{PREFIX}.{kid}.{payload_text}".encode("ascii")
    return kid, signed, payload, signature


def _claims(kid: str, payload: bytes, *, now: datetime, grace_steps: int) -> QrClaims:
    """The claims of a payload whose signature has verified, if it is valid at ``now``."""
    version, voucher, member, step, expires = _PAYLOAD.unpack(payload)
    if version != VERSION or expires % (step + 1) != 0 or not 1 <= expires // (step + 1) <= 3600:
        raise QrTokenInvalid("qr_malformed")
    current = _step_at(now, expires // (step + 1))
    if current > step + grace_steps:
        raise QrTokenInvalid("qr_expired")
    if current < step - grace_steps:
        raise QrTokenInvalid("qr_not_yet_valid")
    return QrClaims(
        voucher_id=uuid.UUID(bytes=voucher),
        member_id=uuid.UUID(bytes=member),
        step=step,
        expires_at=_EPOCH + timedelta(seconds=expires),
        key_id=kid,
    )


def _signature_verifies(public: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        public.verify(signature, signed)
    except InvalidSignature:
        return False
    return True


def qr_token_verify(token: str, *, now: datetime | None = None, grace_steps: int = 0) -> QrClaims:
    """The claims of a token that is valid now, checked with the current and previous keys.

    Valid only during its own time step; ``grace_steps`` (whole steps, default 0)
    widens that by as many steps on each side for clock skew. Input longer than
    ``MAX_TOKEN_LENGTH`` is refused before parsing. Raises QrTokenInvalid
    (``qr_malformed``, ``qr_unknown_key``, ``qr_signature_invalid``, ``qr_expired``,
    ``qr_not_yet_valid``). Checks the signature before reading any claim.
    """
    now = _now(now)
    if grace_steps < 0:
        raise ValueError("grace_steps must not be negative")
    kid, signed, payload, signature = _parse(token)
    candidates = _verification_keys().get(kid)
    if not candidates:
        raise QrTokenInvalid("qr_unknown_key")
    if not any(_signature_verifies(public, signature, signed) for public in candidates):
        raise QrTokenInvalid("qr_signature_invalid")
    return _claims(kid, payload, now=now, grace_steps=grace_steps)


def verify_offline(token: str, public_key_bytes: bytes, now: datetime, *, grace_steps: int = 0) -> QrClaims:
    """What a till does offline: verify a token with nothing but a published public key
    (the raw 32 bytes of ``public_keys()[i]["public_key"]``, base64-decoded) and a clock.

    No secret and no setting is read: the step length travels inside the signed token.
    A till would fetch ``public_keys()`` while online and keep them. The same checks
    and error codes as ``qr_token_verify``; a token whose key id is not this key's
    raises ``qr_unknown_key``. Passing this check never redeems anything: redemption
    is online and single-use.

        >>> public = base64.b64decode(published["public_key"])     # doctest: +SKIP
        >>> claims = verify_offline(scanned, public, till_clock())  # doctest: +SKIP
        >>> claims.voucher_id, claims.expires_at                    # doctest: +SKIP
    """
    now = _now(now)
    if grace_steps < 0:
        raise ValueError("grace_steps must not be negative")
    kid, signed, payload, signature = _parse(token)
    if kid != key_id(public_key_bytes):
        raise QrTokenInvalid("qr_unknown_key")
    if not _signature_verifies(Ed25519PublicKey.from_public_bytes(public_key_bytes), signature, signed):
        raise QrTokenInvalid("qr_signature_invalid")
    return _claims(kid, payload, now=now, grace_steps=grace_steps)
