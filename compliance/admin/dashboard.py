"""The compliance dashboard (``/admin/compliance/dashboard/``): data-subject requests by
deadline (overdue in red), complaints past or near their deadlines, the last retention
runs with their evidence, each chain's verification status, and the standing legal holds.

Each section appears only to a user holding its view permission; a user holding none
gets 403 (``compliance.dashboard``, which also does every query). This module only names
and links what the selectors found (``loyalty.workplace.display``: members by masked name
and loyalty number, times in the programme's time zone), never a bare id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_safe

from compliance.dashboard import (
    DUE_SOON_DAYS,
    UNSEALED_ALERT_MINUTES,
    ComplianceDashboard,
    Deadline,
    HoldLine,
    compliance_dashboard,
    dashboard_visible,
)
from compliance.models import ChainHead, Complaint, DataSubjectRequest, LegalHold
from loyalty.workplace import display

REASON_SHOWN = 120


def days_text(line: Deadline) -> str:
    """``5 days left``, ``due today``, ``1 day overdue`` (calendar days, programme time zone)."""
    days = line.days_left
    if line.overdue and days <= 0:
        return "overdue (due today)" if days == 0 else f"{-days} day{'s' if days != -1 else ''} overdue"
    if days == 0:
        return "due today"
    return f"{days} day{'s' if days != 1 else ''} left"


def deadline_css(line: Deadline) -> str:
    return "overdue" if line.overdue else "due-soon" if line.due_soon else "due-later"


@dataclass
class Row:
    """One table row, every cell already safe HTML or plain text."""

    css: str
    cells: dict[str, Any]


def _request_rows(board: ComplianceDashboard, viewer) -> list[Row]:
    assert board.requests is not None
    rows = []
    for line in board.requests.items:
        request: DataSubjectRequest = line.obj
        rows.append(
            Row(
                deadline_css(line),
                {
                    "reference": display.link(request, request.reference, viewer),
                    "kind": request.get_kind_display(),
                    "member": display.member_link(request.member, viewer),
                    "state": request.get_state_display(),
                    "due": display.local_time(line.due_at),
                    "left": days_text(line),
                },
            )
        )
    return rows


def _complaint_rows(board: ComplianceDashboard, viewer) -> list[Row]:
    assert board.complaints is not None
    rows = []
    for line in board.complaints.items:
        complaint: Complaint = line.obj
        rows.append(
            Row(
                deadline_css(line),
                {
                    "reference": display.link(complaint, f"C-{complaint.pk}", viewer),
                    "kind": complaint.get_kind_display(),
                    "member": display.member_link(complaint.member, viewer),
                    "store": display.store_label(complaint.store) if complaint.store_id else "Headquarters",
                    "state": complaint.get_state_display(),
                    "deadline": "first response" if complaint.first_responded_at is None else "resolution",
                    "due": display.local_time(line.due_at),
                    "left": days_text(line),
                },
            )
        )
    return rows


def run_label(run) -> str:
    """``Retention dry run of 2026-12-06 11:35`` (programme time zone)."""
    kind = "dry run" if run.dry_run else "purge"
    return f"Retention {kind} of {display.local_time_text(run.started_at)}"


def _run_rows(board: ComplianceDashboard, viewer) -> list[Row]:
    assert board.runs is not None
    rows = []
    for line in board.runs:
        run = line.run
        evidence = reverse("admin:compliance_retentionrun_evidence", args=[run.pk])
        rows.append(
            Row(
                f"run-{run.state}",
                {
                    # named in the programme's time zone (the model's own name is UTC)
                    "run": display.link(run, run_label(run), viewer),
                    "kind": "Dry run" if run.dry_run else "Purge",
                    "state": run.get_state_display(),
                    "started": display.local_time(run.started_at),
                    "finished": display.local_time(run.finished_at),
                    "due": f"{line.due:,}",
                    "purged": f"{line.purged:,}" if not run.dry_run else "— (dry run)",
                    "held": f"{line.held:,}",
                    "evidence": format_html('<a href="{}" class="evidence-link">Evidence (JSON)</a>', evidence),
                },
            )
        )
    return rows


def _chain_rows(board: ComplianceDashboard, viewer) -> list[Row]:
    assert board.chains is not None
    labels = {"ok": "Intact", "broken": "BROKEN", "unverified": "Not yet verified"}
    rows = []
    for stream in board.chains:
        name = (
            display.link(ChainHead(stream=stream.stream), stream.stream, viewer) if stream.has_head else stream.stream
        )
        unsealed = f"{stream.unsealed:,}"
        if stream.unsealed_late:
            unsealed += f" ({stream.unsealed_late:,} waiting over {UNSEALED_ALERT_MINUTES} min)"
        rows.append(
            Row(
                f"chain-{stream.status}",
                {
                    "stream": name,
                    "mode": "queued (sealer)" if stream.queued else "in the writer's transaction",
                    "seq": f"{stream.seq:,}" if stream.has_head else "no link yet",
                    "verified_at": display.local_time(stream.last_verified_at) if stream.last_verified_at else "never",
                    "status": format_html(
                        '<span class="chain-status chain-status-{}">{}</span>', stream.status, labels[stream.status]
                    ),
                    "unsealed": format_html(
                        '<span class="{}">{}</span>', "unsealed-late" if stream.unsealed_late else "", unsealed
                    ),
                },
            )
        )
    return rows


def hold_target(line: HoldLine, viewer) -> SafeString:
    """What a hold covers: the member (by name and number), or the record by its kind and
    name; never a table name and primary key alone when the record can be named."""
    hold = line.hold
    if hold.scope == LegalHold.Scope.MEMBER:
        return format_html("Member {}", display.member_link(hold.member, viewer))
    if line.record_model is None:
        return format_html("A record of {}", hold.table_name)
    kind = str(line.record_model._meta.verbose_name).capitalize()
    record = line.record
    if record is None:
        return format_html("{} (no longer stored)", kind)
    named = {
        "members.member": lambda: display.member_link(record, viewer),
        "vouchers.voucher": lambda: display.voucher_link(record, viewer),
        "staffauth.staffuser": lambda: display.staff_link(record, viewer),
        "loyalty.store": lambda: display.store_link(record, viewer),
    }
    render = named.get(record._meta.label_lower)
    if render is not None:
        return format_html("{}: {}", kind, render())
    return format_html("{}: {}", kind, display.link(record, str(record), viewer))


def _hold_rows(board: ComplianceDashboard, viewer) -> list[Row]:
    assert board.holds is not None
    rows = []
    for line in board.holds:
        hold = line.hold
        reason = hold.reason if len(hold.reason) <= REASON_SHOWN else hold.reason[: REASON_SHOWN - 1] + "…"
        rows.append(
            Row(
                f"hold-{hold.scope}",
                {
                    "hold": display.link(hold, f"{hold.get_scope_display()} hold", viewer),
                    "target": hold_target(line, viewer),
                    "reason": reason,
                    "placed_by": display.staff_link(hold.placed_by, viewer),
                    "placed_at": display.local_time(hold.placed_at),
                },
            )
        )
    return rows


def _changelist(name: str, query: str = "") -> str:
    return reverse(f"admin:compliance_{name}_changelist") + query


def dashboard_view(request, site: admin.AdminSite):
    """GET only (``require_safe`` at registration); 403 for a user who may see none of the sections."""
    if not dashboard_visible(request.user):
        raise PermissionDenied
    viewer = request.user
    board = compliance_dashboard(viewer)
    context = {
        **site.each_context(request),
        "title": "Compliance dashboard",
        "board": board,
        "due_soon_days": DUE_SOON_DAYS,
        "request_rows": _request_rows(board, viewer) if board.requests else None,
        "complaint_rows": _complaint_rows(board, viewer) if board.complaints else None,
        "run_rows": _run_rows(board, viewer) if board.runs is not None else None,
        "chain_rows": _chain_rows(board, viewer) if board.chains is not None else None,
        "hold_rows": _hold_rows(board, viewer) if board.holds is not None else None,
        "links": {
            "requests": _changelist("datasubjectrequest", "?deadline=open"),
            "requests_overdue": _changelist("datasubjectrequest", "?deadline=overdue"),
            "complaints": _changelist("complaint", "?due=overdue"),
            "runs": _changelist("retentionrun"),
            "chains": _changelist("chainhead"),
            "holds": _changelist("legalhold", "?released_at__isnull=True"),
        },
    }
    return TemplateResponse(request, "admin/compliance/dashboard.html", context)


def _register(site: admin.AdminSite) -> None:
    def view(request):
        return dashboard_view(request, site)

    site.register_page("compliance/dashboard/", require_safe(view), name="compliance_dashboard")  # type: ignore[attr-defined]


_register(admin.site)
