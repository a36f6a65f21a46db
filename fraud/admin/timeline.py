"""A case subject's timeline, newest first (FRAUD.md §3 "Timeline"): what the subject did
and what happened to them, from every part of the product, by name and link.

For a member: ledger operations (``loyalty.ledger.selectors``), adjustment requests,
voucher redemptions and scans, security events and who revealed their personal data.
For a staff member: the operations they made, the adjustments they requested, the
redemptions they served and scans at their till, their security events and their
personal-data reveals. For a store: its operations and scans. For every subject: its
risk signals, the case's alerts and the case's own events.

Ids and numbers only (facts are no-PII by construction); each source is one indexed,
sliced query (``LIMIT`` rows each), merged and cut to ``LIMIT`` in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from fraud.models import CaseEvent, FraudAlert, FraudCase, RiskSignal
from loyalty.workplace import display

LIMIT = 60

EVENT_LABELS = {
    "opened": "Case opened on a signal:",
    "signal_joined": "Signal joined:",
    "snooze_lifted": "Snooze lifted by a signal:",
    "severity_raised": "Severity raised",
    "assigned": "Assigned",
    "started": "Investigation started",
    "awaiting_action": "Awaiting action",
    "closed": "Closed",
    "reopened": "Reopened",
    "snoozed": "Snoozed",
    "unsnoozed": "Snooze ended",
    "note": "Note",
    "contained": "Contained",
    "linked": "Follows case",
    "spend_frozen": "Spending frozen",
    "member_locked": "Account locked and sessions revoked",
    "device_blocked": "Device blocked",
    "suspension_recommended": "Suspension recommended",
    "voucher_reported": "Voucher reported",
    "voucher_revoked": "Voucher revoked",
    "reversal_drafted": "Reversal drafted (points)",
    "staff_deactivation_asked": "Deactivation asked of a system administrator",
    "file_added": "Evidence file added",
    "outcome_applied": "Risk outcome applied",
    "outcome_lowered": "Risk outcome lowered",
    "auto_step_up_required": "SMS step-up required (automatic)",
    "auto_spend_frozen": "Spending frozen (automatic; lapses unless confirmed)",
}


@dataclass
class Entry:
    at: datetime
    source: str  # css class and filter: operation, adjustment, voucher, security, signal, alert, case
    what: SafeString

    @property
    def when(self) -> SafeString:
        return display.local_time(self.at)


def event_text(event: CaseEvent, viewer: Any, names: dict[int, Any] | None = None) -> SafeString:
    """A case event in words: what, by whom, the values (an assignee by name)."""
    label = EVENT_LABELS.get(event.kind) or display.choice_label((), event.kind)
    if event.kind == "opened" and event.new_value == "risk_decision":
        label = "Case opened on a risk decision:"
    values = [v for v in (event.old_value, event.new_value) if v]
    if event.kind == "assigned" and names is not None:
        shown = [display.staff_label(names.get(int(v))) if v.isdigit() else v for v in values]
        value = " → ".join(shown)
    else:
        value = " → ".join(display.choice_label((), v) if "_" in v and ":" not in v else v for v in values)
    by = display.staff_link(event.actor, viewer) if event.actor_id else "the system"
    return format_html(
        '<span class="case-event-kind">{}</span> {}<span class="case-event-by"> · {}</span>{}',
        label,
        value,
        by,
        format_html('<span class="case-event-note">: {}</span>', event.note) if event.note else "",
    )


def _member_entries(member: Any, viewer: Any) -> list[Entry]:
    from loyalty.adjustments.models import AdjustmentRequest
    from loyalty.ledger.selectors import member_operations, with_member_points
    from members.models import MemberPiiAccess, MemberSecurityEvent
    from vouchers.models import VoucherRedemption, VoucherScan

    found = [
        Entry(
            op.created_at,
            "operation",
            format_html(
                "{} {}{}",
                display.operation_link(op, viewer),
                display.points_signed(op.member_points),
                f" at {display.store_label(op.store)}" if op.store_id else "",
            ),
        )
        for op in with_member_points(member_operations(member=member))[:LIMIT]
    ]
    for request in (
        AdjustmentRequest.objects.filter(member=member)
        .select_related("reason", "requested_by")
        .order_by("-requested_at")[:LIMIT]
    ):
        found.append(
            Entry(
                request.requested_at,
                "adjustment",
                format_html(
                    "Adjustment request {} ({}, {}) by {}",
                    display.link(request, f"#{request.pk}", viewer),
                    display.points_signed(request.points),
                    request.reason.label,
                    display.staff_link(request.requested_by, viewer),
                ),
            )
        )
    for redemption in (
        VoucherRedemption.objects.filter(voucher__member=member)
        .select_related("voucher__reward", "till__store", "staff")
        .order_by("-redeemed_at")[:LIMIT]
    ):
        found.append(
            Entry(
                redemption.redeemed_at,
                "voucher",
                format_html(
                    "Voucher {} redeemed at {} by {}",
                    display.voucher_link(redemption.voucher, viewer),
                    display.till_link(redemption.till, viewer),
                    display.staff_link(redemption.staff, viewer),
                ),
            )
        )
    for scan in (
        VoucherScan.objects.filter(voucher__member=member)
        .select_related("voucher__reward", "till__store", "staff")
        .order_by("-created_at")[:LIMIT]
    ):
        found.append(_scan_entry(scan, viewer))
    for event in MemberSecurityEvent.objects.filter(member=member).order_by("-created_at")[:LIMIT]:
        found.append(
            Entry(
                event.created_at,
                "security",
                format_html("Account: {}", display.link(event, display.choice_label((), event.kind), viewer)),
            )
        )
    for access in (
        MemberPiiAccess.objects.filter(member=member).select_related("staff").order_by("-accessed_at")[:LIMIT]
    ):
        found.append(
            Entry(
                access.accessed_at,
                "security",
                format_html(
                    "{} revealed by {}",
                    display.choice_label((), access.field),
                    display.staff_link(access.staff, viewer),
                ),
            )
        )
    return found


def _scan_entry(scan: Any, viewer: Any) -> Entry:
    return Entry(
        scan.created_at,
        "voucher",
        format_html(
            "Voucher {} scanned ({}, {}) at {} by {}",
            display.voucher_link(scan.voucher, viewer),
            scan.get_action_display().lower(),
            display.choice_label((), scan.result),
            display.till_link(scan.till, viewer) if scan.till_id else display.NOTHING,
            display.staff_link(scan.staff, viewer),
        ),
    )


def _staff_entries(staff: Any, viewer: Any) -> list[Entry]:
    from django.db.models import Q

    from loyalty.adjustments.models import AdjustmentRequest
    from loyalty.ledger.selectors import operations_by_staff
    from members.models import MemberPiiAccess
    from staffauth.models import SecurityEvent
    from vouchers.models import VoucherRedemption, VoucherScan

    found = [
        Entry(
            op.created_at,
            "operation",
            format_html("{} for {}", display.operation_link(op, viewer), display.member_link(op.member, viewer)),
        )
        for op in operations_by_staff(staff=staff, limit=LIMIT)
    ]
    for request in (
        AdjustmentRequest.objects.filter(requested_by=staff)
        .select_related("member", "reason")
        .order_by("-requested_at")[:LIMIT]
    ):
        found.append(
            Entry(
                request.requested_at,
                "adjustment",
                format_html(
                    "Requested adjustment {} ({}, {}) for {}",
                    display.link(request, f"#{request.pk}", viewer),
                    display.points_signed(request.points),
                    request.reason.label,
                    display.member_link(request.member, viewer),
                ),
            )
        )
    for redemption in (
        VoucherRedemption.objects.filter(staff=staff)
        .select_related("voucher__reward", "voucher__member", "till__store")
        .order_by("-redeemed_at")[:LIMIT]
    ):
        found.append(
            Entry(
                redemption.redeemed_at,
                "voucher",
                format_html(
                    "Redeemed voucher {} of {} at {}",
                    display.voucher_link(redemption.voucher, viewer),
                    display.member_link(redemption.voucher.member, viewer),
                    display.till_link(redemption.till, viewer),
                ),
            )
        )
    for scan in (
        VoucherScan.objects.filter(staff=staff)
        .select_related("voucher__reward", "till__store", "staff")
        .order_by("-created_at")[:LIMIT]
    ):
        found.append(_scan_entry(scan, viewer))
    for event in (
        SecurityEvent.objects.filter(Q(actor=staff) | Q(subject=staff))
        .select_related("actor")
        .order_by("-created_at")[:LIMIT]
    ):
        found.append(
            Entry(
                event.created_at,
                "security",
                format_html("Staff security: {}", display.link(event, event.get_kind_display(), viewer)),
            )
        )
    for access in MemberPiiAccess.objects.filter(staff=staff).select_related("member").order_by("-accessed_at")[:LIMIT]:
        found.append(
            Entry(
                access.accessed_at,
                "security",
                format_html(
                    "Revealed {} of {}",
                    display.choice_label((), access.field),
                    display.member_link(access.member, viewer),
                ),
            )
        )
    return found


def _store_entries(store: Any, viewer: Any) -> list[Entry]:
    from loyalty.ledger.selectors import operations

    return [
        Entry(
            op.created_at,
            "operation",
            format_html("{} for {}", display.operation_link(op, viewer), display.member_link(op.member, viewer)),
        )
        for op in operations().filter(store=store).select_related("member").order_by("-created_at", "-id")[:LIMIT]
    ]


def signal_text(signal: RiskSignal) -> SafeString:
    return format_html(
        'Signal <span class="detector">{}</span> (weight {}){}',
        signal.detector,
        signal.weight,
        format_html(": {}", display.facts_table(signal.facts)) if signal.facts else "",
    )


def timeline(case: FraudCase, viewer: Any, *, names: dict[int, Any] | None = None) -> list[Entry]:
    """The subject's timeline around ``case``, newest first, at most ``LIMIT`` entries."""
    found: list[Entry] = []
    if case.member_id:
        found += _member_entries(case.member, viewer)
    elif case.staff_id:
        found += _staff_entries(case.staff, viewer)
    elif case.store_id:
        found += _store_entries(case.store, viewer)
    for signal in RiskSignal.objects.filter(subject_key=case.subject_key).order_by("-occurred_at", "-id")[:LIMIT]:
        found.append(Entry(signal.occurred_at, "signal", signal_text(signal)))
    for alert in FraudAlert.objects.filter(case=case).order_by("-created_at", "-id")[:LIMIT]:
        found.append(
            Entry(
                alert.created_at,
                "alert",
                format_html(
                    "Alert {} ({})", display.link(alert, alert.get_kind_display(), viewer), alert.get_severity_display()
                ),
            )
        )
    for event in case.events.select_related("actor").order_by("-at", "-id")[:LIMIT]:
        found.append(Entry(event.at, "case", event_text(event, viewer, names)))
    found.sort(key=lambda entry: entry.at, reverse=True)
    return found[:LIMIT]
