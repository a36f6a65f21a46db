"""Data-subject requests under the PDPA (COMPLIANCE.md §4).

A request moves received → identity_pending → verified → in_progress → completed |
partial | refused | cancelled (an unverified request lapses: cancelled, reason
``lapsed``). Every change is one ``DataSubjectRequestEvent`` (append-only). A database
CHECK refuses ``in_progress`` (and the states after it, but ``refused``/``cancelled``)
without ``identity_verified_at``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from loyalty.kernel.append_only import AppendOnlyModel


class DataSubjectRequest(models.Model):
    class Kind(models.TextChoices):
        ACCESS = "access", "Access (export)"
        CORRECTION = "correction", "Correction"
        ERASURE = "erasure", "Erasure"
        CONSENT_WITHDRAWAL = "consent_withdrawal", "Consent withdrawal"

    class Channel(models.TextChoices):
        API = "api", "Member API"
        STAFF = "staff", "Staff on the member's behalf"

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        IDENTITY_PENDING = "identity_pending", "Identity pending"
        VERIFIED = "verified", "Verified"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        PARTIAL = "partial", "Partially completed"
        REFUSED = "refused", "Refused"
        CANCELLED = "cancelled", "Cancelled"

    class IdentityCheck(models.TextChoices):
        STEP_UP_OTP = "step_up_otp", "Session and step-up OTP"
        NRIC_SIGHTED = "nric_sighted", "Identity card sighted (number not recorded)"
        PASSPORT_SIGHTED = "passport_sighted", "Passport sighted (number not recorded)"
        CALLBACK = "callback", "Call back on the registered phone"
        CONTACT_CONFIRMED = "contact_confirmed", "Confirmed through the registered contact"

    OPEN_STATES = ("received", "identity_pending", "verified", "in_progress")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="data_subject_requests")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    received_at = models.DateTimeField(db_index=True)
    due_at = models.DateTimeField(db_index=True, help_text="End of the programme-local day 21 after receipt.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED, db_index=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    identity_check = models.CharField(max_length=20, choices=IdentityCheck.choices, blank=True, default="")
    identity_verified_at = models.DateTimeField(null=True, blank=True)
    confirmation_code_hash = models.CharField(
        max_length=64, blank=True, default="", help_text="SHA-256 of the code sent to the registered contact."
    )
    detail = models.JSONField(default=dict, blank=True, help_text="What is asked (no identity numbers).")
    refusal_code = models.CharField(max_length=40, blank=True, default="")
    refusal_reason = models.CharField(max_length=500, blank=True, default="")
    refusal_basis = models.CharField(max_length=200, blank=True, default="")
    grace_ends_at = models.DateTimeField(null=True, blank=True, help_text="Erasure: cancellable until then.")
    steps_done = models.JSONField(default=list, blank=True, help_text="Erasure: the steps done, in order.")
    reminders_sent = models.JSONField(default=list, blank=True, help_text="Reminder days sent (7, 14, 18).")
    escalated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        permissions = [("manage_datasubjectrequest", "Can act on data-subject requests")]
        constraints = [
            models.CheckConstraint(
                name="dsr_verified_before_work",
                condition=~models.Q(state__in=["verified", "in_progress", "completed", "partial"])
                | models.Q(identity_verified_at__isnull=False, identity_check__gt=""),
            ),
            models.CheckConstraint(
                name="dsr_refusal_has_code",
                condition=~models.Q(state="refused") | models.Q(refusal_code__gt="", refusal_reason__gt=""),
            ),
            models.CheckConstraint(
                name="dsr_due_after_receipt", condition=models.Q(due_at__gt=models.F("received_at"))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} request DSR-{self.pk}"

    @property
    def reference(self) -> str:
        return f"DSR-{self.pk:06d}" if self.pk else "DSR-new"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class DataSubjectRequestEvent(AppendOnlyModel):
    request = models.ForeignKey(DataSubjectRequest, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=40)
    state_before = models.CharField(max_length=20, blank=True, default="")
    state_after = models.CharField(max_length=20, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} ({self.state_before} → {self.state_after})"


class DataExport(models.Model):
    """A built export bundle, downloadable once within 24 hours through a link whose
    token is stored hashed (SHA-256 of a 256-bit token)."""

    request = models.ForeignKey(DataSubjectRequest, on_delete=models.PROTECT, related_name="exports")
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    content = models.BinaryField(null=True, blank=True, editable=False)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    downloaded_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Export for {self.request.reference}"


class ErasureCertificate(models.Model):
    """No personal data: categories erased and kept, with basis and end dates."""

    request = models.OneToOneField(DataSubjectRequest, on_delete=models.PROTECT, related_name="certificate")
    member_ref = models.UUIDField(help_text="The member's pseudonymous id.")
    body = models.JSONField()
    sha256 = models.CharField(max_length=64)
    issued_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Certificate of erasure for {self.request.reference}"
