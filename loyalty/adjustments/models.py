"""Manual adjustments' tables: reasons, requests, their events and the daily report."""

from django.conf import settings
from django.db import models

from loyalty.kernel.append_only import AppendOnlyModel
from loyalty.kernel.models import Store
from loyalty.ledger.models import LedgerOperation

# --- Manual adjustments (maker-checker) -----------------------------------------------------
#
# The rules live in settings.ADJUSTMENT_POLICY and loyalty.adjustments.services; the database
# holds the parts that must never break: nobody approves or reviews their own request,
# a request posts at most once (its operation), and its events are append-only.


class AdjustmentReason(models.Model):
    """The managed list of reason codes an adjustment must give."""

    code = models.CharField(max_length=32, unique=True)
    label = models.CharField(max_length=120)
    active = models.BooleanField(default=True, help_text="Inactive reasons stay on old requests but cannot be chosen.")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code}: {self.label}"


def _adjustment_document_storage():
    from django.core.files.storage import storages

    return storages["private"]


class AdjustmentRequest(models.Model):
    """A manual credit (points > 0) or debit (points < 0) of a member's points.

    Below the direct threshold it posts at once; above, it waits for the approvals its
    band needs and posts through the ledger exactly once (``operation``).
    """

    class Band(models.TextChoices):
        DIRECT = "direct", "Direct (below the approval threshold)"
        SUPERVISOR = "supervisor", "Supervisor approval"
        HEADQUARTERS = "headquarters", "Programme administrator approval and fraud review"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        POSTED = "posted", "Posted"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    class Verification(models.TextChoices):
        PHONE = "phone", "Phone call to the registered number"
        IDENTITY_DOCUMENT = "identity_document", "Identity document checked in person"

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="adjustment_requests")
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="adjustment_requests",
        help_text="The store that raised the request; empty for headquarters.",
    )  # fmt: skip
    points = models.BigIntegerField(help_text="Positive credits the member, negative debits.")
    band = models.CharField(max_length=20, choices=Band.choices, editable=False)
    reason = models.ForeignKey(AdjustmentReason, on_delete=models.PROTECT, related_name="requests")
    justification = models.TextField(blank=True)
    verification_method = models.CharField(max_length=20, choices=Verification.choices, blank=True)
    verified_by = models.CharField(max_length=120, blank=True, help_text="Who verified the member (who called).")
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_outcome = models.CharField(max_length=200, blank=True)
    document = models.FileField(
        storage=_adjustment_document_storage, upload_to="adjustments/%Y/%m/", blank=True,
        help_text="Written justification (PDF, PNG or JPEG); served only to those who may see the request.",
    )  # fmt: skip
    document_type = models.CharField(max_length=60, blank=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjustments_requested"
    )
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING, db_index=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="adjustments_approved"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="adjustments_reviewed"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    operation = models.OneToOneField(
        LedgerOperation, null=True, blank=True, on_delete=models.PROTECT, related_name="adjustment_request"
    )

    class Meta:
        ordering = ["-requested_at"]
        permissions = [
            ("approve_adjustmentrequest", "Can approve manual point adjustments"),
            ("review_adjustmentrequest", "Can review large manual point adjustments (fraud team)"),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(points=0), name="adjustment_moves_points"),
            models.CheckConstraint(
                condition=~models.Q(approved_by=models.F("requested_by")), name="adjustment_not_approved_by_requester"
            ),
            models.CheckConstraint(
                condition=~models.Q(reviewed_by=models.F("requested_by")), name="adjustment_not_reviewed_by_requester"
            ),
            models.CheckConstraint(
                condition=models.Q(state="posted", operation__isnull=False)
                | (~models.Q(state="posted") & models.Q(operation__isnull=True)),
                name="adjustment_posted_iff_operation",
            ),
        ]
        indexes = [models.Index(fields=["store", "-requested_at"])]

    def __str__(self) -> str:
        return f"Adjustment #{self.pk} ({self.points:+,} points)"


class AdjustmentEvent(AppendOnlyModel):
    """One state change of a request: who, when, and their comment. Append-only."""

    class Kind(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REVIEWED = "reviewed", "Reviewed by the fraud team"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        POSTED = "posted", "Posted to the ledger"

    request = models.ForeignKey(AdjustmentRequest, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="adjustment_events"
    )
    actor_job = models.CharField(max_length=80, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class AdjustmentReport(models.Model):
    """The daily adjustment report (a scheduled task writes one per day): every
    adjustment request of the day by store and staff member."""

    day = models.DateField(unique=True)
    generated_at = models.DateTimeField(auto_now=True)
    rows = models.JSONField(default=list, help_text="One entry per request, in CSV column order.")
    totals = models.JSONField(default=dict, help_text="Points and counts by store and by staff member.")

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Adjustments of {self.day:%Y-%m-%d}"
