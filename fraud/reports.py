"""Fraud reports (FRAUD.md section 4; the issue's "Reports (Celery)"): one ``FraudReport``
per local day, Monday-to-Sunday week and calendar month (``settings.TIME_ZONE``).

What a report holds, every figure computed set-based from the fraud records over the
period (a week or month is recomputed over its whole window, not summed from days:
medians do not add up):

- alerts and signals by detector; alerts by store and detector; alerts by staff member;
- precision per detector: of the cases closed in the period that an alert of the
  detector joined, the share closed ``confirmed_fraud``;
- the highest-risk subjects: the subjects with the most signal weight over the 30 days
  before the period's end, scored by ``risk_score`` as of that end, top ``TOP_SUBJECTS``;
- cases: opened, closed, confirmed in the period; open and overdue when built (a
  snapshot), by inbox;
- detection time (the case's first bad operation, ``first_signal_at``, to its opening:
  the first signal) and remediation time (opening to ``contained_at``, else ``closed_at``);
- the specification's targets as far as the records allow (``TARGETS``); points frozen
  and recovered are not recorded yet, so a note says so instead of a figure.

Rows are lists in ``COLUMNS`` order (the CSV's) followed by two columns the CSV leaves
out: the store's id (store rows) and the subject key (``member:12``, ``staff:3``) that the
page renders as a name. Store managers see only their stores' ``store`` rows, and totals
recomputed from them: no staff rows, no subjects (a store may be one), no cases, no
targets (``fraud_report_visible``). The e-mailed summary holds figures and store codes,
no personal data and no staff names.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from fraud.models import FraudAlert, FraudCase, FraudReport, RiskSignal
from fraud.scoring import Subject, risk_score
from loyalty import notifications
from loyalty.kernel.models import OutboundMessage, Store, Till
from loyalty.kernel.scoping import sees_all_stores, stores_visible_to
from loyalty.ledger.selectors import operations
from members.models import Member
from staffauth.models import StaffUser

COLUMNS = ["section", "item", "measure", "value", "target"]
_STORE_ID, _REF = len(COLUMNS), len(COLUMNS) + 1  # after the CSV's columns
TOPIC = "fraud_report"
TOP_SUBJECTS = 10
CANDIDATE_SUBJECTS = 50  # scored for the top list: the most signal weight first
SUBJECT_WINDOW_DAYS = 30
# Detectors whose alerts are data-access violations (spec target: 0).
DATA_ACCESS_DETECTORS = ("pii_reveal_volume",)
# The specification's metrics and targets ("Fraud Detection and Prevention"): the value
# must stay below (or, for violations, at) the target. As far as the records allow:
# incidents are the period's alerts whose case closed as confirmed fraud (an alert names
# one incident; operations are not linked to cases yet), over the period's ledger
# operations; takeovers are the account-takeover cases closed confirmed in the period,
# over the members active when built; detection and remediation are 90th percentiles
# (see ``_build``); violations are alerts of ``DATA_ACCESS_DETECTORS``.
TARGETS = {
    "fraud_incident_rate_percent": ("Fraud incident rate (% of operations)", 0.1),
    "ato_rate_percent": ("Account takeover rate (% of active members)", 0.01),
    "detection_p90_minutes": ("Detection time, 90th percentile (minutes)", 60),
    "remediation_p90_hours": ("Remediation time, 90th percentile (hours)", 24),
    "data_access_violations": ("Data-access violations", 0),
}
NOTES = ["Points frozen and recovered are not in this report: spend freezes are not recorded yet."]


# --- Periods ---------------------------------------------------------------------------------


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """The first local day of the ``period`` holding ``day`` and the day after its last."""
    if period == FraudReport.Period.DAILY:
        return day, day + timedelta(days=1)
    if period == FraudReport.Period.WEEKLY:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == FraudReport.Period.MONTHLY:
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def _instant(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


def today() -> date:
    return timezone.localdate(timezone=timezone.get_default_timezone())


def previous_start(period: str, *, on: date | None = None) -> date:
    """The first day of the last complete ``period`` before ``on`` (today by default)."""
    current, _ = period_bounds(period, on or today())
    return period_bounds(period, current - timedelta(days=1))[0]


# --- Building --------------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil
    return round(ordered[int(rank) - 1], 1)


def _durations(pairs, unit_seconds: int) -> dict[str, Any]:
    values = [(end - start).total_seconds() / unit_seconds for start, end in pairs if start and end]
    values = [max(v, 0.0) for v in values]
    return {"count": len(values), "median": _percentile(values, 0.5), "p90": _percentile(values, 0.9)}


def _subject_labels(keys: list[str]) -> dict[str, str]:
    """Each subject key as the CSV shows it: a member by loyalty number, a staff member by
    user name, a store by code, a till by its code and store; a client by its key."""
    ids: dict[str, list[int]] = {}
    for key in keys:
        kind, _, ident = key.partition(":")
        if kind != "client":
            ids.setdefault(kind, []).append(int(ident))
    labels = {key: key for key in keys}
    for pk, number in Member.objects.filter(pk__in=ids.get("member", [])).values_list("pk", "loyalty_number"):
        labels[f"member:{pk}"] = f"member {number}"
    for pk, username in StaffUser.objects.filter(pk__in=ids.get("staff", [])).values_list("pk", "username"):
        labels[f"staff:{pk}"] = username
    for pk, code in Store.objects.filter(pk__in=ids.get("store", [])).values_list("pk", "code"):
        labels[f"store:{pk}"] = code
    for pk, code, store in Till.objects.filter(pk__in=ids.get("till", [])).values_list("pk", "code", "store__code"):
        labels[f"till:{pk}"] = f"till {code} at {store}"
    return labels


def _build(start_day: date, end_day: date, now: datetime) -> tuple[list[list], dict]:
    # A running period counts what happened up to ``now`` (reproducible for a given now).
    start, end = _instant(start_day), min(_instant(end_day), now)
    cut = end
    rows: list[list] = []
    alerts = FraudAlert.objects.filter(created_at__gte=start, created_at__lt=end)
    signals = RiskSignal.objects.filter(occurred_at__gte=start, occurred_at__lt=end)

    # By detector: alerts, signals; precision over the cases closed in the period.
    by_detector: dict[str, dict[str, Any]] = {}

    def detector(code: str) -> dict[str, Any]:
        return by_detector.setdefault(
            code, {"detector": code, "alerts": 0, "signals": 0, "closed": 0, "confirmed": 0, "precision": None}
        )

    for code, count in alerts.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"):
        detector(code)["alerts"] = count
    for code, count in signals.values_list("detector").annotate(n=Count("pk")).values_list("detector", "n"):
        detector(code)["signals"] = count
    closed_cases = FraudCase.objects.filter(status=FraudCase.Status.CLOSED, closed_at__gte=start, closed_at__lt=end)
    confirmed = Q(case__outcome=FraudCase.Outcome.CONFIRMED_FRAUD)
    for code, closed, hits in (
        FraudAlert.objects.filter(case__in=closed_cases)
        .values("kind")
        .annotate(closed=Count("case", distinct=True), hits=Count("case", filter=confirmed, distinct=True))
        .values_list("kind", "closed", "hits")
    ):
        entry = detector(code)
        entry["closed"], entry["confirmed"] = closed, hits
        entry["precision"] = round(100 * hits / closed, 1) if closed else None
    detectors = sorted(by_detector.values(), key=lambda d: (-d["alerts"], -d["signals"], d["detector"]))
    for entry in detectors:
        for measure in ("alerts", "signals", "closed", "confirmed", "precision"):
            rows.append(["detector", entry["detector"], measure, entry[measure], None, None, None])

    # By store (and detector), by staff member: the alert's own columns.
    store_codes = dict(Store.objects.values_list("pk", "code"))
    for store_id, code, count in (
        alerts.filter(store__isnull=False)
        .values("store_id", "kind")
        .annotate(n=Count("pk"))
        .order_by("store_id", "kind")
        .values_list("store_id", "kind", "n")
    ):
        rows.append(["store", store_codes.get(store_id, str(store_id)), code, count, None, store_id, None])
    staff_counts = list(
        alerts.filter(staff__isnull=False)
        .values("staff_id", "kind")
        .annotate(n=Count("pk"))
        .order_by("staff_id", "kind")
        .values_list("staff_id", "kind", "n")
    )
    staff_labels = _subject_labels([f"staff:{pk}" for pk, _, _ in staff_counts])
    for staff_id, code, count in staff_counts:
        rows.append(["staff", staff_labels[f"staff:{staff_id}"], code, count, None, None, f"staff:{staff_id}"])

    # The highest-risk subjects as of the period's end (or now, for a running one).
    candidates = list(
        RiskSignal.objects.filter(occurred_at__gte=cut - timedelta(days=SUBJECT_WINDOW_DAYS), occurred_at__lt=cut)
        .values("subject_key")
        .annotate(weight=Sum("weight"))
        .order_by("-weight", "subject_key")
        .values_list("subject_key", flat=True)[:CANDIDATE_SUBJECTS]
    )
    scored = []
    for key in candidates:
        kind, _, ident = key.partition(":")
        result = risk_score(Subject(kind, ident if kind == "client" else int(ident)), cut)
        if result.score > 0:
            scored.append((result.score, key, result.forced_outcome or _outcome(result.score)))
    scored.sort(key=lambda item: (-item[0], item[1]))
    top = scored[:TOP_SUBJECTS]
    subject_labels = _subject_labels([key for _, key, _ in top])
    for score, key, outcome in top:
        rows.append(["subject", subject_labels[key], outcome, score, None, None, key])

    # Cases: the period's flow and, when built, what is open and overdue.
    opened = FraudCase.objects.filter(opened_at__gte=start, opened_at__lt=end)
    open_now = FraudCase.objects.exclude(status=FraudCase.Status.CLOSED)
    inboxes: dict[str, dict[str, int]] = {
        inbox: dict.fromkeys(("opened", "closed", "confirmed", "open", "overdue"), 0)
        for inbox in FraudCase.Inbox.values
    }
    for queryset, measure in (
        (opened, "opened"),
        (closed_cases, "closed"),
        (closed_cases.filter(outcome=FraudCase.Outcome.CONFIRMED_FRAUD), "confirmed"),
        (open_now, "open"),
        (open_now.filter(due_at__lt=now), "overdue"),
    ):
        for inbox, count in queryset.values("inbox").annotate(n=Count("pk")).values_list("inbox", "n"):
            inboxes[inbox][measure] = count
    for inbox, figures in inboxes.items():
        for measure, count in figures.items():
            rows.append(["cases", inbox, measure, count, None, None, None])

    # Detection and remediation times.
    detection = _durations(opened.values_list("first_signal_at", "opened_at"), 60)
    remediation = _remediation(start, end)

    # The specification's targets.
    ops = operations().filter(created_at__gte=start, created_at__lt=end).count()
    incidents = alerts.filter(case__outcome=FraudCase.Outcome.CONFIRMED_FRAUD).count()
    active_members = Member.objects.filter(status=Member.Status.ACTIVE).count()
    ato_confirmed = closed_cases.filter(inbox=FraudCase.Inbox.ATO, outcome=FraudCase.Outcome.CONFIRMED_FRAUD).count()
    values: dict[str, float | int | None] = {
        "fraud_incident_rate_percent": round(100 * incidents / ops, 4) if ops else None,
        "ato_rate_percent": round(100 * ato_confirmed / active_members, 4) if active_members else None,
        "detection_p90_minutes": detection["p90"],
        "remediation_p90_hours": remediation["p90"],
        "data_access_violations": alerts.filter(kind__in=DATA_ACCESS_DETECTORS).count(),
    }
    metrics = []
    for code, (label, target) in TARGETS.items():
        value = values[code]
        met = None if value is None else (value <= target if code == "data_access_violations" else value < target)
        metrics.append({"code": code, "label": label, "value": value, "target": target, "met": met})
        rows.append(["metric", code, "value", value, target, None, None])
    for name, figures in (("detection_minutes", detection), ("remediation_hours", remediation)):
        for measure, value in figures.items():
            rows.append(["time", name, measure, value, None, None, None])

    totals = {
        "alerts": alerts.count(),
        "signals": signals.count(),
        "operations": ops,
        "active_members": active_members,
        "detectors": detectors,
        "cases": [{"inbox": inbox, **figures} for inbox, figures in inboxes.items()],
        "open_cases": sum(f["open"] for f in inboxes.values()),
        "overdue_cases": sum(f["overdue"] for f in inboxes.values()),
        "detection": detection,
        "remediation": remediation,
        "metrics": metrics,
        "notes": NOTES,
        **_store_totals(rows),
        "staff": _staff_totals(rows),
    }
    return rows, totals


def _remediation(start: datetime, end: datetime) -> dict[str, Any]:
    """Opening to containment (else closing) for the cases remedied in the period."""
    remedied = FraudCase.objects.filter(
        Q(contained_at__gte=start, contained_at__lt=end)
        | Q(contained_at__isnull=True, closed_at__gte=start, closed_at__lt=end)
    )
    pairs = [(opened, contained or closed) for opened, contained, closed in remedied.values_list(
        "opened_at", "contained_at", "closed_at"
    )]  # fmt: skip
    return _durations(pairs, 3600)


def _outcome(score: int) -> str:
    from fraud.config import outcome_for_score

    return outcome_for_score(score)


def _store_totals(rows: list[list]) -> dict[str, Any]:
    """Alerts by store (with their detectors) from the ``store`` rows."""
    stores: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row[0] == "store":
            entry = stores.setdefault(row[_STORE_ID], {"store": row[1], "store_id": row[_STORE_ID], "alerts": 0})
            entry["alerts"] += row[3]
            entry.setdefault("detectors", {})[row[2]] = row[3]
    ordered = sorted(stores.values(), key=lambda s: (-s["alerts"], s["store"]))
    return {"stores": ordered, "store_alerts": sum(s["alerts"] for s in ordered)}


def _staff_totals(rows: list[list]) -> list[dict[str, Any]]:
    staff: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row[0] == "staff":
            entry = staff.setdefault(row[_REF], {"username": row[1], "ref": row[_REF], "alerts": 0, "detectors": {}})
            entry["alerts"] += row[3]
            entry["detectors"][row[2]] = row[3]
    return sorted(staff.values(), key=lambda s: (-s["alerts"], s["username"]))


class ReportRefused(ValueError):
    """A report that cannot be built: ``code`` says why (``future_period``, ``unknown_period``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def fraud_report_build(
    *, period: str, day: date, actor: Any = None, now: datetime | None = None
) -> tuple[FraudReport, bool]:
    """Build the report of the ``period`` holding the local ``day``. Returns (report,
    built): a final report (built after its period ended) is returned as it is, built
    False; otherwise the report is written, or a provisional one replaced. Concurrent
    builds of one period serialise on its row. Raises ReportRefused for a period not yet
    begun or an unknown period."""
    if period not in FraudReport.Period.values:
        raise ReportRefused("unknown_period")
    now = now or timezone.now()
    start, end = period_bounds(period, day)
    if _instant(start) > now:
        raise ReportRefused("future_period")
    with transaction.atomic():
        existing = FraudReport.objects.select_for_update().filter(period=period, start=start).first()
        if existing is not None and existing.final:
            return existing, False
        rows, totals = _build(start, end, now)
        fields = {
            "end": end,
            "rows": rows,
            "totals": totals,
            "final": now >= _instant(end),
            "built_at": now,
            "built_by": actor if getattr(actor, "pk", None) else None,
        }
        if existing is not None:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.save(update_fields=list(fields))
            return existing, True
        try:
            with transaction.atomic():
                return FraudReport.objects.create(period=period, start=start, **fields), True
        except IntegrityError:  # a concurrent first build: build again over its row
            pass
    return fraud_report_build(period=period, day=day, actor=actor, now=now)


def recipients() -> list[str]:
    return list(settings.FRAUD_REPORT_RECIPIENTS)


def fraud_report_publish(*, period: str, day: date, now: datetime | None = None) -> FraudReport:
    """Build the report of the ``period`` holding ``day`` and mail the fraud team its
    summary, once per period and recipient (a re-run sends nothing more)."""
    with transaction.atomic():
        report, _ = fraud_report_build(period=period, day=day, now=now)
        # Serialised on the report's row (locked by the build until commit).
        FraudReport.objects.select_for_update().filter(pk=report.pk).first()
        subject = f"{report.get_period_display()} fraud report from {report.start:%Y-%m-%d}"
        sent = set(OutboundMessage.objects.filter(topic=TOPIC, subject=subject).values_list("to", flat=True))
        body = _summary(report)
        for address in recipients():
            if address not in sent:
                notifications.notify_address(to=address, subject=subject, body=body, topic=TOPIC)
    return report


def _figure(value: Any) -> str:
    if value is None:
        return "no data"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _summary(report: FraudReport) -> str:
    """For the fraud team's mailbox: figures, detector codes and store codes only; no
    member, no staff name, no subject."""
    totals = report.totals
    last = report.end - timedelta(days=1)
    lines = [
        f"{report.get_period_display()} fraud report, {report.start:%Y-%m-%d} to {last:%Y-%m-%d} "
        f"({settings.TIME_ZONE}).",
        f"Alerts: {totals['alerts']:,}; signals: {totals['signals']:,}. "
        f"Open cases: {totals['open_cases']:,}, of which {totals['overdue_cases']:,} overdue.",
        "",
        "Targets:",
        *(
            f"  {m['label']}: {_figure(m['value'])} (target {'≤' if m['code'] == 'data_access_violations' else '<'} "
            f"{m['target']:g}){'' if m['met'] is None else (' met' if m['met'] else ' MISSED')}"
            for m in totals["metrics"]
        ),
        "",
        "Alerts by detector (precision = confirmed / closed cases):",
        *(
            f"  {d['detector']}: {d['alerts']:,} alerts, {d['signals']:,} signals, precision "
            + (f"{d['precision']:g}%" if d["precision"] is not None else "n/a")
            for d in totals["detectors"]
        ),
    ]
    if not totals["detectors"]:
        lines.append("  none")
    lines += ["", "Alerts by store:", *(f"  {s['store']}: {s['alerts']:,}" for s in totals["stores"])]
    if not totals["stores"]:
        lines.append("  none")
    lines += ["", *totals.get("notes", []), "The full report is in the back-office under Fraud > Fraud reports."]
    return "\n".join(lines)


# --- Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportScope:
    """What part of a report a user may see: all of it, or their stores' store rows."""

    all_stores: bool
    store_ids: frozenset[int]

    @classmethod
    def for_user(cls, user) -> ReportScope:
        if sees_all_stores(user):
            return cls(all_stores=True, store_ids=frozenset())
        return cls(all_stores=False, store_ids=frozenset(stores_visible_to(user).values_list("pk", flat=True)))


def fraud_report_visible(report: FraudReport, *, scope: ReportScope) -> tuple[list[list], dict]:
    """The rows and totals of ``report`` that ``scope`` may see: everything for the fraud
    team and programme administrators; for store-scoped users their stores' ``store``
    rows only, with store totals recomputed from them (no staff, subjects, cases or
    targets: a store manager may be the subject)."""
    if scope.all_stores:
        return report.rows, report.totals
    rows = [row for row in report.rows if row[0] == "store" and row[_STORE_ID] in scope.store_ids]
    return rows, {"scoped": True, **_store_totals(rows)}


# --- CSV -------------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> object:
    """Text a spreadsheet would read as a formula gets a leading quote (OWASP CSV
    injection); numbers stay numbers (as ``loyalty.adjustments.reports._cell``)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def fraud_report_csv(report: FraudReport, *, rows: list[list] | None = None) -> str:
    """The report as CSV: a header row, then one row per figure (``rows``, by default all;
    pass ``fraud_report_visible``'s for a store-scoped user)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in report.rows if rows is None else rows:
        writer.writerow([_cell(value) for value in row[: len(COLUMNS)]])
    return out.getvalue()


def trend(report: FraudReport, *, scope: ReportScope, days: int = 30) -> list[tuple[str, int, Any]]:
    """(day, alerts, detection p90 minutes) of the daily reports of the ``days`` days up to
    ``report``'s end, oldest first; a store-scoped user's alerts are their stores'."""
    since = report.end - timedelta(days=days)
    dailies = FraudReport.objects.filter(
        period=FraudReport.Period.DAILY, start__gte=since, start__lt=report.end
    ).order_by("start")
    series = []
    for daily in dailies:
        rows, totals = fraud_report_visible(daily, scope=scope)
        alerts = totals.get("alerts", totals.get("store_alerts", 0)) if scope.all_stores else totals["store_alerts"]
        detection = (totals.get("detection") or {}).get("p90") if scope.all_stores else None
        series.append((f"{daily.start:%Y-%m-%d}", alerts, detection))
    return series
