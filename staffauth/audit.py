"""Audit-log helpers (django-auditlog)."""


def mask_fully(value) -> str:
    """Mask a PII value completely in audit diffs (auditlog's default shows half)."""
    return "***" if value not in (None, "") else ""
