"""Staff password rules: length, character classes, common passwords, no reuse of the last 5."""

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import override_settings

from staffauth.models import PasswordHistory, SecurityEvent

pytestmark = pytest.mark.django_db


def codes(password, user=None) -> set[str]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return {e.code for e in exc.error_list}
    return set()


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Ab1!" + "x" * 7, {"password_too_short"}),  # 11 characters
        ("Ab1!" + "x" * 8, set()),  # 12
        ("Ab1!" + "x" * 60, set()),  # 64
        ("Ab1!" + "x" * 125, {"password_too_long"}),  # 129
        ("abcdefghijkl!", {"password_character_classes"}),  # no digit
        ("Abcdefghijk1", {"password_character_classes"}),  # no symbol
        ("123456789012!", {"password_character_classes"}),  # no letter
    ],
)
def test_length_and_character_classes(password, expected):
    assert codes(password) == expected


def test_common_passwords_are_refused():
    # In Django's list of 20,000 common passwords, and long enough with all three classes.
    assert codes("john!20130605at1753") == {"password_too_common"}


def test_the_last_five_passwords_cannot_be_reused(make_staff):
    user = make_staff("rotator")
    passwords = [f"Rotation-pass-{n}!" for n in range(1, 7)]
    for password in passwords:
        validate_password(password, user)
        user.set_password(password)
        user.save()
    assert PasswordHistory.objects.filter(user=user).count() == 5
    # The current one and the four before it are refused; the sixth-last is allowed again.
    for password in passwords[-5:]:
        assert "password_reused" in codes(password, user), password
    assert codes(passwords[0], user) == set()


def test_a_password_change_is_logged_without_the_password(make_staff):
    user = make_staff("logger")
    user.set_password("Some-new-pass-77!")
    user.save()
    event = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.PASSWORD_CHANGED, subject=user).latest("id")
    assert "Some-new-pass" not in str(event.detail) and event.actor == user


def test_production_hasher_is_argon2(make_staff):
    with override_settings(PASSWORD_HASHERS=settings.PRODUCTION_PASSWORD_HASHERS):
        assert make_password("Whatever-pass-1!").startswith("argon2$argon2id$")
