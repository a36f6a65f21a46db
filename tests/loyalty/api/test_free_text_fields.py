"""Issue 11 (D5): every string field every API takes is guarded as free text, unless it is
one of the named kinds of value that is not (secrets, codes, keyed-hash inputs, phone
numbers). The walk fails when a serializer gains an unguarded string field."""

from __future__ import annotations

import pytest
from django.urls import get_resolver
from rest_framework import serializers

from loyalty.api.serializers import LoyaltyNumberField, StrictCharField, StrictInputSerializer

pytestmark = pytest.mark.django_db

# Field names whose values are not free text, and why.
NOT_FREE_TEXT = {
    "password": "a secret, hashed",
    "current_password": "a secret, checked",
    "new_password": "a secret, hashed",
    "code": "a one-time code, checked (digits only)",
    "otp": "a one-time code, checked",
    "token": "an email link's token, checked against its hash",
    "refresh_token": "a token, checked against its hash",
    "qr_token": "a signed token, verified",
    "fingerprint": "stored as a keyed hash only",
    "device_fingerprint": "checked against a keyed hash",
    "phone": "parsed to E.164 or refused (a long foreign number can pass for a card number)",
}


def _input_serializers() -> list[type[serializers.Serializer]]:
    assert get_resolver().url_patterns  # imports every API module
    found, stack = [], [StrictInputSerializer]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        found.append(cls)
    return found


def _string_fields(serializer: serializers.Serializer, prefix: str = ""):
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.Serializer):
            yield from _string_fields(field, f"{prefix}{name}.")
        elif isinstance(field, serializers.CharField):
            yield f"{prefix}{name}", name, field


def test_every_api_string_field_is_guarded_or_not_free_text_for_a_named_reason():
    problems, guarded = [], 0
    for cls in _input_serializers():
        for path, name, field in _string_fields(cls()):
            where = f"{cls.__module__}.{cls.__qualname__}.{path}"
            if not isinstance(field, StrictCharField):
                problems.append(f"{where}: not a StrictCharField")
            elif not field.free_text and name not in NOT_FREE_TEXT:
                problems.append(f"{where}: free_text=False without a reason in NOT_FREE_TEXT")
            else:
                guarded += field.free_text
    assert problems == []
    assert guarded >= 5  # name, address, email, birth_date, device.label at least


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("card 4111 1111 1111 1111 exp 12/29", "card_number_refused"),
        ("Aminah \u202eYusof", "bidi_control_refused"),
        ("Ami\u200bnah", "invisible_character_refused"),
    ],
)
def test_each_guarded_field_refuses_what_free_text_may_not_hold(value, refusal):
    from rest_framework.exceptions import APIException

    checked = 0
    for cls in _input_serializers():
        for _path, _name, field in _string_fields(cls()):
            if isinstance(field, StrictCharField) and field.free_text and not isinstance(field, LoyaltyNumberField):
                with pytest.raises(APIException) as raised:
                    field.to_internal_value(value)
                assert raised.value.default_code == refusal
                checked += 1
    assert checked >= 5
