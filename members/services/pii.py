"""Members' personal data: normalisation, envelope encryption, blind indexes, masks.

Key hierarchy (SECURITY.md §3):

- the **programme key** is ``loyalty.kernel.crypto``'s MultiFernet over
  ``settings.FIELD_ENCRYPTION_KEYS`` (newest first); it encrypts only data keys;
- each member's **data key** is a Fernet key of their own, stored wrapped by the
  programme key in ``Member.data_key_wrapped``; it encrypts that member's name,
  phone, email, postal address and date of birth (all personal data) into the
  ``*_encrypted`` columns. Rotating the programme key re-wraps data keys only
  (``manage.py rotate_keys``); erasing a data key (``member_pii_shred``) makes that
  member's ciphertexts unreadable everywhere, backups included;
- the **blind-index keys** are derived per field by HKDF from
  ``settings.BLIND_INDEX_KEY`` (separate from the encryption keys); the index is
  HMAC-SHA256 of the normalised value, for equality look-ups and uniqueness.

Plaintext leaves this module only through ``member_pii_read`` / ``member_pii_value``
and the masks: nothing here is wired into ``__str__``, forms or serializers.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from loyalty.kernel.crypto import DecryptionFailed, decrypt_str, encrypt_str
from loyalty.kernel.freetext import free_text_refusal
from loyalty.kernel.refusals import Refusal
from members.models import PII_FIELDS, Member

# The programme is Malaysian: numbers without a country code are read as Malaysian.
DEFAULT_PHONE_REGION = "MY"
# Version of the blind-index keys (stored per member in Member.blind_index_version).
BLIND_INDEX_VERSION = 1
NAME_MAX = 200
EMAIL_MAX = 254
ADDRESS_MAX = 500
BIRTH_DATE_MIN = date(1900, 1, 1)
MASK = "•••"


class InvalidMemberData(Refusal):
    """Some personal data was refused. ``errors`` maps each field to (code, message); the
    API and admin forms turn them into field errors (the refusal's own code is
    ``validation_error``). Its facts stay empty: the fields' messages are in ``errors``."""

    code = "validation_error"

    def __init__(self, errors: dict[str, tuple[str, str]]):
        self.errors = errors
        super().__init__(message="; ".join(f"{field}: {message}" for field, (_, message) in sorted(errors.items())))


class MemberPiiErased(Refusal):
    """The member's personal data was erased (crypto-shredded): it cannot be set again."""

    code = "pii_erased"
    message = "This member's personal data was erased; it cannot be set again."


# --- normalisation (and validation) ---------------------------------------------------


def phone_normalise(value: str, *, region: str = DEFAULT_PHONE_REGION) -> str:
    """The E.164 form of a phone number (``+60123456789``). Raises InvalidMemberData."""
    try:
        parsed = phonenumbers.parse(str(value).strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidMemberData({"phone": ("invalid_phone", "Enter a valid phone number.")}) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidMemberData({"phone": ("invalid_phone", "Enter a valid phone number.")})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email_normalise(value: str) -> str:
    """Trimmed, NFKC, domain lower-cased (the local part keeps its case). Raises InvalidMemberData."""
    email = unicodedata.normalize("NFKC", str(value)).strip()
    local, at, domain = email.rpartition("@")
    email = f"{local}{at}{domain.lower()}"
    if len(email) > EMAIL_MAX:
        raise InvalidMemberData({"email": ("too_long", f"At most {EMAIL_MAX} characters.")})
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidMemberData({"email": ("invalid_email", "Enter a valid email address.")}) from None
    return email


def birth_date_normalise(value: date | str, *, today: date | None = None) -> date:
    """A date of birth between 1900-01-01 and today. Raises InvalidMemberData."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidMemberData({"birth_date": ("invalid_date", "Enter a date as YYYY-MM-DD.")}) from None
    elif not isinstance(value, date):
        raise InvalidMemberData({"birth_date": ("invalid_date", "Enter a date as YYYY-MM-DD.")})
    if not BIRTH_DATE_MIN <= value <= (today or date.today()):
        raise InvalidMemberData(
            {"birth_date": ("out_of_range", "The date of birth must be between 1900-01-01 and today.")}
        )
    return value


def text_normalise(field: str, value: str, *, max_length: int) -> str:
    """Trimmed NFC text of at most ``max_length`` characters, free of control characters
    and of what free text may not hold (``loyalty.kernel.freetext``: a card number, a bidi
    control, an invisible character, each refused with its own code). Raises InvalidMemberData."""
    text = unicodedata.normalize("NFC", str(value)).strip()
    if len(text) > max_length:
        raise InvalidMemberData({field: ("too_long", f"At most {max_length} characters.")})
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n" for ch in text):
        raise InvalidMemberData({field: ("invalid_characters", "Control characters are not allowed.")})
    if (refusal := free_text_refusal(text)) is not None:
        raise InvalidMemberData({field: (refusal.code, refusal.message)})
    return text


# --- blind indexes ---------------------------------------------------------------------


@lru_cache(maxsize=16)
def _index_key(root: str, field: str, version: int) -> bytes:
    # One key per field (and version): indexes cannot be correlated across columns.
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"members.blind-index.{field}.v{version}".encode()
    ).derive(root.encode())


def blind_index(field: str, normalised: str) -> str:
    """Hex HMAC-SHA256 of an already-normalised value under the field's derived key.

    Emails are indexed case-insensitively (the whole address case-folded).
    """
    if field == "email":
        normalised = normalised.casefold()
    key = _index_key(settings.BLIND_INDEX_KEY, field, BLIND_INDEX_VERSION)
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


# --- envelope encryption ---------------------------------------------------------------


def data_key_new() -> bytes:
    return Fernet.generate_key()


def data_key_wrap(key: bytes) -> str:
    """The data key encrypted under the newest programme key."""
    return encrypt_str(key.decode("ascii"))


def member_data_key(member: Member) -> Fernet | None:
    """The member's unwrapped data key, cached on the instance; None if there is none
    (no personal data yet, or erased). Raises DecryptionFailed if the programme keys
    cannot unwrap it (a configuration error, never silently hidden)."""
    wrapped = member.data_key_wrapped
    if not wrapped:
        return None
    cached: tuple[str, Fernet] | None = getattr(member, "_pii_data_key", None)
    if cached is not None and cached[0] == wrapped:
        return cached[1]
    fernet = Fernet(decrypt_str(wrapped).encode("ascii"))
    member._pii_data_key = (wrapped, fernet)  # type: ignore[attr-defined]  # a per-instance cache, not a field
    return fernet


def field_encrypt(key: Fernet, value: str) -> str:
    return key.encrypt(value.encode()).decode("ascii")


def field_decrypt(key: Fernet, token: str) -> str:
    try:
        return key.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed("the value cannot be decrypted with the member's data key") from None


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberPii:
    """A member's personal data in clear. Every field is None when absent or erased."""

    erased: bool
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    birth_date: date | None = None

    def __repr__(self) -> str:
        # Never print the values (tracebacks, debug logs).
        return f"MemberPii(erased={self.erased}, fields={[f for f in PII_FIELDS if getattr(self, f)]})"


def member_pii_is_erased(member: Member) -> bool:
    return member.pii_erased_at is not None


def member_pii_value(member: Member, field: str) -> Any:
    """One field in clear: str (``birth_date``: date), or None when absent or erased.

    Raises DecryptionFailed if the stored value cannot be decrypted although the
    member's data key exists (corruption or a programme key missing from settings).
    """
    if field not in PII_FIELDS:
        raise ValueError(f"not a personal-data field: {field}")
    token = getattr(member, f"{field}_encrypted")
    key = member_data_key(member)
    if not token or key is None:
        return None
    value = field_decrypt(key, token)
    return date.fromisoformat(value) if field == "birth_date" else value


def member_pii_read(member: Member) -> MemberPii:
    """All of a member's personal data in clear (see ``member_pii_value``)."""
    if member_pii_is_erased(member):
        return MemberPii(erased=True)
    return MemberPii(erased=False, **{field: member_pii_value(member, field) for field in PII_FIELDS})


# --- masks (for the admin: recognisable, never the value) ---------------------------------


def phone_mask(phone: str | None) -> str:
    """``+60 ••• ••• 89``: the country code and the last two digits."""
    if not phone:
        return ""
    try:
        code = phonenumbers.parse(phone).country_code
    except phonenumbers.NumberParseException:
        return f"{MASK} {MASK}"
    return f"+{code} {MASK} {MASK} {phone[-2:]}"


def email_mask(email: str | None) -> str:
    """``s•••@example.com``: the first character and the domain."""
    if not email:
        return ""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}{MASK}@{domain}"


def name_mask(name: str | None) -> str:
    """``S••• N•••``: each word's initial."""
    if not name:
        return ""
    return " ".join(f"{word[:1]}{MASK}" for word in name.split())


def member_pii_masked(member: Member) -> dict[str, str]:
    """Masked values of every field ("" when absent, "erased" after crypto-shredding)."""
    if member_pii_is_erased(member):
        return dict.fromkeys(PII_FIELDS, "erased")
    pii = member_pii_read(member)
    return {
        "name": name_mask(pii.name),
        "phone": phone_mask(pii.phone),
        "email": email_mask(pii.email),
        "address": MASK * 3 if pii.address else "",
        "birth_date": "••••-••-••" if pii.birth_date else "",
    }
