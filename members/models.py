"""Members of the programme. They are never Django users and never sign in to the admin.

Personal data (name, phone, email, postal address, date of birth) is stored only
encrypted, under the member's own data key (envelope encryption, ``members.pii``);
the columns ending in ``_encrypted`` hold Fernet tokens, never plaintext, and are read
and written only through ``members.pii`` and ``members.services``. Phone and email
are found by equality through blind indexes (``phone_index``, ``email_index``).
Outside ``members/`` a member is referred to by the pseudonymous ``member_id``.
"""

import uuid

from django.conf import settings
from django.db import models

from loyalty.append_only import AppendOnlyModel
from members.numbers import loyalty_number_generate

# Fields holding ciphertext, blind indexes or key material: never in audit diffs,
# admin columns, serializers or logs.
PII_FIELDS = ("name", "phone", "email", "address", "birth_date")
SECRET_COLUMNS = (
    *(f"{field}_encrypted" for field in PII_FIELDS),
    "phone_index",
    "email_index",
    "data_key_wrapped",
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
    # Blind indexes: hex HMAC-SHA256 of the normalised value (members.pii.blind_index);
    # NULL when there is no value, so the unique constraints allow any number of those.
    phone_index = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    email_index = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    # The blind-index key version the two indexes were computed with (rotating
    # BLIND_INDEX_KEY means recomputing them, member by member).
    blind_index_version = models.PositiveSmallIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(loyalty_number__regex=r"^99[0-9]{14}$"), name="member_loyalty_number_format"
            ),
        ]
        permissions = [("reveal_member_pii", "Can reveal a member's personal data (each reveal is recorded)")]

    def __str__(self) -> str:
        # The loyalty number only: __str__ lands in audit logs and admin history.
        return self.loyalty_number


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
        verbose_name = "member personal-data access"
        verbose_name_plural = "member personal-data accesses"

    def __str__(self) -> str:
        return f"{self.staff_id} viewed {self.field} of member {self.member_id}"
