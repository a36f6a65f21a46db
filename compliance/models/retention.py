"""Retention purges (COMPLIANCE.md §2): runs, their per-batch evidence, and legal holds."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RetentionRun(models.Model):
    """One purge run: the policy and cutoffs frozen at its start, its progress (last pk
    per table, so a crashed run resumes) and its counts. No personal data."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    dry_run = models.BooleanField()
    started_by = models.CharField(max_length=150, help_text="Who or what started it (a username or 'schedule').")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    policy = models.JSONField(help_text="The policy and cutoffs, frozen at the start.")
    dry_counts = models.JSONField(default=dict, help_text="Per category and table: rows due (the dry run).")
    counts = models.JSONField(default=dict, help_text="Per category and table: rows purged so far.")
    held = models.JSONField(default=dict, help_text="Per table: rows skipped under a legal hold.")
    progress = models.JSONField(default=dict, help_text="Per table: the last primary key done.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        kind = "dry run" if self.dry_run else "purge"
        return f"Retention {kind} of {self.started_at:%Y-%m-%d %H:%M}"


class RetentionBatch(models.Model):
    """One keyset batch of a run: its count and the SHA-256 of its ``table:pk`` list (for
    the chained purge record)."""

    run = models.ForeignKey(RetentionRun, on_delete=models.PROTECT, related_name="batches")
    table = models.CharField(max_length=63)
    count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    first_pk = models.BigIntegerField()
    last_pk = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["run", "table", "first_pk"], name="retention_batch_once")]

    def __str__(self) -> str:
        return f"{self.table} {self.first_pk}-{self.last_pk}: {self.count}"


class LegalHold(models.Model):
    """Stops purging a member's records or one record while it stands (released_at empty)."""

    class Scope(models.TextChoices):
        MEMBER = "member", "Member"
        RECORD = "record", "Record"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    table_name = models.CharField(max_length=63, blank=True)
    record_pk = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField()
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    placed_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            models.CheckConstraint(
                name="legal_hold_scope_target",
                condition=(models.Q(scope="member", member__isnull=False, record_pk__isnull=True))
                | (models.Q(scope="record", member__isnull=True, record_pk__isnull=False) & ~models.Q(table_name="")),
            )
        ]

    def __str__(self) -> str:
        return f"Legal hold ({self.get_scope_display()}) placed {self.placed_at:%Y-%m-%d}"


class InactivityNotice(models.Model):
    """A long-inactive member warned that their account will be closed (COMPLIANCE.md §2:
    inactive = ``RETENTION_INACTIVE_MONTHS`` idle with nothing on the balance, warned
    ``RETENTION_INACTIVE_WARNING_DAYS`` before). Closed when the warning lapses with the
    member still idle (their personal data then follows the closed members' period);
    cancelled when they come back."""

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    warned_at = models.DateTimeField()
    close_after = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-warned_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(closed_at__isnull=True, cancelled_at__isnull=True),
                name="compliance_one_open_inactivity_notice",
            ),
            models.CheckConstraint(
                condition=models.Q(closed_at__isnull=True) | models.Q(cancelled_at__isnull=True),
                name="compliance_inactivity_notice_closed_or_cancelled",
            ),
        ]

    def __str__(self) -> str:
        return f"Inactivity notice of {self.warned_at:%Y-%m-%d}"
