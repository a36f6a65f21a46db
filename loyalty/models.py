"""Programme-wide models. The points ledger joins them here."""

from django.db import models
from django.db.models.functions import Upper


class Store(models.Model):
    """A retail store. Staff are assigned to stores; store-scoped roles see only theirs."""

    code = models.CharField(max_length=16, unique=True, help_text="Short store code, e.g. KL01.")
    name = models.CharField(max_length=120)
    region = models.CharField(max_length=80, blank=True, db_index=True)
    active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(Upper("code"), name="store_code_ci_unique"),
        ]
        permissions = [
            # Held by roles that work across all stores; without it a user sees only the
            # stores they are assigned to (see loyalty.scoping).
            ("view_all_stores", "Can see objects of every store"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
