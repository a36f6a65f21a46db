"""Members of the programme. They are never Django users and never sign in to the admin.

This is the minimal member the ledger needs; personal data (encrypted) arrives with
the members issue.
"""

from django.db import models

from members.numbers import loyalty_number_generate


class Member(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        LOCKED = "locked", "Locked"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    loyalty_number = models.CharField(max_length=16, unique=True, default=loyalty_number_generate, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    tier = models.PositiveSmallIntegerField(default=1, db_index=True)
    home_store = models.ForeignKey(
        "loyalty.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(loyalty_number__regex=r"^99[0-9]{14}$"), name="member_loyalty_number_format"
            ),
        ]

    def __str__(self) -> str:
        # The loyalty number only: __str__ lands in audit logs and admin history.
        return self.loyalty_number
