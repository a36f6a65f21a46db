"""Password rules for staff beyond Django's built-in validators."""

from __future__ import annotations

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError


class MaximumLengthValidator:
    """Refuse absurdly long passwords (hashing cost; ASVS V2.1.2)."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    def validate(self, password, user=None):
        if len(password) > self.max_length:
            raise ValidationError(
                f"This password is too long. It must contain at most {self.max_length} characters.",
                code="password_too_long",
            )

    def get_help_text(self):
        return f"Your password must contain at most {self.max_length} characters."


class CharacterClassesValidator:
    """Letters, digits and symbols must all appear (spec: "Mix of letters, numbers, symbols")."""

    def validate(self, password, user=None):
        missing = []
        if not any(c.isalpha() for c in password):
            missing.append("a letter")
        if not any(c.isdigit() for c in password):
            missing.append("a digit")
        if all(c.isalnum() or c.isspace() for c in password):
            missing.append("a symbol")
        if missing:
            raise ValidationError(
                "This password must contain " + ", ".join(missing) + ".", code="password_character_classes"
            )

    def get_help_text(self):
        return "Your password must mix letters, digits and symbols."


class PasswordHistoryValidator:
    """No reuse of the current password or the previous ``depth - 1`` ones.

    ``password_changed`` is Django's hook, called when a user with a new password is
    saved: it records the new hash and the security event for the change.
    """

    def __init__(self, depth: int = 5):
        self.depth = depth

    def _recent_hashes(self, user) -> list[str]:
        from staffauth.models import PasswordHistory

        return list(PasswordHistory.objects.filter(user=user).values_list("password_hash", flat=True)[: self.depth])

    def validate(self, password, user=None):
        if user is None or user.pk is None:
            return
        hashes = self._recent_hashes(user)
        if user.password and user.password not in hashes:
            hashes.insert(0, user.password)
        if any(check_password(password, h) for h in hashes[: self.depth]):
            raise ValidationError(f"You cannot reuse any of your last {self.depth} passwords.", code="password_reused")

    def password_changed(self, password, user=None):
        if user is None or user.pk is None:
            return
        from staffauth.services import password_changed_record

        password_changed_record(user=user, depth=self.depth)

    def get_help_text(self):
        return f"Your password cannot be one of your last {self.depth} passwords."
