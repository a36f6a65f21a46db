"""Field encryption: Fernet tokens under the rotating ``FIELD_ENCRYPTION_KEYS``.

``MultiFernet`` encrypts with the first key and decrypts with any of them, so keys
rotate without downtime (SECURITY.md §3): deploy ``[K1, K2]``, then ``[K2, K1]``, then
re-encrypt with ``rotate_str`` and drop K1. No ``ttl`` is ever passed: stored values
do not expire.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionFailed(Exception):
    """The token is corrupt or was made with a key that is no longer configured."""


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    # Keyed on the configured keys, so a settings override (tests, rotation) takes effect.
    return _multifernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_str(value: str) -> str:
    """Encrypt ``value`` under the newest key; returns an ASCII token."""
    return _current().encrypt(value.encode()).decode("ascii")


def decrypt_str(token: str) -> str:
    """Decrypt a token made by ``encrypt_str`` under any configured key.

    Raises DecryptionFailed (never the token or the plaintext in the message).
    """
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed("the value cannot be decrypted with the configured keys") from None


def rotate_str(token: str) -> str:
    """Re-encrypt a token under the newest key (idempotent)."""
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed("the value cannot be decrypted with the configured keys") from None


def is_current(token: str) -> bool:
    """Whether ``token`` decrypts under the newest key alone (rotation needs nothing).

    Lets a batched rotation skip what an earlier, interrupted run already did.
    """
    try:
        Fernet(settings.FIELD_ENCRYPTION_KEYS[0]).decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True
