"""Access events (COMPLIANCE.md §5): who looked at members' records, searched for members,
generated or downloaded a report or document, or changed programme configuration.

Append-only (Python and PostgreSQL triggers; deleted only by the retention purge function,
stream ``access``, 2 years). Written only by ``compliance.access.record``. Never holds a
search term or personal data: members by id, parameters filtered to kinds and counts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from loyalty.kernel.append_only import AppendOnlyModel


class AccessEvent(AppendOnlyModel):
    class Kind(models.TextChoices):
        MEMBER_VIEW = "member_view", "Member record viewed"
        MEMBER_SEARCH = "member_search", "Member search"
        TILL_LOOKUP = "till_lookup", "Till member look-up"
        REPORT = "report", "Report generated or viewed"
        DOWNLOAD = "download", "File downloaded"
        CONFIG_CHANGE = "config_change", "Programme configuration changed"
        MEMBER_EXPORT = "member_export", "Member data exported"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField(db_index=True)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Further members by id (a search's hits, a report's rows): ids only.
    member_ids = models.JSONField(default=list, blank=True)
    object_type = models.CharField(max_length=100, blank=True)  # app_label.model
    object_id = models.CharField(max_length=64, blank=True)
    report_type = models.CharField(max_length=60, blank=True)
    # Filtered parameters: kinds and counts (by=phone, hits=1), never a search term.
    parameters = models.JSONField(default=dict, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["staff", "at"], name="compliance_access_staff_at")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"
