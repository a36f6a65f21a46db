"""Fraud alerts: what the fraud team investigates.

An alert names what happened (``kind``), who it is about (a member, a staff user, a
store; any of them may be empty) and the facts in ``detail`` (ids and counts, never
personal data or secrets). Raised by services (a second scan of a used voucher, a
cashier redeeming too often...), never edited except for its investigation status.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

# What each kind of alert means, for people (``kind`` is a code the raisers share).
KIND_LABELS = {
    "voucher_rescan": "Used voucher presented again",
    "cashier_redemption_frequency": "Cashier redeeming too often",
    "redemption_irregular": "Sampled redemption found irregular",
    "enumeration_404": "API client probing for members or vouchers (many not-found answers)",
    "pii_reveal_volume": "Staff member revealing unusually much personal data",
    "pii_reveal_outside_stores": "Staff member revealed personal data of a member outside their stores",
}


class FraudAlert(models.Model):
    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        INVESTIGATING = "investigating", "Investigating"
        CLOSED = "closed", "Closed"

    kind = models.CharField(max_length=40, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_alerts"
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_alerts"
    )
    store = models.ForeignKey("loyalty.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict, blank=True)
    # One alert per incident: services that may fire repeatedly for one incident give a
    # key (e.g. "voucher_rescan:<voucher>:<day>"), and a second raise finds the first.
    dedupe_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        # Stored in UTC, shown in the programme's time zone (as every time on a page).
        when = f", {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}" if self.created_at else ""
        return f"{self.get_kind_display()} ({self.get_severity_display()}{when})"

    def get_kind_display(self) -> str:
        return KIND_LABELS.get(self.kind) or self.kind.replace("_", " ").capitalize()
