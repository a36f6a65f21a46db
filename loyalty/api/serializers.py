"""Strict fields and the shapes shared by the till API's views.

Input is strict on purpose: a till is a machine, and leniency hides its bugs. JSON
numbers must be integers (not strings, floats or booleans), strings must be strings,
unknown fields are refused (a typo such as ``"point"`` on a capture would otherwise
capture the whole hold), and datetimes must carry their UTC offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import TypeVar

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from loyalty.api.cards import free_text_refuse
from members.numbers import loyalty_number_is_well_formed

RECEIPT_NUMBER_PATTERN = r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"
# STORE/TILL/RECEIPT: printable ASCII without "/" for the store and till codes.
RECEIPT_REF_PATTERN = r"\A[!-.0-~]{1,16}/[!-.0-~]{1,32}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"
MAX_UNKNOWN_REPORTED = 10
UTC_NOTE = "ISO 8601 in UTC, written with Z."


class StrictInputSerializer(serializers.Serializer):
    """Refuses keys it does not declare."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError(
                    {str(key)[:64]: ["Unknown field."] for key in unknown[:MAX_UNKNOWN_REPORTED]}, code="unknown_field"
                )
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: ``"12"``, ``12.0`` and ``true`` are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only: ``"true"``, ``1`` and ``"yes"`` are refused."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def field_path(field: serializers.Field) -> str:
    """The dotted name of a (possibly nested) serializer field: ``device.label``."""
    names = []
    while field is not None and getattr(field, "field_name", None):
        names.append(field.field_name)
        field = field.parent
    return ".".join(reversed(names)) or "(body)"


class StrictCharField(serializers.CharField):
    """A JSON string only (DRF's CharField would turn ``12`` into ``"12"``); not trimmed.

    Free text by default: before any other check, a value holding a card number, a bidi
    control or an invisible character is refused for the whole request (``free_text_refuse``:
    422 ``card_number_refused``, 400 ``bidi_control_refused`` / ``invisible_character_refused``).
    ``free_text=False`` is for values that are not stored as typed and are checked on their
    own terms: secrets (passwords, tokens, codes), keyed-hash inputs and structured values
    (a phone number, parsed to E.164).
    """

    def __init__(self, *, free_text: bool = True, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        self.free_text = free_text
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.free_text:
            free_text_refuse(data, field=field_path(self))
        return super().to_internal_value(data)


class LoyaltyNumberField(StrictCharField):
    """16 ASCII digits starting 99 with a Luhn check digit; anything else present is
    refused with the code ``invalid_loyalty_number`` before any look-up."""

    default_error_messages = {
        "invalid_loyalty_number": "A loyalty number is 16 digits starting with 99, with a valid check digit."
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "The member's loyalty number: 16 digits starting with 99 (Luhn check digit).")
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        if data == "":  # DRF answers "" before to_internal_value; it is malformed like any other
            self.fail("invalid_loyalty_number")
        return super().run_validation(data)

    def to_internal_value(self, data):
        # isascii(): the shared check would accept "99" followed by fullwidth digits.
        if not isinstance(data, str) or not (data.isascii() and loyalty_number_is_well_formed(data)):
            self.fail("invalid_loyalty_number")
        return data


def receipt_number_field(**kwargs) -> StrictCharField:
    return StrictCharField(
        max_length=64,
        validators=[RegexValidator(RECEIPT_NUMBER_PATTERN, "1 to 64 letters, digits, '.', '_' or '-'.")],
        help_text="The receipt number printed by this till (1-64 of A-Z a-z 0-9 . _ -).",
        **kwargs,
    )


def receipt_ref_field(**kwargs) -> StrictCharField:
    return StrictCharField(
        max_length=120,
        validators=[RegexValidator(RECEIPT_REF_PATTERN, "STORE/TILL/RECEIPT is expected.")],
        **kwargs,
    )


def points_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=settings.TILL_MAX_POINTS, **kwargs)


def amount_minor_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=settings.TILL_MAX_AMOUNT_MINOR, **kwargs)


# --- Till data on purchases and returns (FRAUD.md, "Till data") -------------------------------

TENDER_REF_PATTERN = r"\A[!-~]{1,128}\Z"  # printable ASCII, no spaces


@extend_schema_serializer(component_name="ItemLine")
class ItemLineSerializer(StrictInputSerializer):
    """One item line of a purchase or a return. The SKU is stored only as a keyed hash
    (``sku_hash``); a card number in it is refused like anywhere in the body."""

    sku = StrictCharField(
        max_length=64,
        validators=[RegexValidator(r"\A[!-~]{1,64}\Z", "1 to 64 printable ASCII characters, no spaces.")],
        help_text="The item's SKU (1-64 printable ASCII characters). Stored only as a keyed hash.",
    )
    qty = StrictIntegerField(min_value=1, max_value=100_000, help_text="Units of the item.")
    amount_minor = StrictIntegerField(
        min_value=0, max_value=settings.TILL_MAX_AMOUNT_MINOR, help_text="The line's amount in minor units."
    )


def items_field(**kwargs) -> ItemLineSerializer:
    return ItemLineSerializer(
        many=True,
        required=False,
        allow_empty=False,
        max_length=settings.TILL_MAX_ITEM_LINES,
        help_text=f"Optional item lines (1 to {settings.TILL_MAX_ITEM_LINES}); SKUs are stored only as keyed hashes.",
        **kwargs,
    )


def tender_ref_field(**kwargs) -> StrictCharField:
    """The payment processor's token for the tender (never a card number: one is refused
    with 422 ``card_number_refused``, before anything is stored). Stored only as a keyed
    hash, compared between a purchase and its return."""
    return StrictCharField(
        max_length=128,
        validators=[RegexValidator(TENDER_REF_PATTERN, "1 to 128 printable ASCII characters, no spaces.")],
        **kwargs,
    )


class UtcDateTimeField(serializers.DateTimeField):
    """A datetime answered in UTC with ``Z`` (``loyalty.kernel.timestamps``), whatever the
    current time zone: DRF's own field answers in the programme's (``+08:00``), while the
    bodies services build answer UTC; one rule for every API answer. Every response
    field of the API is this one (tests/loyalty/api/test_timestamps.py)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", UTC)
        kwargs["help_text"] = f"{kwargs.get('help_text') or ''} {UTC_NOTE}".strip()
        super().__init__(**kwargs)


class PastDateTimeField(UtcDateTimeField):
    """An ISO 8601 datetime with an explicit UTC offset, not in the future (beyond the
    signature clock skew) and not older than ``TILL_PURCHASE_MAX_AGE_DAYS``."""

    default_error_messages = {
        "invalid": "An ISO 8601 datetime with a UTC offset is required, e.g. 2026-01-31T14:05:00+08:00.",
        "naive": "Give the UTC offset (e.g. +08:00 or Z).",
        "future": "The time is in the future.",
        "too_old": "The time is too far in the past.",
    }

    def to_internal_value(self, value):
        if not isinstance(value, str) or len(value) > 40:
            self.fail("invalid")
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("naive")
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:
            self.fail("invalid")
        now = timezone.now()
        if parsed > now + timedelta(seconds=settings.TILL_SIGNATURE_MAX_SKEW_SECONDS):
            self.fail("future")
        if parsed < now - timedelta(days=settings.TILL_PURCHASE_MAX_AGE_DAYS):
            self.fail("too_old")
        return parsed


# --- Response shapes (documentation: views return the service's body verbatim) ----------------


@extend_schema_serializer(component_name="Balance")
class BalanceSerializer(serializers.Serializer):
    """The one balance of every API answer, in the ledger's words
    (``loyalty.ledger.selectors.balance_figures``): the member API's ``GET me/balance``
    answers the same three figures."""

    available = serializers.IntegerField(help_text="Points the member can spend now.")
    held = serializers.IntegerField(help_text="Points held by redemptions in progress (a hold not yet settled).")
    pending = serializers.IntegerField(
        help_text="Points earned but not yet available: inside the return window (LOYALTY_PENDING_DAYS). "
        "The till API answered the held points here before; they are `held` now "
        "(docs/integrators.md, Changes)."
    )


class OperationSerializer(serializers.Serializer):
    """What every successful ledger write answers."""

    operation_id = serializers.UUIDField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    loyalty_number = serializers.CharField()
    balance = BalanceSerializer()


@extend_schema_serializer(component_name="ErrorBody")
class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. insufficient_points.")
    message = serializers.CharField(help_text="For people; may change.")
    detail = serializers.DictField(
        required=False, help_text="Field errors ({field: [messages]}) or facts about the refusal."
    )


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


_S = TypeVar("_S", bound=serializers.Serializer)


def named_serializer(component_name: str, base: type[_S]) -> type[_S]:
    """``base`` as it is, under a component name of its own in the schema (an operation's
    request with the same fields as another's, or none)."""
    return extend_schema_serializer(component_name=component_name)(type(component_name, (base,), {}))
