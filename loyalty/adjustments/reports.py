"""The daily adjustment report (spec, "Adjustment Monitoring": a daily report of all
adjustments; flag staff with high adjustment frequency).

One ``AdjustmentReport`` row per local day (``settings.TIME_ZONE``) lists every
adjustment request raised that day, whatever became of it, with the member named by
loyalty number only, and totals by store and by staff member. Staff who raised at
least ``ADJUSTMENT_POLICY["report_flag_requests_per_day"]`` requests that day are
flagged. Building is idempotent: it rewrites the day's row from the requests as they
stand, so a re-run refreshes the states.

The rows are lists in ``COLUMNS`` order (the CSV's), followed by the store's id (None
for headquarters), which the CSV leaves out and scoping uses. Store managers see only their
stores' rows of a report, and totals recomputed from those rows
(``adjustment_report_visible``): headquarters' rows and other stores' never reach them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from loyalty import notifications
from loyalty.adjustments.models import AdjustmentReport, AdjustmentRequest
from loyalty.kernel.models import OutboundMessage
from loyalty.kernel.scoping import sees_all_stores, stores_visible_to

COLUMNS = [
    "request_id",
    "requested_at",
    "store",
    "requested_by",
    "member",
    "points",
    "band",
    "reason",
    "state",
    "approved_by",
    "reviewed_by",
    "operation_id",
]
HEADQUARTERS = "HQ"  # the store column of requests raised without a store
TOPIC = "adjustment_report"
_STORE, _STAFF, _POINTS, _STATE = (COLUMNS.index(c) for c in ("store", "requested_by", "points", "state"))
_STORE_ID = len(COLUMNS)  # after the CSV's columns


def flag_threshold() -> int:
    """Requests per staff member per day from which the report flags them."""
    return settings.ADJUSTMENT_POLICY["report_flag_requests_per_day"]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first instant of the local ``day`` and of the next one (aware datetimes)."""
    tz = timezone.get_default_timezone()
    return datetime.combine(day, time.min, tzinfo=tz), datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def yesterday() -> date:
    """The local day before today: the day the nightly report covers."""
    return timezone.localdate(timezone=timezone.get_default_timezone()) - timedelta(days=1)


# --- Building --------------------------------------------------------------------------------


def _rows(day: date) -> list[list]:
    """The day's requests as rows, oldest first."""
    start, end = day_bounds(day)
    tz = timezone.get_default_timezone()
    requests = (
        AdjustmentRequest.objects.filter(requested_at__gte=start, requested_at__lt=end)
        .order_by("requested_at", "pk")
        .values_list(
            "pk",
            "requested_at",
            "store_id",
            "store__code",
            "requested_by__username",
            "member__loyalty_number",
            "points",
            "band",
            "reason__code",
            "state",
            "approved_by__username",
            "reviewed_by__username",
            "operation_id",
        )
    )
    rows = []
    for pk, at, store_id, code, by, member, points, band, reason, state, approver, reviewer, op in requests:
        when = timezone.localtime(at, tz).isoformat(timespec="seconds")
        store = code if store_id else HEADQUARTERS
        op_id = str(op) if op else None  # the ledger operation's UUID
        rows.append(
            [pk, when, store, by, member, points, band, reason, state, approver or "", reviewer or "", op_id, store_id]
        )
    return rows


def adjustment_report_totals(rows: list[list], *, threshold: int) -> dict:
    """Counts and points by store and by staff member. ``credited`` and ``debited`` are
    the points that reached the ledger (posted requests); ``count`` is every request
    raised, whatever became of it, and flags staff at or above ``threshold``."""

    def blank() -> dict:
        return {"count": 0, "posted": 0, "credited": 0, "debited": 0}

    stores: dict[int | None, dict]  # by store id (None: headquarters)
    staff: dict[str, dict]  # by username
    overall, stores, staff, codes = blank(), {}, {}, {}
    for row in rows:
        codes[row[_STORE_ID]] = row[_STORE]
        for totals in (overall, stores.setdefault(row[_STORE_ID], blank()), staff.setdefault(row[_STAFF], blank())):
            totals["count"] += 1
            if row[_STATE] == AdjustmentRequest.State.POSTED:
                totals["posted"] += 1
                totals["credited" if row[_POINTS] > 0 else "debited"] += abs(row[_POINTS])
    # Stores by code, headquarters last; staff by most requests first.
    store_order = sorted(stores, key=lambda pk: (pk is None, codes[pk]))
    staff_order = sorted(staff, key=lambda name: (-staff[name]["count"], name))
    return {
        "flag_threshold": threshold,
        "all": overall,
        "stores": [{"store": codes[pk], "store_id": pk, **stores[pk]} for pk in store_order],
        "staff": [
            {"username": name, **staff[name], "flagged": staff[name]["count"] >= threshold} for name in staff_order
        ],
    }


@transaction.atomic
def adjustment_report_build(*, day: date) -> AdjustmentReport:
    """Write (or rewrite) the report of the local ``day``. Idempotent."""
    rows = _rows(day)
    totals = adjustment_report_totals(rows, threshold=flag_threshold())
    report, _ = AdjustmentReport.objects.update_or_create(day=day, defaults={"rows": rows, "totals": totals})
    return report


def adjustment_report_publish(*, day: date) -> AdjustmentReport:
    """Build the report of ``day`` and tell headquarters, once per day: a re-run
    refreshes the report without mailing the summary again."""
    with transaction.atomic():
        report = adjustment_report_build(day=day)
        # The report row is locked until commit (update_or_create), so two runs of the
        # same day cannot both find no summary.
        subject = f"Daily adjustment report for {day:%Y-%m-%d}"
        if not OutboundMessage.objects.filter(topic=TOPIC, subject=subject).exists():
            notifications.notify_address(
                to=settings.ADJUSTMENT_POLICY["hq_email"], subject=subject, body=_summary(report), topic=TOPIC
            )
    return report


def _summary(report: AdjustmentReport) -> str:
    """For headquarters: figures and staff usernames, no member data."""
    totals = report.totals
    overall = totals["all"]
    lines = [
        f"Adjustment requests raised on {report.day:%Y-%m-%d} ({settings.TIME_ZONE}): {overall['count']:,}, "
        f"of which {overall['posted']:,} posted.",
        f"Points credited: {overall['credited']:,}; points debited: {overall['debited']:,}.",
        "",
        "By store:",
        *(
            f"  {s['store']}: {s['count']:,} requests, {s['posted']:,} posted, "
            f"+{s['credited']:,} / -{s['debited']:,} points"
            for s in totals["stores"]
        ),
    ]
    if not totals["stores"]:
        lines.append("  none")
    flagged = [s for s in totals["staff"] if s["flagged"]]
    lines += [
        "",
        f"Staff with {totals['flag_threshold']} or more requests that day: "
        + (", ".join(f"{s['username']} ({s['count']})" for s in flagged) or "none")
        + ".",
        "",
        "Every request of the day is in the back-office under Programme > Adjustment reports (CSV download there).",
    ]
    return "\n".join(lines)


# --- Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportScope:
    """What part of a report a user may see: every row, or their stores' rows."""

    all_stores: bool
    store_ids: frozenset[int]

    @classmethod
    def for_user(cls, user) -> ReportScope:
        if sees_all_stores(user):
            return cls(all_stores=True, store_ids=frozenset())
        return cls(all_stores=False, store_ids=frozenset(stores_visible_to(user).values_list("pk", flat=True)))


def adjustment_report_visible(report: AdjustmentReport, *, scope: ReportScope) -> tuple[list[list], dict]:
    """The rows and totals of ``report`` that ``scope`` may see. Store-scoped users get
    their stores' rows only (never headquarters'), with totals recomputed from them, so
    their staff figures and flags count only what happened in their stores."""
    if scope.all_stores:
        return report.rows, report.totals
    rows = [row for row in report.rows if row[_STORE_ID] is not None and row[_STORE_ID] in scope.store_ids]
    threshold = report.totals.get("flag_threshold", flag_threshold())
    return rows, adjustment_report_totals(rows, threshold=threshold)


# --- CSV -------------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> object:
    """Text a spreadsheet would read as a formula gets a leading quote (OWASP CSV
    injection); numbers stay numbers, negative ones included."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def adjustment_report_csv(report: AdjustmentReport, *, rows: list[list] | None = None) -> str:
    """The report as CSV: a header row, then one row per request (``rows``, by default
    all of them; pass ``adjustment_report_visible``'s for a store-scoped user)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in report.rows if rows is None else rows:
        writer.writerow([_cell(value) for value in row[: len(COLUMNS)]])
    return out.getvalue()
