"""Staff accounts, their password history and the security event log."""

from __future__ import annotations

import unicodedata
import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac

from loyalty.kernel.append_only import AppendOnlyModel


class StaffUserManager(UserManager):
    def get_by_natural_key(self, username):
        # Log-in is case- and surrounding-space-insensitive, like the stored usernames.
        return self.get(username=self.model.normalize_username(username))

    def create_user(self, username, email=None, password=None, **extra_fields):
        # Every account of this model is a member of staff (members are not users).
        extra_fields.setdefault("is_staff", True)
        return super().create_user(username, email, password, **extra_fields)


class StaffUser(AbstractUser):
    """A member of staff. Members of the programme are never Django users.

    ``security_stamp`` is mixed into the session hash: changing it (role change,
    "end sessions") invalidates every session of the user on their next request,
    just as a password change does.
    """

    is_staff = models.BooleanField(default=True, help_text="Staff users may reach the admin.")
    stores = models.ManyToManyField(
        "loyalty.Store",
        related_name="staff",
        blank=True,
        help_text="Stores this person works in. Store-scoped roles see only these stores' data.",
    )
    security_stamp = models.UUIDField(default=uuid.uuid4, editable=False)
    member_account = models.OneToOneField(
        "members.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="staff_user",
        help_text="This person's own programme membership, if any: they may not adjust or approve for it.",
    )  # fmt: skip

    objects = StaffUserManager()

    class Meta:
        verbose_name = "staff user"
        constraints = [
            models.UniqueConstraint(Lower("username"), name="staffuser_username_ci_unique"),
        ]
        permissions = [
            ("end_sessions", "Can end a staff user's sessions"),
        ]

    @classmethod
    def normalize_username(cls, username):
        if not isinstance(username, str):
            return username
        return unicodedata.normalize("NFKC", username).strip().casefold()

    def _get_session_auth_hash(self, secret=None):
        # Django's hash covers the password only; ours adds the security stamp so that a
        # role change or an explicit "end sessions" also logs the user out everywhere.
        key_salt = "staffauth.StaffUser.get_session_auth_hash"
        return salted_hmac(
            key_salt, f"{self.password}:{self.security_stamp}", secret=secret, algorithm="sha256"
        ).hexdigest()

    @property
    def role_names(self) -> list[str]:
        return sorted(group.name for group in self.groups.all())


class PasswordHistory(models.Model):
    """Hashes of a user's previous passwords, for the no-reuse rule."""

    user = models.ForeignKey(StaffUser, on_delete=models.CASCADE, related_name="password_history")
    password_hash = models.CharField(max_length=256)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "password history"

    def __str__(self) -> str:
        return f"Password of user {self.user_id} set {self.created_at:%Y-%m-%d}"


class SecurityEvent(AppendOnlyModel):
    """One security-relevant event: who, what, when, from where. Never holds a secret.

    Append-only: Python refuses updates and deletes, and on PostgreSQL a trigger does
    too, for every role but the owner (retention purges go through ``loyalty_purge``:
    ``loyalty/append_only.py``).
    """

    class Kind(models.TextChoices):
        LOGIN_SUCCEEDED = "login_succeeded", "Login succeeded (password)"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOCKED_OUT = "locked_out", "Locked out"
        LOGOUT = "logout", "Logged out"
        OTP_VERIFIED = "otp_verified", "OTP verified"
        OTP_FAILED = "otp_failed", "OTP failed"
        OTP_DEVICE_ENROLLED = "otp_device_enrolled", "OTP device enrolled"
        OTP_DEVICE_REMOVED = "otp_device_removed", "OTP device removed"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        ROLES_CHANGED = "roles_changed", "Roles changed"
        STORES_CHANGED = "stores_changed", "Stores changed"
        ACCOUNT_DEACTIVATED = "account_deactivated", "Account deactivated"
        ACCOUNT_REACTIVATED = "account_reactivated", "Account reactivated"
        SESSIONS_ENDED = "sessions_ended", "Sessions ended"
        SESSION_EXPIRED = "session_expired", "Session expired"
        ACCESS_DENIED = "access_denied", "Access denied"
        LEDGER_CHECK_FAILED = "ledger_check_failed", "Ledger verification failed"
        TILL_AUTH_FAILED = "till_auth_failed", "Till authentication failed"
        CARD_NUMBER_REFUSED = "card_number_refused", "Card number refused"
        MEMBER_TOKEN_REUSED = "member_token_reused", "Member refresh token reused (possible theft)"
        SHIFT_STARTED = "shift_started", "Clocked in at a till"
        SHIFT_ENDED = "shift_ended", "Clocked out"
        SHIFT_REFUSED = "shift_refused", "Till clock-in refused"
        OVERRIDE_GRANTED = "override_granted", "Manager override granted at a till"
        OVERRIDE_REFUSED = "override_refused", "Manager override refused"
        AUDIT_CHAIN_BROKEN = "audit_chain_broken", "Tamper-evident log verification failed"

    kind = models.CharField(max_length=40, choices=Kind.choices, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        StaffUser, null=True, blank=True, on_delete=models.PROTECT, related_name="security_events"
    )
    subject = models.ForeignKey(
        StaffUser,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="security_events_about",
        help_text="The account the event is about, when it is not the actor's own.",
    )
    username = models.CharField(max_length=150, blank=True, help_text="Username as attempted (normalised).")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["actor", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M:%S}"
