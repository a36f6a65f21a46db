"""Members of the programme. They are never Django users and never sign in to the admin.

Personal data (name, phone, email, postal address, date of birth) is stored only
encrypted, under the member's own data key (envelope encryption, ``members.services.pii``);
the columns ending in ``_encrypted`` hold Fernet tokens, never plaintext, and are read
and written only through ``members.services.pii`` and ``members.services.membership``. Phone and email
are found by equality through blind indexes (``phone_index``, ``email_index``).
Outside ``members/`` a member is referred to by the pseudonymous ``member_id``.
"""

import uuid

from django.conf import settings
from django.db import models

from loyalty.kernel.append_only import AppendOnlyModel
from members.numbers import loyalty_number_generate

# Fields holding ciphertext, blind indexes or key material: never in audit diffs,
# admin columns, serializers or logs.
PII_FIELDS = ("name", "phone", "email", "address", "birth_date")
SECRET_COLUMNS = (
    *(f"{field}_encrypted" for field in PII_FIELDS),
    "phone_index",
    "email_index",
    "data_key_wrapped",
    "password_hash",
)


class Member(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        LOCKED = "locked", "Locked"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"

    loyalty_number = models.CharField(max_length=16, unique=True, default=loyalty_number_generate, editable=False)
    # The pseudonymous id other apps and exports use instead of the loyalty number or PII.
    member_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    tier = models.PositiveSmallIntegerField(default=1, db_index=True)
    home_store = models.ForeignKey(
        "loyalty.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    preferred_channel = models.CharField(max_length=8, choices=Channel.choices, blank=True, default="")

    # The member's data key (a Fernet key), wrapped by the programme key
    # (settings.FIELD_ENCRYPTION_KEYS). Empty until the member has personal data, and
    # again once erased (crypto-shredding): without it the tokens below are noise.
    data_key_wrapped = models.TextField(blank=True, default="", editable=False)
    pii_erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    name_encrypted = models.TextField(blank=True, default="", editable=False)
    phone_encrypted = models.TextField(blank=True, default="", editable=False)
    email_encrypted = models.TextField(blank=True, default="", editable=False)
    address_encrypted = models.TextField(blank=True, default="", editable=False)
    birth_date_encrypted = models.TextField(blank=True, default="", editable=False)
    # Blind indexes: hex HMAC-SHA256 of the normalised value (members.services.pii.blind_index);
    # NULL when there is no value, so the unique constraints allow any number of those.
    phone_index = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    email_index = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    # The blind-index key version the two indexes were computed with (rotating
    # BLIND_INDEX_KEY means recomputing them, member by member).
    blind_index_version = models.PositiveSmallIntegerField(default=1, editable=False)
    # The optional member password (Django's hashers, argon2 first); empty: none set.
    password_hash = models.CharField(max_length=256, blank=True, default="", editable=False)
    password_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Spending (hold, redeem, capture) is refused until then; earning continues. Set and
    # cleared only by ``members.services.restrictions`` (the ``MemberRestriction`` rows
    # are the history); read by the ledger in its member lock's SELECT (no extra query).
    # A confirmed freeze runs to ``FREEZE_INDEFINITE`` until lifted.
    spend_frozen_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(loyalty_number__regex=r"^99[0-9]{14}$"), name="member_loyalty_number_format"
            ),
        ]
        permissions = [
            ("reveal_member_pii", "Can reveal a member's personal data (each reveal is recorded)"),
            ("end_member_sessions", "Can end all of a member's app, web and kiosk sessions (suspicious activity)"),
            ("restrict_member", "Can freeze a member's spending, lock a member and block a member's device (fraud)"),
            ("suspend_member", "Can suspend or restore a member and confirm a spending freeze (fraud)"),
        ]

    def __str__(self) -> str:
        # The loyalty number only: __str__ lands in audit logs and admin history.
        return self.loyalty_number

    @property
    def tier_label(self) -> str:
        """The tier's name in ``settings.LOYALTY_TIERS`` (``Silver``), or ``Tier 5`` for a
        tier the setting does not name."""
        names = {t["tier"]: t.get("name") for t in settings.LOYALTY_TIERS}
        return names.get(self.tier) or f"Tier {self.tier}"


class MemberPiiAccess(AppendOnlyModel):
    """One reveal of one personal-data field of one member by one staff user.

    Append-only (a PostgreSQL trigger refuses UPDATE and DELETE too). Holds who, when,
    which member and which field, never the value.
    """

    class Field(models.TextChoices):
        NAME = "name", "Name"
        PHONE = "phone", "Phone"
        EMAIL = "email", "Email"
        ADDRESS = "address", "Postal address"
        BIRTH_DATE = "birth_date", "Date of birth"

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="pii_accesses")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="member_pii_accesses")
    field = models.CharField(max_length=16, choices=Field.choices)
    accessed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-accessed_at", "-id"]
        # Reveal volume per staff member (FRAUD.md row 28) and the case timeline.
        indexes = [models.Index(fields=["staff", "accessed_at"], name="member_pii_access_staff_time")]
        verbose_name = "member personal-data access"
        verbose_name_plural = "member personal-data accesses"

    def __str__(self) -> str:
        return f"{self.staff_id} viewed {self.field} of member {self.member_id}"


# --- Member authentication: SMS one-time codes ---------------------------------------------
#
# Numbers come from settings.MEMBER_AUTH. A code is stored only as an HMAC (OTP_HMAC_KEY)
# bound to the phone, the purpose and the challenge; a phone number appears only as its
# blind index.


class OtpChallenge(models.Model):
    """One code sent by SMS. Single use; a few guesses; expires after minutes."""

    class Purpose(models.TextChoices):
        LOGIN = "login", "Log in"
        ENROL = "enrol", "Enrolment"
        STEP_UP = "step_up", "Step-up verification"
        CHANGE_PHONE = "change_phone", "New phone number"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone_index = models.CharField(max_length=64, help_text="Blind index of the phone number (never the number).")
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.CASCADE, related_name="otp_challenges",
        help_text="The member the number belongs to; empty when it is not enrolled.",
    )  # fmt: skip
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    action = models.CharField(max_length=80, blank=True, help_text="For a step-up: the action it authorises.")
    code_hmac = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    guesses = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(
        null=True, blank=True, help_text="For a step-up: when the action it authorised was carried out (single use)."
    )

    class Meta:
        indexes = [models.Index(fields=["phone_index", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} code {self.id}"


class OtpPhoneState(models.Model):
    """Per phone number (by blind index): the row its OTP counters are updated under
    (locked), so parallel requests and guesses cannot slip past a limit."""

    phone_index = models.CharField(max_length=64, primary_key=True)
    failures_on = models.DateField(null=True, blank=True, help_text="The day the failure count is for.")
    failures = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True, help_text="OTP log-in refused until then.")

    def __str__(self) -> str:
        return f"OTP state {self.phone_index[:8]}…"


# --- Member authentication: devices, sessions, tokens, security log -------------------------


class MemberDevice(models.Model):
    """A device a member logged in from: known devices skip nothing but are recognised;
    a blocked one cannot be used again."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="devices")
    fingerprint_hash = models.CharField(max_length=64, help_text="SHA-256 of the device fingerprint.")
    label = models.CharField(max_length=120, blank=True, help_text="OS and app or browser, as reported.")
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True, help_text="Approximate, from the geolocation backend.")
    longitude = models.FloatField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    blocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "fingerprint_hash"], name="member_device_once")]

    def __str__(self) -> str:
        # The label is the member's own text (it may name them): never in logs or audit rows.
        return f"device {self.pk}"


class MemberSession(models.Model):
    """A member's session on one channel; its limits are enforced on every request."""

    class Channel(models.TextChoices):
        APP = "app", "Mobile app"
        WEB = "web", "Web"
        KIOSK = "kiosk", "In-store kiosk"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sessions")
    device = models.ForeignKey(MemberDevice, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    remember_me = models.BooleanField(default=False, help_text="Web: long-lived with lower privilege.")
    biometric = models.BooleanField(default=False, help_text="App: unlocked by the device's biometrics.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="Absolute end, whatever the activity.")
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        indexes = [models.Index(fields=["member", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} session {self.id}"


class RefreshToken(models.Model):
    """One refresh token (stored as a hash). Each use rotates it; a token used twice
    reveals theft, and its whole family (the session's chain of tokens) is revoked."""

    session = models.ForeignKey(MemberSession, on_delete=models.CASCADE, related_name="refresh_tokens")
    family = models.UUIDField(db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh token {self.pk}"


class MemberSecurityEvent(AppendOnlyModel):
    """What happened to a member's account (logins, devices, sessions, changes): their
    security log, and the fraud team's. Append-only."""

    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="security_events")
    kind = models.CharField(max_length=40, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        # A member's timeline (fraud cases) and per-member detectors (FRAUD.md §6).
        indexes = [models.Index(fields=["member", "created_at"], name="member_security_event_time")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.created_at:%Y-%m-%d %H:%M})"


class MemberRestriction(models.Model):
    """One restriction put on a member by the fraud team (FRAUD.md §3 "Actions"): a
    spending freeze (earning continues), a suspension, a lock (sessions revoked) or a
    blocked device, or an SMS step-up required before the next redemption or contact
    change. The history of a member's standing: rows are only added, and a lift
    sets ``lifted_at``, ``lifted_by`` and ``lift_reason`` once (a conditional UPDATE; a
    PostgreSQL trigger refuses any other change, and DELETE). The member's current
    standing lives on ``Member`` (``status``, ``spend_frozen_until``) and
    ``MemberDevice.blocked_at``; these rows say who, why, when and under which case.

    ``reason`` is staff free text (never shown to the member); ``case_ref`` is the fraud
    case's reference, which the member is told. A freeze ``ends_at`` a time (an
    analyst's lapses after ``FRAUD["freeze_unconfirmed_hours"]``) unless ``confirmed``.
    """

    class Kind(models.TextChoices):
        SPEND_FREEZE = "spend_freeze", "Spending frozen (earning continues)"
        SUSPEND = "suspend", "Suspended"
        LOCK = "lock", "Locked (sessions revoked)"
        DEVICE_BLOCK = "device_block", "Device blocked"
        # The fraud score's step_up outcome (FRAUD.md §2): an SMS step-up before the next
        # redemption or contact change; passing one lifts it.
        STEP_UP = "step_up", "SMS step-up required (before spending or a contact change)"

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="restrictions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The blocked device's id (device blocks only): an id, not a foreign key, so that the
    # history outlives the device row.
    device_id = models.PositiveIntegerField(null=True, blank=True)
    reason = models.TextField()
    case_ref = models.CharField(max_length=40, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Empty for an automatic restriction (the fraud pipeline).",
    )  # fmt: skip
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="When it lapses; empty: until lifted.")
    confirmed = models.BooleanField(default=False)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["member", "starts_at"], name="member_restriction_time")]
        constraints = [
            # One live restriction of a kind per member (per device for device blocks):
            # concurrent or repeated actions find it instead of adding a second.
            models.UniqueConstraint(
                fields=["member", "kind"],
                condition=models.Q(lifted_at__isnull=True) & ~models.Q(kind="device_block"),
                name="member_restriction_live_once",
            ),
            models.UniqueConstraint(
                fields=["device_id"],
                condition=models.Q(lifted_at__isnull=True, kind="device_block"),
                name="member_restriction_device_live_once",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="device_block", device_id__isnull=False)
                | (~models.Q(kind="device_block") & models.Q(device_id__isnull=True)),
                name="member_restriction_device_iff_block",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.starts_at:%Y-%m-%d %H:%M})"


# --- Passwords, contact verification, consents ----------------------------------------------


class MemberPasswordHistory(models.Model):
    """A password the member had (its hash): the last ``password_history`` may not be
    chosen again."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="password_history")
    password_hash = models.CharField(max_length=256)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "member password history"

    def __str__(self) -> str:
        return f"password of member {self.member_id} ({self.created_at:%Y-%m-%d})"


class ContactVerification(models.Model):
    """A new email address or phone number waiting for proof that the member controls it.

    The new value is kept encrypted under the member's data key and found by its blind
    index; it replaces the old one only when verified: an email by the single-use link
    token (stored as SHA-256), a phone by an SMS code (``challenge``). Expired, used or
    superseded rows are never reused.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", "Email address"
        PHONE = "phone", "Phone number"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="contact_verifications")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value_encrypted = models.TextField(editable=False)
    value_index = models.CharField(max_length=64, editable=False)
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    challenge = models.OneToOneField(
        OtpChallenge, null=True, blank=True, on_delete=models.SET_NULL, related_name="contact_verification"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True, help_text="Superseded by a newer request, or erased.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["member", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} verification {self.id}"


class Consent(models.Model):
    """A member's current choice for one purpose (the latest ``ConsentRecord``)."""

    class Purpose(models.TextChoices):
        ESSENTIAL = "essential", "Essential processing (running the membership)"
        SMS_MARKETING = "sms_marketing", "Marketing by SMS"
        EMAIL_MARKETING = "email_marketing", "Marketing by email"
        ANALYTICS = "analytics", "Analytics"
        DATA_SHARING = "data_sharing", "Sharing with programme partners"
        PERSONALISATION = "personalisation", "Personalised offers"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    granted = models.BooleanField()
    version = models.CharField(max_length=20, help_text="The version of the consent text the member saw.")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "purpose"], name="consent_once_per_purpose")]

    def __str__(self) -> str:
        return f"{self.purpose}: {'granted' if self.granted else 'not granted'}"


class ConsentRecord(AppendOnlyModel):
    """The record of consent the law asks for: every grant and withdrawal, when, how and
    under which text version. Append-only (a PostgreSQL trigger refuses UPDATE and DELETE)."""

    class Source(models.TextChoices):
        ENROLMENT = "enrolment", "Enrolment"
        MEMBER = "member", "The member (app or web)"
        STAFF = "staff", "Staff, on the member's request"

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="consent_records")
    purpose = models.CharField(max_length=20, choices=Consent.Purpose.choices)
    granted = models.BooleanField()
    version = models.CharField(max_length=20)
    source = models.CharField(max_length=12, choices=Source.choices)
    session_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.purpose} {'granted' if self.granted else 'withdrawn'} ({self.created_at:%Y-%m-%d})"
