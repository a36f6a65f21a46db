"""What an access request's bundle holds: ONE place (model label → fields).

The lead switches this to the classification register (``compliance.register.
export_fields(model)``) at merge; until then this dict is the list the export and
its test read.
"""

from __future__ import annotations

EXPORT_FIELDS: dict[str, tuple[str, ...]] = {
    # The profile: decrypted personal data is added by the builder (name, phone, email,
    # address, birth_date) beside these columns.
    "members.Member": ("member_id", "loyalty_number", "status", "tier", "created_at", "preferred_channel"),
    "members.ConsentRecord": ("purpose", "granted", "version", "source", "created_at"),
    "members.MemberDevice": ("label", "first_seen_at", "last_seen_at", "blocked_at"),
    "members.MemberSession": ("channel", "created_at", "last_seen_at", "expires_at", "ended_at", "end_reason"),
    "members.MemberSecurityEvent": ("kind", "created_at"),
    "loyalty.LedgerOperation": ("id", "kind", "points", "reason", "created_at"),
    "loyalty.PointsLot": ("id", "expires_on", "earned", "remaining"),
    "vouchers.Voucher": ("id", "status", "code", "expires_at"),
    "members.MemberPiiAccess": ("field", "accessed_at"),
    "compliance.DataSubjectRequest": ("kind", "channel", "state", "received_at", "due_at", "completed_at"),
}

PROFILE_PII = ("name", "phone", "email", "address", "birth_date")


def export_fields(model_label: str) -> tuple[str, ...]:
    return EXPORT_FIELDS[model_label]
