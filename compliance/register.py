"""The data classification register (COMPLIANCE.md §1).

One entry per concrete field of every project model (``app_label.Model.field``), and
wildcard entries (``app_label.Model.*`` or ``app_label.*``) for third-party apps only.
Export, purge, log redaction and incident scoping read it; ``tests/compliance/test_register.py``
fails on an unclassified or stale field, an unknown fideslang key, and restricted fields left
unmasked in audit diffs, API serializers or ``__str__``.

Public API (small on purpose; other parts of compliance read it):

- ``entry(model, field)`` -> the :class:`Entry` of one field (``KeyError`` if unclassified);
- ``fields(level=None, export=None, secret=None)`` -> the matching field keys;
- ``restricted_fields()`` -> keys of every restricted field (secret or not);
- ``restricted_names(model)`` -> the restricted field names of one model;
- ``log_redacted_names()`` -> field names a log record must not carry (the log filter reads it);
- ``export_fields(model)`` -> the field names of one model that a data-subject export carries;
- ``retention_of(model)`` -> the retention category of a model's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from django.db import models

Level = Literal["public", "internal", "restricted", "regulated"]
Retention = Literal["transaction", "security", "access", "system", "member-PII", "employment", "own"]
Erasure = Literal["shred", "delete", "keep-pseudonymous", "null", "keep"]

PUBLIC: Final = "public"
INTERNAL: Final = "internal"
RESTRICTED: Final = "restricted"
REGULATED: Final = "regulated"
LEVELS: Final = (PUBLIC, INTERNAL, RESTRICTED, REGULATED)

# Retention categories (COMPLIANCE.md §2); ROW_OWN: the row carries its own retention.
TRANSACTION: Final = "transaction"
SECURITY: Final = "security"
ACCESS: Final = "access"
SYSTEM: Final = "system"
MEMBER_PII: Final = "member-PII"
EMPLOYMENT: Final = "employment"
ROW_OWN: Final = "own"

# Erasure actions on a data-subject erasure request.
SHRED: Final = "shred"  # crypto-shred: the member's data key is destroyed
DELETE: Final = "delete"  # the row goes
PSEUDONYMISE: Final = "keep-pseudonymous"  # kept, pointing at the pseudonymous member only
NULL: Final = "null"  # the value is blanked, the row stays
KEEP: Final = "keep"  # not personal data of the member (or held for a legal duty)

# The fideslang default-taxonomy data categories this register uses (IABTechLab/fideslang
# default_taxonomy/data_categories.py). Kept as constants: no dependency on fideslang.
FIDESLANG_CATEGORIES: Final = frozenset(
    {
        "system.operations",
        "user.authorization.credentials",
        "user.behavior.purchase_history",
        "user.contact",
        "user.contact.address",
        "user.contact.email",
        "user.contact.phone_number",
        "user.content.private",
        "user.demographic.date_of_birth",
        "user.device",
        "user.device.device_id",
        "user.device.ip_address",
        "user.financial",
        "user.location.coarse",
        "user.name",
        "user.privacy_preferences",
        "user.unique_id",
        "user.unique_id.deterministic",
    }
)


@dataclass(frozen=True)
class Entry:
    level: Level
    category: str  # a fideslang data category key
    retention: Retention
    erasure: Erasure
    export: bool = False  # carried by a data-subject export
    secret: bool = False  # never exported, shown or logged

    @property
    def restricted(self) -> bool:
        return self.level in (RESTRICTED, REGULATED) or self.secret


def _e(
    level: Level, category: str, retention: Retention, erasure: Erasure, *, export: bool, secret: bool = False
) -> Entry:
    return Entry(level, category, retention, erasure, export and not secret, secret)


# Apps the project owns: every concrete field must have its own entry.
PROJECT_APPS: Final = frozenset({"loyalty", "members", "staffauth", "vouchers", "fraud", "compliance"})

# Third-party tables: classified as a whole.
WILDCARDS: dict[str, Entry] = {
    "admin.*": _e(RESTRICTED, "system.operations", SECURITY, KEEP, export=False),
    "auditlog.*": _e(RESTRICTED, "system.operations", ACCESS, PSEUDONYMISE, export=False),
    "auth.*": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "axes.*": _e(RESTRICTED, "system.operations", SYSTEM, KEEP, export=False),
    "contenttypes.*": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "django_celery_beat.*": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "guardian.*": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "otp_static.*": _e(RESTRICTED, "user.authorization.credentials", SYSTEM, KEEP, export=False, secret=True),
    "otp_totp.*": _e(RESTRICTED, "user.authorization.credentials", SYSTEM, KEEP, export=False, secret=True),
    "sessions.*": _e(RESTRICTED, "system.operations", SYSTEM, DELETE, export=False, secret=True),
}

REGISTER: dict[str, Entry] = {
    # compliance.InactivityNotice: warnings to long-inactive members before closure (kept with the purge's evidence).
    "compliance.InactivityNotice.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.InactivityNotice.member": _e(INTERNAL, "user.unique_id", SECURITY, PSEUDONYMISE, export=False),
    "compliance.InactivityNotice.warned_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.InactivityNotice.close_after": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.InactivityNotice.closed_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.InactivityNotice.cancelled_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.TermsVersion: terms and conditions versions (public once published; kept as contract records).
    "compliance.TermsVersion.id": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.version": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.title": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.body": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.effective_from": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.created_at": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.created_by": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.published_at": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsVersion.published_by": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    # compliance.TermsAcceptance: members' acceptances of a terms version (contract records).
    "compliance.TermsAcceptance.id": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.TermsAcceptance.member": _e(INTERNAL, "user.unique_id", TRANSACTION, PSEUDONYMISE, export=False),
    "compliance.TermsAcceptance.version": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, KEEP, export=True),
    "compliance.TermsAcceptance.accepted_at": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, KEEP, export=True),
    "compliance.TermsAcceptance.channel": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, KEEP, export=True),
    # compliance.Complaint: member complaints and disputes (the member's own; exported).
    "compliance.Complaint.id": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.Complaint.member": _e(INTERNAL, "user.unique_id", TRANSACTION, PSEUDONYMISE, export=False),
    "compliance.Complaint.kind": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.subject": _e(RESTRICTED, "user.content.private", TRANSACTION, NULL, export=True),
    "compliance.Complaint.body": _e(RESTRICTED, "user.content.private", TRANSACTION, NULL, export=True),
    "compliance.Complaint.ledger_operation": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True
    ),
    "compliance.Complaint.voucher": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.store": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.channel": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.filed_by": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=False),
    "compliance.Complaint.received_at": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.respond_by": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.resolve_by": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.state": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.assignee": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=False),
    "compliance.Complaint.first_responded_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True
    ),
    "compliance.Complaint.closed_at": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=True),
    "compliance.Complaint.reminded_at": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=False),
    "compliance.Complaint.escalated_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=False
    ),
    "compliance.Complaint.adjustment": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, KEEP, export=False),
    # compliance.ComplaintEvent: the complaints' append-only history (responses reach the member through the outbox).
    "compliance.ComplaintEvent.id": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.ComplaintEvent.complaint": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.ComplaintEvent.kind": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.ComplaintEvent.at": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.ComplaintEvent.actor": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.ComplaintEvent.text": _e(RESTRICTED, "user.content.private", TRANSACTION, NULL, export=False),
    "compliance.ComplaintEvent.state_from": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "compliance.ComplaintEvent.state_to": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    # compliance.DataSubjectRequest: data-subject requests (kept 3 years as compliance evidence).
    "compliance.DataSubjectRequest.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.kind": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.member": _e(INTERNAL, "user.unique_id", SECURITY, PSEUDONYMISE, export=False),
    "compliance.DataSubjectRequest.channel": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.received_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.due_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.state": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.received_by": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.identity_check": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.identity_verified_at": _e(
        INTERNAL, "system.operations", SECURITY, KEEP, export=False
    ),
    "compliance.DataSubjectRequest.confirmation_code_hash": _e(
        RESTRICTED, "user.authorization.credentials", SECURITY, KEEP, export=False, secret=True
    ),
    "compliance.DataSubjectRequest.detail": _e(RESTRICTED, "user.content.private", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.refusal_code": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.refusal_reason": _e(RESTRICTED, "user.content.private", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.refusal_basis": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=True),
    "compliance.DataSubjectRequest.grace_ends_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.steps_done": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.reminders_sent": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.escalated_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequest.completed_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=True),
    # compliance.DataSubjectRequestEvent: the requests' append-only history.
    "compliance.DataSubjectRequestEvent.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.request": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.kind": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.state_before": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.state_after": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.reason": _e(RESTRICTED, "user.content.private", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.actor": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.detail": _e(RESTRICTED, "user.content.private", SECURITY, KEEP, export=False),
    "compliance.DataSubjectRequestEvent.created_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.DataExport: export bundles (deleted on download or after 24 hours).
    "compliance.DataExport.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataExport.request": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataExport.token_hash": _e(
        RESTRICTED, "user.authorization.credentials", SECURITY, KEEP, export=False, secret=True
    ),
    "compliance.DataExport.content": _e(
        RESTRICTED, "user.content.private", SECURITY, DELETE, export=False, secret=True
    ),
    "compliance.DataExport.sha256": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataExport.size": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataExport.created_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataExport.expires_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataExport.downloaded_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.DataExport.deleted_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.ErasureCertificate: certificates of erasure (pseudonymous; kept).
    "compliance.ErasureCertificate.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ErasureCertificate.request": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ErasureCertificate.member_ref": _e(INTERNAL, "user.unique_id", SECURITY, KEEP, export=False),
    "compliance.ErasureCertificate.body": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ErasureCertificate.sha256": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ErasureCertificate.issued_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.ChainHead: the head of each stream (follows its stream).
    "compliance.ChainHead.stream": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainHead.seq": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainHead.chain": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainHead.last_verified_at": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainHead.last_verified_ok": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    # compliance.ChainLink: one link per chained row (kept with its stream; refs are pseudonymous keys).
    "compliance.ChainLink.id": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainLink.stream": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainLink.seq": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainLink.ref": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainLink.key_id": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainLink.mac": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainLink.chain": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    # compliance.ChainQueue: ledger rows waiting for the sealer (seconds).
    "compliance.ChainQueue.id": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainQueue.stream": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainQueue.ref": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    "compliance.ChainQueue.queued_at": _e(INTERNAL, "system.operations", ROW_OWN, KEEP, export=False),
    # compliance.ChainPurge: signed purge records (refs are pseudonymous keys).
    "compliance.ChainPurge.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.stream": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.seq_first": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.seq_last": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.count": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.refs_sha256": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.refs": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.key_id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.mac": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainPurge.created_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.ChainCheckpoint: signed checkpoints.
    "compliance.ChainCheckpoint.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainCheckpoint.stream": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainCheckpoint.seq": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainCheckpoint.chain": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainCheckpoint.key_id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainCheckpoint.mac": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainCheckpoint.created_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.ChainRotation: signed introductions of chain keys.
    "compliance.ChainRotation.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.stream": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.seq": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.chain": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.key_id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.prev_key_id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.mac_prev": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.mac_new": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainRotation.created_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.ChainAnchor: signed heads, also sent outside the database.
    "compliance.ChainAnchor.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainAnchor.body": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainAnchor.signature": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.ChainAnchor.created_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.RetentionRun: purge runs with their evidence (counts and digests only).
    "compliance.RetentionRun.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.dry_run": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.started_by": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.started_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.finished_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.state": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.policy": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.dry_counts": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.counts": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.held": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionRun.progress": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.RetentionBatch: purge batches (counts and digests only).
    "compliance.RetentionBatch.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionBatch.run": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionBatch.table": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionBatch.count": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionBatch.sha256": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionBatch.first_pk": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionBatch.last_pk": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.RetentionBatch.created_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    # compliance.LegalHold: legal holds (kept: a legal duty).
    "compliance.LegalHold.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.scope": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.member": _e(INTERNAL, "user.unique_id", SECURITY, KEEP, export=False),
    "compliance.LegalHold.table_name": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.record_pk": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.reason": _e(RESTRICTED, "user.content.private", SECURITY, KEEP, export=False),
    "compliance.LegalHold.placed_by": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.placed_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.released_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.released_by": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "compliance.LegalHold.release_reason": _e(RESTRICTED, "user.content.private", SECURITY, KEEP, export=False),
    # compliance.AccessEvent: the access log (stream access, 2 years; pseudonymous ids only).
    "compliance.AccessEvent.id": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=False),
    "compliance.AccessEvent.kind": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=True),
    "compliance.AccessEvent.at": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=True),
    "compliance.AccessEvent.staff": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=True),
    "compliance.AccessEvent.member": _e(INTERNAL, "user.unique_id", ACCESS, PSEUDONYMISE, export=False),
    "compliance.AccessEvent.member_ids": _e(INTERNAL, "user.unique_id", ACCESS, PSEUDONYMISE, export=False),
    "compliance.AccessEvent.object_type": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=False),
    "compliance.AccessEvent.object_id": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=False),
    "compliance.AccessEvent.report_type": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=True),
    "compliance.AccessEvent.parameters": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=False),
    "compliance.AccessEvent.rows": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=False),
    "compliance.AccessEvent.file_sha256": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=False),
    "compliance.AccessEvent.ip": _e(RESTRICTED, "user.device.ip_address", ACCESS, KEEP, export=False),
    "compliance.AccessEvent.request_id": _e(INTERNAL, "system.operations", ACCESS, KEEP, export=False),
    "loyalty.Store.id": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "loyalty.Store.code": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "loyalty.Store.name": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "loyalty.Store.region": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "loyalty.Store.active": _e(PUBLIC, "system.operations", TRANSACTION, KEEP, export=False),
    "loyalty.Store.created_at": _e(INTERNAL, "system.operations", TRANSACTION, KEEP, export=False),
    "loyalty.Till.id": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.Till.store": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.Till.code": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.Till.key_id": _e(RESTRICTED, "user.authorization.credentials", SYSTEM, KEEP, export=False, secret=True),
    "loyalty.Till.secret_encrypted": _e(
        RESTRICTED, "user.authorization.credentials", SYSTEM, KEEP, export=False, secret=True
    ),
    "loyalty.Till.allowed_ips": _e(RESTRICTED, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.Till.active": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.Till.created_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.OutboundMessage.id": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.channel": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.member": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.to": _e(RESTRICTED, "user.contact", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.subject": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.body": _e(RESTRICTED, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.topic": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.status": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.detail": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.created_at": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.OutboundMessage.sent_at": _e(INTERNAL, "user.content.private", SYSTEM, DELETE, export=True),
    "loyalty.JobRun.id": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.JobRun.task_name": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.JobRun.periodic_task_name": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.JobRun.started_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.JobRun.finished_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.JobRun.state": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.JobRun.error": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.Account.id": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.Account.kind": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.Account.member": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.MemberBalance.account": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.MemberBalance.credits_posted": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.MemberBalance.debits_posted": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.MemberBalance.debits_pending": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.MemberBalance.updated_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.kind": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.member": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.store": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.points": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.actor_staff": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.actor_till": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.actor_member": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.actor_job": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.receipt_ref": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.amount_minor": _e(INTERNAL, "user.financial", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.LedgerOperation.related": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.reason": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.hold_expires_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.pending_until": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.needs_review": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.item_lines": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.tender_hash": _e(
        RESTRICTED, "user.financial", TRANSACTION, NULL, export=False, secret=True
    ),
    "loyalty.LedgerOperation.receipt_presented": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LedgerOperation.created_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.Transfer.id": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.Transfer.operation": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.Transfer.kind": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.Transfer.debit_account": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.Transfer.credit_account": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.Transfer.amount": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.Transfer.pending": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.Transfer.reverses": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.Transfer.created_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.PointsLot.id": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.PointsLot.account": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.PointsLot.source": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.PointsLot.expires_on": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.PointsLot.earned": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.PointsLot.remaining": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LotMovement.id": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.LotMovement.transfer": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.LotMovement.lot": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.LotMovement.delta": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "loyalty.IdempotencyKey.id": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "loyalty.IdempotencyKey.scope": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "loyalty.IdempotencyKey.key": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "loyalty.IdempotencyKey.request_hash": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "loyalty.IdempotencyKey.status_code": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "loyalty.IdempotencyKey.response": _e(RESTRICTED, "system.operations", SYSTEM, DELETE, export=False, secret=True),
    "loyalty.IdempotencyKey.created_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "loyalty.LedgerRefusalEvent.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.kind": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.code": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.actor_till": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.actor_staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.store": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.facts": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.LedgerRefusalEvent.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "loyalty.AdjustmentReason.id": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.AdjustmentReason.code": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.AdjustmentReason.label": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.AdjustmentReason.active": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "loyalty.AdjustmentRequest.id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.member": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.store": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.points": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.band": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.reason": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.justification": _e(RESTRICTED, "user.content.private", TRANSACTION, NULL, export=True),
    "loyalty.AdjustmentRequest.verification_method": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.verified_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.verified_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.verification_outcome": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.document": _e(RESTRICTED, "user.content.private", TRANSACTION, DELETE, export=True),
    "loyalty.AdjustmentRequest.document_type": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.requested_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.requested_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.expires_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.state": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.approved_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.approved_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.reviewed_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.reviewed_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentRequest.operation": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentEvent.id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentEvent.request": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentEvent.kind": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentEvent.actor": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentEvent.actor_job": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentEvent.comment": _e(RESTRICTED, "user.content.private", TRANSACTION, NULL, export=True),
    "loyalty.AdjustmentEvent.created_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "loyalty.AdjustmentReport.id": _e(INTERNAL, "user.financial", TRANSACTION, KEEP, export=False),
    "loyalty.AdjustmentReport.day": _e(INTERNAL, "user.financial", TRANSACTION, KEEP, export=False),
    "loyalty.AdjustmentReport.generated_at": _e(INTERNAL, "user.financial", TRANSACTION, KEEP, export=False),
    "loyalty.AdjustmentReport.rows": _e(INTERNAL, "user.financial", TRANSACTION, KEEP, export=False),
    "loyalty.AdjustmentReport.totals": _e(INTERNAL, "user.financial", TRANSACTION, KEEP, export=False),
    "staffauth.StaffUser.id": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.StaffUser.password": _e(
        RESTRICTED, "user.authorization.credentials", EMPLOYMENT, KEEP, export=False, secret=True
    ),
    "staffauth.StaffUser.last_login": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.StaffUser.is_superuser": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.StaffUser.username": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.StaffUser.first_name": _e(RESTRICTED, "user.name", EMPLOYMENT, NULL, export=False),
    "staffauth.StaffUser.last_name": _e(RESTRICTED, "user.name", EMPLOYMENT, NULL, export=False),
    "staffauth.StaffUser.email": _e(RESTRICTED, "user.contact.email", EMPLOYMENT, NULL, export=False),
    "staffauth.StaffUser.is_active": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.StaffUser.date_joined": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.StaffUser.is_staff": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.StaffUser.security_stamp": _e(
        RESTRICTED, "user.authorization.credentials", EMPLOYMENT, KEEP, export=False, secret=True
    ),
    "staffauth.StaffUser.member_account": _e(INTERNAL, "system.operations", EMPLOYMENT, PSEUDONYMISE, export=False),
    "staffauth.PasswordHistory.id": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "staffauth.PasswordHistory.user": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "staffauth.PasswordHistory.password_hash": _e(
        RESTRICTED, "user.authorization.credentials", SYSTEM, DELETE, export=False, secret=True
    ),
    "staffauth.PasswordHistory.created_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "staffauth.SecurityEvent.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "staffauth.SecurityEvent.kind": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "staffauth.SecurityEvent.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "staffauth.SecurityEvent.actor": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "staffauth.SecurityEvent.subject": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "staffauth.SecurityEvent.username": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "staffauth.SecurityEvent.ip_address": _e(RESTRICTED, "user.device.ip_address", SECURITY, NULL, export=False),
    "staffauth.SecurityEvent.user_agent": _e(RESTRICTED, "user.device", SECURITY, NULL, export=False),
    "staffauth.SecurityEvent.detail": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.Member.id": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.loyalty_number": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.member_id": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.status": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.tier": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.home_store": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.created_at": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.preferred_channel": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.data_key_wrapped": _e(
        RESTRICTED, "user.authorization.credentials", MEMBER_PII, SHRED, export=False, secret=True
    ),
    "members.Member.pii_erased_at": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.name_encrypted": _e(RESTRICTED, "user.name", MEMBER_PII, SHRED, export=True),
    "members.Member.phone_encrypted": _e(RESTRICTED, "user.contact.phone_number", MEMBER_PII, SHRED, export=True),
    "members.Member.email_encrypted": _e(RESTRICTED, "user.contact.email", MEMBER_PII, SHRED, export=True),
    "members.Member.address_encrypted": _e(RESTRICTED, "user.contact.address", MEMBER_PII, SHRED, export=True),
    "members.Member.birth_date_encrypted": _e(
        RESTRICTED, "user.demographic.date_of_birth", MEMBER_PII, SHRED, export=True
    ),
    "members.Member.phone_index": _e(
        RESTRICTED, "user.unique_id.deterministic", MEMBER_PII, NULL, export=False, secret=True
    ),
    "members.Member.email_index": _e(
        RESTRICTED, "user.unique_id.deterministic", MEMBER_PII, NULL, export=False, secret=True
    ),
    "members.Member.blind_index_version": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.password_hash": _e(
        RESTRICTED, "user.authorization.credentials", MEMBER_PII, NULL, export=False, secret=True
    ),
    "members.Member.password_changed_at": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.Member.spend_frozen_until": _e(INTERNAL, "user.unique_id", MEMBER_PII, PSEUDONYMISE, export=True),
    "members.MemberPiiAccess.id": _e(INTERNAL, "system.operations", ACCESS, PSEUDONYMISE, export=False),
    "members.MemberPiiAccess.member": _e(INTERNAL, "system.operations", ACCESS, PSEUDONYMISE, export=False),
    "members.MemberPiiAccess.staff": _e(INTERNAL, "system.operations", ACCESS, PSEUDONYMISE, export=True),
    "members.MemberPiiAccess.field": _e(INTERNAL, "system.operations", ACCESS, PSEUDONYMISE, export=True),
    "members.MemberPiiAccess.accessed_at": _e(INTERNAL, "system.operations", ACCESS, PSEUDONYMISE, export=True),
    "members.OtpChallenge.id": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.phone_index": _e(RESTRICTED, "user.unique_id.deterministic", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.member": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.purpose": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.action": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.code_hmac": _e(
        RESTRICTED, "user.authorization.credentials", SYSTEM, DELETE, export=False, secret=True
    ),
    "members.OtpChallenge.created_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.expires_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.guesses": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.verified_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpChallenge.consumed_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpPhoneState.phone_index": _e(RESTRICTED, "user.unique_id.deterministic", SYSTEM, DELETE, export=False),
    "members.OtpPhoneState.failures_on": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpPhoneState.failures": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.OtpPhoneState.locked_until": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.MemberDevice.id": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.member": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.fingerprint_hash": _e(RESTRICTED, "user.device.device_id", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.label": _e(RESTRICTED, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.last_ip": _e(RESTRICTED, "user.device.ip_address", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.latitude": _e(RESTRICTED, "user.location.coarse", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.longitude": _e(RESTRICTED, "user.location.coarse", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.first_seen_at": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.last_seen_at": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberDevice.blocked_at": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.id": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.member": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.device": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.channel": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.remember_me": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.biometric": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.created_at": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.last_seen_at": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.expires_at": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.ended_at": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.MemberSession.end_reason": _e(INTERNAL, "user.device", MEMBER_PII, DELETE, export=True),
    "members.RefreshToken.id": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.RefreshToken.session": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.RefreshToken.family": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.RefreshToken.token_hash": _e(
        RESTRICTED, "user.authorization.credentials", SYSTEM, DELETE, export=False, secret=True
    ),
    "members.RefreshToken.created_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.RefreshToken.rotated_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.RefreshToken.revoked_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.MemberSecurityEvent.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberSecurityEvent.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberSecurityEvent.kind": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=True),
    "members.MemberSecurityEvent.detail": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=True),
    "members.MemberSecurityEvent.ip": _e(RESTRICTED, "user.device.ip_address", SECURITY, NULL, export=True),
    "members.MemberSecurityEvent.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=True),
    "members.MemberRestriction.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.kind": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.device_id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.reason": _e(RESTRICTED, "user.content.private", SECURITY, NULL, export=False),
    "members.MemberRestriction.case_ref": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.created_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.starts_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.ends_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.confirmed": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.lifted_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.lifted_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberRestriction.lift_reason": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "members.MemberPasswordHistory.id": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.MemberPasswordHistory.member": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.MemberPasswordHistory.password_hash": _e(
        RESTRICTED, "user.authorization.credentials", SYSTEM, DELETE, export=False, secret=True
    ),
    "members.MemberPasswordHistory.created_at": _e(INTERNAL, "system.operations", SYSTEM, DELETE, export=False),
    "members.ContactVerification.id": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.member": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.kind": _e(INTERNAL, "user.contact", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.value_encrypted": _e(RESTRICTED, "user.contact", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.value_index": _e(
        RESTRICTED, "user.unique_id.deterministic", MEMBER_PII, DELETE, export=False
    ),
    "members.ContactVerification.token_hash": _e(
        RESTRICTED, "user.authorization.credentials", MEMBER_PII, DELETE, export=False, secret=True
    ),
    "members.ContactVerification.challenge": _e(INTERNAL, "user.unique_id", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.created_at": _e(INTERNAL, "user.contact", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.expires_at": _e(INTERNAL, "user.contact", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.verified_at": _e(INTERNAL, "user.contact", MEMBER_PII, DELETE, export=False),
    "members.ContactVerification.cancelled_at": _e(INTERNAL, "user.contact", MEMBER_PII, DELETE, export=False),
    "members.Consent.id": _e(INTERNAL, "user.unique_id", TRANSACTION, PSEUDONYMISE, export=True),
    "members.Consent.member": _e(INTERNAL, "user.unique_id", TRANSACTION, PSEUDONYMISE, export=True),
    "members.Consent.purpose": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.Consent.granted": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.Consent.version": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.Consent.updated_at": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.ConsentRecord.id": _e(INTERNAL, "user.unique_id", TRANSACTION, PSEUDONYMISE, export=True),
    "members.ConsentRecord.member": _e(INTERNAL, "user.unique_id", TRANSACTION, PSEUDONYMISE, export=True),
    "members.ConsentRecord.purpose": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.ConsentRecord.granted": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.ConsentRecord.version": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.ConsentRecord.source": _e(INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True),
    "members.ConsentRecord.session_id": _e(
        INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "members.ConsentRecord.created_at": _e(
        INTERNAL, "user.privacy_preferences", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Reward.id": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.name": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.description": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.kind": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.value_minor": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.percent": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.item": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.points_price": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.valid_days": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.available_from": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.available_until": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.stock_remaining": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.min_tier": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.per_member_limit": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.active": _e(PUBLIC, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.created_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Reward.updated_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "vouchers.Voucher.id": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "vouchers.Voucher.code": _e(
        RESTRICTED, "user.authorization.credentials", TRANSACTION, KEEP, export=True, secret=True
    ),
    "vouchers.Voucher.reward": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "vouchers.Voucher.member": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "vouchers.Voucher.status": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "vouchers.Voucher.source": _e(INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True),
    "vouchers.Voucher.points_paid": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.ledger_operation": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.issued_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.issue_reason": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.issue_key": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.issued_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.expires_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.redeemed_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.revoked_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.revoked_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.revoke_reason": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.Voucher.reported_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.StaffShift.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "vouchers.StaffShift.staff": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "vouchers.StaffShift.store": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "vouchers.StaffShift.till": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "vouchers.StaffShift.token_hash": _e(
        RESTRICTED, "user.authorization.credentials", SECURITY, KEEP, export=False, secret=True
    ),
    "vouchers.StaffShift.started_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "vouchers.StaffShift.ended_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "vouchers.VoucherRedemption.id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.voucher": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.till": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.store": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.staff": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.shift": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.idempotency_key": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.redeemed_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherRedemption.receipt": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.VoucherScan.id": _e(INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True),
    "vouchers.VoucherScan.voucher": _e(INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True),
    "vouchers.VoucherScan.till": _e(INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True),
    "vouchers.VoucherScan.store": _e(INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True),
    "vouchers.VoucherScan.staff": _e(INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True),
    "vouchers.VoucherScan.action": _e(INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True),
    "vouchers.VoucherScan.result": _e(INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True),
    "vouchers.VoucherScan.created_at": _e(
        INTERNAL, "user.behavior.purchase_history", SECURITY, PSEUDONYMISE, export=True
    ),
    "vouchers.RedemptionAudit.id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.store": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.cashier": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.voucher_redemption": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.ledger_operation": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.points": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.sampled_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.outcome": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.reviewed_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.reviewed_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=False
    ),
    "vouchers.RedemptionAudit.note": _e(RESTRICTED, "user.content.private", TRANSACTION, NULL, export=False),
    "vouchers.PendingRedemption.id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.till": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.store": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.staff": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.member": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.voucher": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.points": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.idempotency_key": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.attempted_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.received_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.status": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.decided_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.decided_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.decision_note": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.PendingRedemption.ledger_operation": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.hold_operation": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.till": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.store": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.staff": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.shift": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.member": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.points": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.idempotency_key": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.override_by": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.challenge_id": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.authorisation_offer": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.authorised_via": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.authorised_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.created_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.captured_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.capture_shift": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.captured_points": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.voided_at": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "vouchers.TillRedemption.receipt": _e(
        INTERNAL, "user.behavior.purchase_history", TRANSACTION, PSEUDONYMISE, export=True
    ),
    "fraud.FraudAlert.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.kind": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.severity": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.status": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.store": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.detail": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.dedupe_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.closed_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.closed_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudAlert.case": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudRuleset.id": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.version": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.config": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.sha256": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.created_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.approved_by": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.approved_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.replay": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.FraudRuleset.replayed_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.RiskSignal.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.store": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.till": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.client": _e(RESTRICTED, "user.device.ip_address", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.subject_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.detector": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.ruleset_version": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.weight": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.occurred_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.facts": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.dedupe_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.alert": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskSignal.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.store": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.till": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.client": _e(RESTRICTED, "user.device.ip_address", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.subject_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.as_of": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.score": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.outcome": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.forced_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.ruleset_version": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.contributions": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.RiskDecision.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.store": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.till": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.client": _e(RESTRICTED, "user.device.ip_address", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.subject_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.outcome": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.episode": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.decision": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.case": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.restriction_id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.applied_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.lowered_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.lowered_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.lowered_reason": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.SubjectOutcome.updated_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.decision": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.subject_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.outcome_before": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.outcome_after": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.held": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.actions": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.case": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.OutcomeApplication.applied_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.store": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.till": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.client": _e(RESTRICTED, "user.device.ip_address", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.subject_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.reference": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.inbox": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.status": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.outcome": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.resolution_reason": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.severity": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.assigned_to": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.snoozed_until": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.score_at_open": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.ruleset_version": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.previous_case": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.due_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.first_signal_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.opened_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.contained_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.closed_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudCase.closed_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.case": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.actor": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.kind": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.old_value": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.new_value": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.note": _e(RESTRICTED, "user.content.private", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseEvent.at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.store": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.till": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.client": _e(RESTRICTED, "user.device.ip_address", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.subject_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.detector": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.until": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.reason": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorSnooze.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.day": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.earns": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.points": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.base_points": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.returns": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.redemptions": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.redeemed_points": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.MemberDayStats.refreshed_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.DetectorRun.id": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.DetectorRun.detector": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.DetectorRun.watermark": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.DetectorRun.started_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.DetectorRun.finished_at": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.DetectorRun.counts": _e(INTERNAL, "system.operations", SYSTEM, KEEP, export=False),
    "fraud.AuditSample.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.month": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.adjustment": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.band": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.flagged_staff": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.draw_hash": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.outcome": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.drawn_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.audited_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.AuditSample.audited_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.member": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.step": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.suspicious_returns": _e(
        INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False
    ),
    "fraud.ReturnLadderStep.at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.dedupe_key": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.message": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.alert": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.ReturnLadderStep.created_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseFile.id": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseFile.case": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseFile.file": _e(RESTRICTED, "user.content.private", SECURITY, DELETE, export=False),
    "fraud.CaseFile.content_type": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseFile.size": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseFile.description": _e(RESTRICTED, "user.content.private", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseFile.uploaded_by": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.CaseFile.uploaded_at": _e(INTERNAL, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudReport.id": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "fraud.FraudReport.period": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "fraud.FraudReport.start": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "fraud.FraudReport.end": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "fraud.FraudReport.rows": _e(RESTRICTED, "system.operations", SECURITY, PSEUDONYMISE, export=False),
    "fraud.FraudReport.totals": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "fraud.FraudReport.final": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "fraud.FraudReport.built_at": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
    "fraud.FraudReport.built_by": _e(INTERNAL, "system.operations", SECURITY, KEEP, export=False),
}


def _model_key(model: type[models.Model] | str) -> str:
    if isinstance(model, str):
        return model
    return f"{model._meta.app_label}.{model.__name__}"


def entry(model: type[models.Model] | str, field: str) -> Entry:
    """The entry of ``model.field`` (a model class or ``"app_label.Model"``); wildcard
    entries answer for third-party apps. ``KeyError`` if the field is unclassified."""
    key = f"{_model_key(model)}.{field}"
    if key in REGISTER:
        return REGISTER[key]
    app, name = _model_key(model).split(".")
    for wildcard in (f"{app}.{name}.*", f"{app}.*"):
        if wildcard in WILDCARDS:
            return WILDCARDS[wildcard]
    raise KeyError(key)


def fields(*, level: Level | None = None, export: bool | None = None, secret: bool | None = None) -> list[str]:
    """Keys (``app.Model.field``) of the project fields matching every filter given."""
    return [
        key
        for key, e in REGISTER.items()
        if (level is None or e.level == level)
        and (export is None or e.export == export)
        and (secret is None or e.secret == secret)
    ]


def restricted_fields() -> list[str]:
    """Keys of every restricted, regulated or secret project field."""
    return [key for key, e in REGISTER.items() if e.restricted]


def restricted_names(model: type[models.Model] | str) -> set[str]:
    """Names of one model's restricted fields."""
    prefix = f"{_model_key(model)}."
    return {key[len(prefix) :] for key, e in REGISTER.items() if key.startswith(prefix) and e.restricted}


def log_redacted_names() -> frozenset[str]:
    """Field names whose values a log record must never carry as attributes: restricted
    personal data and secrets. IP addresses stay (security events carry them, §1), and so do
    names that some model uses for a non-restricted field (``reason``, ``code``): ambiguous."""
    names = {
        key.rsplit(".", 1)[1]
        for key, e in REGISTER.items()
        if e.restricted and (e.secret or e.category.startswith("user.")) and e.category != "user.device.ip_address"
    }
    ambiguous = {key.rsplit(".", 1)[1] for key, e in REGISTER.items() if not e.restricted}
    return frozenset(names - ambiguous)


def export_fields(model: type[models.Model] | str) -> list[str]:
    """Names of one model's fields that a data-subject export carries (never secrets)."""
    prefix = f"{_model_key(model)}."
    return [key[len(prefix) :] for key, e in REGISTER.items() if key.startswith(prefix) and e.export]


def retention_of(model: type[models.Model] | str) -> Retention:
    """Retention category of a model's rows (that of its primary key's entry)."""
    if isinstance(model, str):
        from django.apps import apps

        model = apps.get_model(model)
    return entry(model, model._meta.pk.name).retention
