"""The member page (``MemberAdmin.change_view``): the whole story of one member, told to
one staff user, as panels of names, links, signed figures and local times.

``member_page(member, viewer)`` reads every panel through the owning app's selectors
and permissions and renders each cell through ``loyalty.workplace.display``. The rule
for what a viewer sees (``members.permissions``): the member, the balance as figures and
the current consents are programme-wide; what hangs off the member is cut to the
viewer's stores for a store-scoped user (cashier, store manager), as on each row's own
admin page:

- ledger operations and lots: the store of the operation (``loyalty.ledger.selectors``);
- vouchers: the member's home store, the store that redeemed it, or issued by the
  viewer (the voucher admin's rule, ``vouchers.admin.rewards.VoucherAdmin``);
- adjustment requests and fraud alerts: the store that raised them (none:
  headquarters), and only with the model's view permission;
- the consent history: programme-wide roles only.

A panel the viewer holds no permission for is left out, not shown empty. Every panel
is one or two queries whatever the member's history (tests/members/test_member_page.py
bounds the page's total).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from fraud.models import FraudAlert
from fraud.permissions import VIEW_ALERT
from fraud.selectors import fraud_alerts_visible_to
from loyalty.adjustments.models import AdjustmentRequest
from loyalty.adjustments.permissions import REQUEST as REQUEST_ADJUSTMENT
from loyalty.kernel.scoping import scope_to_stores
from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.selectors import (
    member_balance,
    member_history_visible,
    member_lots_visible,
    member_points_pending,
)
from loyalty.workplace import display
from members.models import ConsentRecord, Member, MemberDevice
from members.permissions import (
    may_end_member_sessions,
    may_open_store,
    may_reveal_personal_data,
    sees_programme_wide_panels,
)
from members.services.consents import member_consent_records, member_consents
from members.services.sessions import member_sessions
from vouchers.models import Voucher
from vouchers.permissions import goodwill_limit
from vouchers.selectors import EXPIRED, member_vouchers, vouchers_visible_to

HISTORY_ROWS = 50
CONSENT_HISTORY_ROWS = 50
VOUCHER_ROWS = 20
ADJUSTMENT_ROWS = 20
ALERT_ROWS = 20
DEVICE_ROWS = 10
SCOPE_NOTE = "Only your stores' rows are listed; the balance counts every store."
VOUCHER_STATES = [*Voucher.Status.choices, (EXPIRED, "Expired")]


@dataclass
class Panel:
    """One table of the page: ``key`` names it in the HTML (``id="panel-<key>"``, class
    ``field-<key>``) and the tests; ``table_id`` is the table's own id."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    table_id: str = ""
    empty: str = "Nothing yet."
    notes: list[SafeString | str] = field(default_factory=list)
    more: SafeString | None = None
    scoped: bool = False  # rows cut to the viewer's stores (the page's scope note applies)
    wide: bool = False  # spans the page's width


@dataclass
class Action:
    """A button or link of the actions panel: ``url`` is a page (GET) unless ``post``."""

    label: str
    url: str
    post: bool = False
    help: str = ""
    button_id: str = ""


@dataclass
class MemberPage:
    header: list[tuple[str, Any]]
    balance: list[tuple[str, Any, str]] | None
    personal_data: list[tuple[str, str, str]] | None  # label, masked value, field (revealable) or ""
    panels: list[Panel]
    actions: list[Action]
    scope_note: str | None
    cases: list[Any] | None = None


def member_page(member: Member, viewer) -> MemberPage:
    """Everything the member page shows to ``viewer`` (see the module docstring)."""
    scoped = not sees_programme_wide_panels(viewer)
    panels = [
        _lots(member, viewer),
        _history(member, viewer),
        _vouchers(member, viewer),
        _adjustments(member, viewer),
        _alerts(member, viewer),
        _devices(member),
        _sessions(member),
        _consents(member),
        _consent_history(member, viewer),
    ]
    return MemberPage(
        header=_header(member, viewer),
        balance=_balance(member),
        personal_data=None,  # filled by the admin (the reveal buttons are its URLs)
        panels=[p for p in panels if p is not None],
        actions=_actions(member, viewer),
        scope_note=SCOPE_NOTE if scoped else None,
        cases=member_cases(member, viewer),
    )


def member_cases(member: Member, viewer) -> list[Any] | None:
    """Hook for the fraud cases about the member (a later issue adds cases): None until
    then, and the page shows no cases panel for None."""
    return None


# --- header and balance ---------------------------------------------------------------------


def _header(member: Member, viewer) -> list[tuple[str, Any]]:
    store = member.home_store
    if store is None:
        home: Any = display.NOTHING
    elif may_open_store(viewer, store):
        home = display.store_link(store, viewer)
    else:
        home = display.store_label(store)  # another store's page is not theirs to open
    return [
        ("Member", format_html("{}", display.member_label(member))),
        ("Loyalty number", member.loyalty_number),
        ("Status", display.choice_label(Member.Status.choices, member.status)),
        ("Tier", member.tier_label),
        ("Home store", home),
        ("Member since", display.local_time(member.created_at)),
        ("Member id (pseudonymous)", str(member.member_id)),
    ]


def _balance(member: Member) -> list[tuple[str, Any, str]] | None:
    """Available, pending and held, in the ledger's meaning of each word."""
    balance = member_balance(member)
    pending = member_points_pending(member=member)
    if balance is None and not pending:
        return None
    available = balance.available if balance is not None else 0
    held = balance.debits_pending if balance is not None else 0
    return [
        ("Available", f"{available:,}", "Spendable now."),
        ("Pending", f"{pending:,}", "Earned, inside the return window: spendable once released."),
        ("Held", f"{held:,}", "Reserved by redemptions in progress at a till: not spendable."),
    ]


# --- ledger ------------------------------------------------------------------------------------


def _actor(op: LedgerOperation, viewer) -> Any:
    if op.actor_staff_id:
        return display.staff_link(op.actor_staff, viewer)
    if op.actor_till_id:
        return display.till_link(op.actor_till, viewer)
    if op.actor_member:
        return "The member"
    return f"Scheduled job ({op.actor_job})" if op.actor_job else display.NOTHING


def _points_cell(op) -> SafeString:
    if op.member_points is not None:
        return display.points_signed(op.member_points)
    if op.pending_points is not None:
        return format_html(
            '{} <span class="member-pending-tag">pending</span>', display.points_signed(op.pending_points)
        )
    return display.points_signed(0)


def _history(member: Member, viewer) -> Panel:
    rows = list(member_history_visible(member, viewer)[: HISTORY_ROWS + 1])
    more = None
    journal = reverse("admin:loyalty_ledgeroperation_changelist")
    if len(rows) > HISTORY_ROWS or rows:
        more = format_html(
            '<a href="{}?{}">The whole journal of this member</a>', journal, urlencode({"member__exact": member.pk})
        )
    return Panel(
        key="history",
        wide=True,
        scoped=True,
        title=f"History (last {HISTORY_ROWS})",
        table_id="member-history",
        columns=["When", "What", "Points", "Store", "By"],
        rows=[
            [
                display.local_time(op.created_at),
                display.link(op, LedgerOperation.Kind(op.kind).label, viewer, css="operation-ref"),
                _points_cell(op),
                display.store_link(op.store, viewer),
                _actor(op, viewer),
            ]
            for op in rows[:HISTORY_ROWS]
        ],
        empty="No operations.",
        more=more,
    )


def _lots(member: Member, viewer) -> Panel:
    lots = list(member_lots_visible(member, viewer))
    return Panel(
        key="lots",
        scoped=True,
        title="Points by expiry date (soonest first)",
        table_id="member-lots",
        columns=["Expires", "Left", "Earned", "Earned at"],
        rows=[
            [
                display.local_time(lot.expires_on),
                f"{lot.remaining:,}",
                f"{lot.earned:,}",
                display.store_link(lot.source.operation.store, viewer),
            ]
            for lot in lots
        ],
        empty="No points to expire.",
        notes=[f"Next to expire: {lots[0].remaining:,} points on {display.local_time_text(lots[0].expires_on)}."]
        if lots
        else [],
    )


# --- vouchers, adjustments, alerts -------------------------------------------------------------


def _may(viewer, permission: str) -> bool:
    return bool(viewer is not None and viewer.is_active and viewer.has_perm(permission))


def _vouchers(member: Member, viewer) -> Panel | None:
    if not _may(viewer, "vouchers.view_voucher"):
        return None
    vouchers = vouchers_visible_to(viewer, member_vouchers(member=member))
    return Panel(
        key="vouchers",
        scoped=True,
        wide=True,
        title="Vouchers",
        table_id="member-vouchers",
        columns=["Voucher", "State", "How", "Issued", "Expires"],
        rows=[
            [
                display.voucher_link(v, viewer),
                display.choice_label(VOUCHER_STATES, v.state),
                display.choice_label(Voucher.Source.choices, v.source),
                display.local_time(v.issued_at),
                display.local_time(v.expires_at),
            ]
            for v in vouchers.select_related("reward")[:VOUCHER_ROWS]
        ],
        empty="No vouchers.",
    )


def _adjustments(member: Member, viewer) -> Panel | None:
    if not _may(viewer, "loyalty.view_adjustmentrequest"):
        return None
    requests = scope_to_stores(
        AdjustmentRequest.objects.filter(member=member).select_related(
            "store", "reason", "requested_by", "approved_by", "reviewed_by"
        ),
        viewer,
    ).order_by("-requested_at", "-id")[:ADJUSTMENT_ROWS]

    def decided(request: AdjustmentRequest) -> Any:
        people = [p for p in (request.approved_by, request.reviewed_by) if p is not None]
        if not people:
            return display.NOTHING
        return format_html(", ".join(["{}"] * len(people)), *(display.staff_link(p, viewer) for p in people))

    return Panel(
        key="adjustments",
        scoped=True,
        wide=True,
        title="Adjustment requests",
        table_id="member-adjustments",
        columns=[
            "Request",
            "State",
            "Points",
            "Reason",
            "Store",
            "Requested by",
            "Approved / reviewed by",
            "Requested",
        ],
        rows=[
            [
                display.link(r, f"#{r.pk}", viewer),
                display.choice_label(AdjustmentRequest.State.choices, r.state),
                display.points_signed(r.points),
                r.reason.label,
                display.store_link(r.store, viewer) if r.store_id else "Headquarters",
                display.staff_link(r.requested_by, viewer),
                decided(r),
                display.local_time(r.requested_at),
            ]
            for r in requests
        ],
        empty="No adjustment requests.",
    )


def _alerts(member: Member, viewer) -> Panel | None:
    if not _may(viewer, VIEW_ALERT):
        return None
    alerts = fraud_alerts_visible_to(user=viewer, queryset=FraudAlert.objects.filter(member=member))
    return Panel(
        key="alerts",
        scoped=True,
        title="Fraud alerts",
        table_id="member-alerts",
        columns=["Alert", "Severity", "Status", "Store"],
        rows=[
            [
                display.link(a, f"{display.choice_label((), a.kind)}, {display.local_time_text(a.created_at)}", viewer),
                display.choice_label(FraudAlert.Severity.choices, a.severity),
                display.choice_label(FraudAlert.Status.choices, a.status),
                display.store_link(a.store, viewer),
            ]
            for a in alerts.select_related("store").order_by("-created_at", "-id")[:ALERT_ROWS]
        ],
        empty="No fraud alerts.",
    )


# --- devices, sessions, consents ---------------------------------------------------------------


def _devices(member: Member) -> Panel:
    devices = MemberDevice.objects.filter(member=member).order_by("-last_seen_at", "-id")[:DEVICE_ROWS]
    return Panel(
        key="devices",
        title="Devices",
        table_id="member-devices",
        columns=["Device", "First seen", "Last seen", "Blocked"],
        rows=[
            [
                d.label or "Unnamed device",
                display.local_time(d.first_seen_at),
                display.local_time(d.last_seen_at),
                display.yes_no(d.blocked_at is not None),
            ]
            for d in devices
        ],
        empty="No devices registered.",
    )


def _sessions(member: Member) -> Panel:
    # Never a token: the session's channel, device and times only.
    sessions = list(member_sessions(member)[:DEVICE_ROWS])
    return Panel(
        key="sessions",
        title="Sessions in progress",
        table_id="member-sessions",
        columns=["Channel", "Device", "Started", "Last seen", "Ends at the latest"],
        rows=[
            [
                s.get_channel_display(),
                (s.device.label or "Unnamed device") if s.device else display.NOTHING,
                display.local_time(s.created_at),
                display.local_time(s.last_seen_at),
                display.local_time(s.expires_at),
            ]
            for s in sessions
        ],
        empty="No session in progress.",
    )


ESSENTIAL = "essential"


def _consent_now(member: Member, state) -> str:
    """The current choice in words. Essential processing is the membership itself: an
    active member without a record (members enrolled before consents were recorded)
    has it as a condition of membership, not "not granted"."""
    if state.granted:
        return "Granted"
    if state.purpose == ESSENTIAL and state.version is None:
        if member.status == Member.Status.CLOSED or member.pii_erased_at is not None:
            return "Ended with the membership"
        return "In force: a condition of membership (no record at enrolment)"
    return "Not granted" if state.version else "Not granted (never recorded)"


def _consents(member: Member) -> Panel:
    return Panel(
        key="consents",
        title="Consents",
        table_id="member-consents",
        columns=["Purpose", "Now", "Text version", "Since"],
        rows=[
            [
                state.label,
                _consent_now(member, state),
                state.version or display.NOTHING,
                display.local_time(state.updated_at),
            ]
            for state in member_consents(member).values()
        ],
        notes=["Consents are the member's to give; staff may record a withdrawal on the member's request."],
    )


def _consent_history(member: Member, viewer) -> Panel | None:
    """The record of consent: programme-wide roles only (it tells when staff somewhere
    acted for the member)."""
    if not sees_programme_wide_panels(viewer):
        return None
    return Panel(
        key="consent_history",
        title=f"Consent history (last {CONSENT_HISTORY_ROWS})",
        table_id="member-consent-history",
        columns=["When", "Purpose", "Choice", "Text version", "Source"],
        rows=[
            [
                display.local_time(r.created_at),
                r.get_purpose_display(),
                "Granted" if r.granted else "Withdrawn / not given",
                r.version,
                display.choice_label(ConsentRecord.Source.choices, r.source),
            ]
            for r in member_consent_records(member)[:CONSENT_HISTORY_ROWS]
        ],
        empty="No consent recorded.",
    )


# --- actions -----------------------------------------------------------------------------------


def _actions(member: Member, viewer) -> list[Action]:
    actions = []
    query = urlencode({"member": member.pk})
    if _may(viewer, REQUEST_ADJUSTMENT):
        actions.append(
            Action(
                "Raise an adjustment",
                f"{reverse('admin:loyalty_adjustmentrequest_add')}?{query}",
                help="A manual credit or debit, with its reason and the approvals its size needs.",
                button_id="action-adjust",
            )
        )
    if goodwill_limit(viewer) is not None:
        actions.append(
            Action(
                "Issue a goodwill voucher",
                f"{reverse('admin:vouchers_voucher_add')}?{query}",
                help="A reward given as goodwill, within your limit.",
                button_id="action-goodwill",
            )
        )
    if may_end_member_sessions(viewer):
        actions.append(
            Action(
                "End all sessions",
                reverse("admin:members_member_end_sessions", args=[member.pk]),
                post=True,
                help="Signs the member out of the app, the web and kiosks (suspicious activity).",
                button_id="action-end-sessions",
            )
        )
    if _may(viewer, VIEW_ALERT):
        actions.append(
            Action(
                "Open alerts about this member",
                f"{reverse('admin:fraud_fraudalert_changelist')}?{urlencode({'member__exact': member.pk, 'status__exact': 'open'})}",
                button_id="action-alerts",
            )
        )
    if may_reveal_personal_data(viewer):
        actions.append(
            Action(
                "Reveal personal data",
                "#panel-personal_data",
                help="With the Reveal button by each value; every reveal is recorded.",
                button_id="action-reveal",
            )
        )
    return actions
