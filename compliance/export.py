"""What an access request's bundle holds (COMPLIANCE.md §4).

The fields come from the classification register (``compliance.register.export_fields``):
a field the register marks for export is in the bundle, a secret never is. This module only
says how each of the member's tables reaches the member (``MEMBER_PATHS``) and how a few
columns are shown: encrypted columns decrypted under their plain name, staff members as
their roles (a member learns which role viewed their data, not who).
"""

from __future__ import annotations

from compliance import register

# model label -> the queryset filter that selects the member's rows (``<path>=member``)
MEMBER_PATHS: dict[str, str] = {
    "members.Member": "pk",
    "members.Consent": "member",
    "members.ConsentRecord": "member",
    "members.MemberDevice": "member",
    "members.MemberSession": "member",
    "members.MemberSecurityEvent": "member",
    "members.MemberPiiAccess": "member",
    "compliance.AccessEvent": "member",
    "loyalty.Account": "member",
    "loyalty.MemberBalance": "account__member",
    "loyalty.LedgerOperation": "member",
    "loyalty.Transfer": "operation__member",
    "loyalty.PointsLot": "account__member",
    "loyalty.LotMovement": "lot__account__member",
    "loyalty.AdjustmentRequest": "member",
    "loyalty.AdjustmentEvent": "request__member",
    "loyalty.OutboundMessage": "member",
    "vouchers.Voucher": "member",
    "vouchers.VoucherRedemption": "voucher__member",
    "vouchers.VoucherScan": "voucher__member",
    "vouchers.PendingRedemption": "member",
    "vouchers.TillRedemption": "member",
    "compliance.DataSubjectRequest": "member",
    "compliance.TermsAcceptance": "member",
    "compliance.Complaint": "member",
}

ENCRYPTED_SUFFIX = "_encrypted"
# Restricted columns of the member's tables that are someone else's personal data.
NOT_THE_MEMBERS: dict[str, str] = {
    "compliance.AccessEvent.ip": "the viewing staff member's network address",
}
# Columns naming a staff member: exported as the staff member's roles.
STAFF_COLUMNS = {"members.MemberPiiAccess": "staff", "compliance.AccessEvent": "staff"}


def export_fields(model_label: str) -> tuple[str, ...]:
    """The columns of one of the member's tables in the bundle, as the register says
    (encrypted columns under their plain name)."""
    return tuple(
        name.removesuffix(ENCRYPTED_SUFFIX) if name.endswith(ENCRYPTED_SUFFIX) else name
        for name in register.export_fields(model_label)
    )
