"""Consumer protection (spec, "Retail/Consumer Protection"): versioned terms and
conditions with members' acceptances, and complaints and disputes with their history.

- ``TermsVersion``: a draft may be edited; once published (``published_at`` set) the
  row is immutable (a trigger refuses any UPDATE of a published row, and every DELETE).
- ``TermsAcceptance``: append-only, one per member and version.
- ``Complaint``: the case; only its workflow columns move (state, assignee, timestamps),
  guarded by a trigger; the text the member wrote never changes.
- ``ComplaintEvent``: append-only history (notes, responses, state changes).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from loyalty.kernel.append_only import AppendOnlyModel


class TermsVersion(models.Model):
    version = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text or Markdown, shown to members as written.")
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        ordering = ["-version"]
        permissions = [("publish_termsversion", "Publish a terms and conditions version")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(published_at__isnull=True, published_by__isnull=True)
                | models.Q(published_at__isnull=False, published_by__isnull=False),
                name="terms_published_by_whom",
            ),
        ]

    def __str__(self) -> str:
        return f"Terms v{self.version}: {self.title}"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class TermsAcceptance(AppendOnlyModel):
    class Channel(models.TextChoices):
        API = "api", "Member app"
        ENROLMENT = "enrolment", "Enrolment"
        STAFF = "staff", "Staff"

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="terms_acceptances")
    version = models.ForeignKey(TermsVersion, on_delete=models.PROTECT, related_name="acceptances")
    accepted_at = models.DateTimeField()
    channel = models.CharField(max_length=16, choices=Channel.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "version"], name="terms_accepted_once")]
        indexes = [models.Index(fields=["member", "-accepted_at"])]

    def __str__(self) -> str:
        return f"Acceptance of terms v{self.version.version}"


class Complaint(models.Model):
    class Kind(models.TextChoices):
        COMPLAINT = "complaint", "Complaint"
        POINTS_DISPUTE = "points_dispute", "Points dispute"
        VOUCHER_DISPUTE = "voucher_dispute", "Voucher dispute"
        SERVICE = "service", "Service"

    class Channel(models.TextChoices):
        API = "api", "Member app"
        STAFF = "staff", "Staff on the member's behalf"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        RESPONDED = "responded", "Responded"
        ESCALATED = "escalated", "Escalated"
        RESOLVED = "resolved", "Resolved"
        REJECTED = "rejected", "Rejected"

    CLOSED = (State.RESOLVED, State.REJECTED)

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="complaints")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    ledger_operation = models.ForeignKey(
        "loyalty.LedgerOperation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    voucher = models.ForeignKey("vouchers.Voucher", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    store = models.ForeignKey("loyalty.Store", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField()
    respond_by = models.DateTimeField(help_text="First response deadline.")
    resolve_by = models.DateTimeField(help_text="Resolution deadline.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    first_responded_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    adjustment = models.ForeignKey(
        "loyalty.AdjustmentRequest", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["respond_by"]
        permissions = [("respond_complaint", "Respond to, resolve, reject or assign complaints")]
        indexes = [models.Index(fields=["state", "respond_by"]), models.Index(fields=["member", "-received_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(respond_by__lte=models.F("resolve_by")), name="complaint_deadlines"
            ),
            models.CheckConstraint(
                condition=models.Q(channel="api", filed_by__isnull=True)
                | models.Q(channel="staff", filed_by__isnull=False),
                name="complaint_filed_by_channel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class ComplaintEvent(AppendOnlyModel):
    class Kind(models.TextChoices):
        FILED = "filed", "Filed"
        NOTE = "note", "Internal note"
        RESPONSE = "response", "Response to the member"
        STATE = "state", "State changed"
        ASSIGNED = "assigned", "Assigned"
        REMINDER = "reminder", "Deadline reminder"
        ESCALATED = "escalated", "Escalated (deadline passed)"
        ADJUSTMENT = "adjustment", "Adjustment requested"

    complaint = models.ForeignKey(Complaint, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    text = models.TextField(blank=True)
    state_from = models.CharField(max_length=12, blank=True)
    state_to = models.CharField(max_length=12, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on complaint #{self.complaint_id}"
