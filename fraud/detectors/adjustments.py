"""Adjustment detectors (FRAUD.md rows 7-10): manual point adjustments by store, by
staff member, small credits that add up (salami), and the monthly rationale audit."""

from __future__ import annotations

import hashlib
import hmac
import math
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone

from fraud import config
from fraud.detectors.common import day_start, dedupe, incident_alerted, local_day
from fraud.detectors.runs import ruleset_version
from fraud.models import AuditSample, RiskSignal
from fraud.scoring import Subject
from fraud.services import alert_raise
from loyalty.adjustments.models import AdjustmentEvent, AdjustmentRequest
from loyalty.kernel.refusals import Refusal
from loyalty.ledger import selectors as ledger

STORE_ADJUST_RATE = "store_adjust_rate"
STAFF_ADJUST_FREQUENCY = "staff_adjust_frequency"
ADJUST_SALAMI = "adjust_salami"
ADJUST_RATIONALE_AUDIT = "adjust_rationale_audit"
# Staff whose adjustments are drawn at the raised rate in the monthly audit.
FLAGGING_DETECTORS = (STAFF_ADJUST_FREQUENCY, ADJUST_SALAMI)
Band = AdjustmentRequest.Band


def posted_adjustments(*, start: datetime, end: datetime) -> QuerySet[AdjustmentRequest]:
    """Adjustments posted to the ledger in the window, annotated ``posted_at`` (their
    ``posted`` event)."""
    posted = AdjustmentEvent.objects.filter(request=OuterRef("pk"), kind=AdjustmentEvent.Kind.POSTED)
    return (
        AdjustmentRequest.objects.filter(state=AdjustmentRequest.State.POSTED)
        .annotate(posted_at=Subquery(posted.values("created_at")[:1]))
        .filter(posted_at__gte=start, posted_at__lt=end)
        .order_by("posted_at", "pk")
    )


def store_adjust_rate(as_of: datetime) -> dict[str, Any]:
    """Row 7 (NB). Over the ``window_days`` local days before ``as_of``'s day: posted
    adjustments per 1,000 earns per store; a store above ``times_median`` x the median
    store's rate and at ``min_per_thousand`` or more alerts (stores without earns are
    not rated)."""
    cfg = config.detector(STORE_ADJUST_RATE).thresholds
    today = local_day(as_of)
    start, end = day_start(today - timedelta(days=cfg["window_days"])), day_start(today)
    earns = ledger.store_earn_counts(start=start, end=end)
    adjustments = dict(
        posted_adjustments(start=start, end=end)
        .filter(store__isnull=False)
        .values("store_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("store_id", "n")
    )
    rates = {store: adjustments.get(store, 0) * 1000 / count for store, count in earns.items() if count}
    if not rates:
        return {"stores": 0, "alerts": 0}
    median = statistics.median(rates.values())
    version, raised = ruleset_version(), 0
    for store, rate in sorted(rates.items()):
        if rate <= cfg["times_median"] * median or rate < cfg["min_per_thousand"]:
            continue
        if incident_alerted(STORE_ADJUST_RATE, since=start, store_id=store):
            continue  # the same window's finding, alerted on an earlier night
        result = alert_raise(
            detector=STORE_ADJUST_RATE,
            subjects=[Subject.store(store)],
            facts={
                "adjustments": adjustments.get(store, 0), "earns": earns[store],
                "per_thousand": round(rate, 2), "median_per_thousand": round(median, 2),
                "window_days": cfg["window_days"],
            },
            occurred_at=end,
            dedupe_key=dedupe(STORE_ADJUST_RATE, f"store:{store}", today, version),
            store_id=store,
        )  # fmt: skip
        raised += int(result.created)
    return {"stores": len(rates), "alerts": raised}


def staff_adjust_frequency(as_of: datetime) -> dict[str, Any]:
    """Row 8 (NB). Adjustment requests each staff member raised on the local day before
    ``as_of``'s; at least ``ADJUSTMENT_POLICY["report_flag_requests_per_day"]`` (the
    daily report's flag, shared) alerts."""
    per_day = settings.ADJUSTMENT_POLICY["report_flag_requests_per_day"]
    day = local_day(as_of) - timedelta(days=1)
    rows = (
        AdjustmentRequest.objects.filter(
            requested_at__gte=day_start(day), requested_at__lt=day_start(day + timedelta(1))
        )
        .values("requested_by_id")
        .annotate(n=Count("pk"))
        .filter(n__gte=per_day)
        .order_by("requested_by_id")
    )
    version, raised, found = ruleset_version(), 0, 0
    for row in rows:
        found += 1
        staff = row["requested_by_id"]
        result = alert_raise(
            detector=STAFF_ADJUST_FREQUENCY,
            subjects=[Subject.staff(staff)],
            facts={"count": row["n"], "day": day.isoformat(), "per_day": per_day},
            occurred_at=day_start(day + timedelta(days=1)),
            dedupe_key=dedupe(STAFF_ADJUST_FREQUENCY, f"staff:{staff}", day, version),
            staff_id=staff,
        )
        raised += int(result.created)
    return {"staff": found, "alerts": raised}


def adjust_salami(as_of: datetime, *, staff_id: int | None = None) -> dict[str, Any]:
    """Row 9 (NB over every staff member; PC for one, after their adjustment posts).
    Direct-band credits (1..``band_max_points``) posted in the ``staff_days`` before
    ``as_of``, by requester:

    (a) one member credited ``member_count`` times in ``member_days`` summing
        ``member_sum`` or more (subjects: staff and member);
    (b) ``staff_count`` credits summing ``staff_sum`` or more with a median of at most
        ``staff_median_max``;
    (c) ``edge_count`` credits of which ``edge_percent`` % or more in
        ``edge_from_points``..``band_max_points`` (just under the approval threshold).

    One alert per incident: per staff member, pattern (and member for a) and local day,
    unless an alert of the window already names one of the same adjustments."""
    cfg = config.detector(ADJUST_SALAMI).thresholds
    credits = posted_adjustments(start=as_of - timedelta(days=cfg["staff_days"]), end=as_of).filter(
        band=Band.DIRECT, points__gt=0, points__lte=cfg["band_max_points"]
    )
    if staff_id is not None:
        credits = credits.filter(requested_by_id=staff_id)
    by_staff: dict[int, list[tuple[int, int, int, datetime]]] = defaultdict(list)
    rows_read = credits.values_list("pk", "requested_by_id", "member_id", "points", "posted_at")  # type: ignore[misc]
    for pk, staff, member, points, posted_at in rows_read.iterator():
        by_staff[staff].append((pk, member, int(points), posted_at))
    version, today, raised = ruleset_version(), local_day(as_of), 0
    member_since = as_of - timedelta(days=cfg["member_days"])
    for staff in sorted(by_staff):
        rows = by_staff[staff]
        found: list[tuple[str, list[Subject], dict[str, Any]]] = []
        per_member: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for pk, member, points, posted_at in rows:
            if posted_at >= member_since:
                per_member[member].append((pk, points))
        for member in sorted(per_member):
            hits = per_member[member]
            total = sum(p for _, p in hits)
            if len(hits) >= cfg["member_count"] and total >= cfg["member_sum"]:
                found.append((
                    f"a:member:{member}", [Subject.staff(staff), Subject.member(member)],
                    {"pattern": "a", "ids": [pk for pk, _ in hits][:50], "count": len(hits), "sum": total},
                ))  # fmt: skip
        points = [p for _, _, p, _ in rows]
        total, median = sum(points), statistics.median(points)
        if len(points) >= cfg["staff_count"] and total >= cfg["staff_sum"] and median <= cfg["staff_median_max"]:
            found.append((
                "b", [Subject.staff(staff)],
                {"pattern": "b", "ids": [r[0] for r in rows][:50], "count": len(points), "sum": total,
                 "median": float(median)},
            ))  # fmt: skip
        edge = [r[0] for r in rows if cfg["edge_from_points"] <= r[2] <= cfg["band_max_points"]]
        if len(points) >= cfg["edge_count"] and len(edge) * 100 >= cfg["edge_percent"] * len(points):
            found.append((
                "c", [Subject.staff(staff)],
                {"pattern": "c", "ids": edge[:50], "count": len(points), "edge": len(edge), "sum": total},
            ))  # fmt: skip
        for key, subjects, facts in found:
            member_id = subjects[1].id if len(subjects) > 1 else None
            if incident_alerted(
                ADJUST_SALAMI, since=as_of - timedelta(days=cfg["staff_days"]), ids=facts["ids"], staff_id=staff,
                member_id=member_id, detail__pattern=facts["pattern"],
            ):  # fmt: skip
                continue  # the same adjustments, alerted on an earlier run
            result = alert_raise(
                detector=ADJUST_SALAMI,
                subjects=subjects,
                facts=facts,
                occurred_at=as_of,
                dedupe_key=dedupe(ADJUST_SALAMI, f"staff:{staff}", today, version, key),
                staff_id=staff,
                member_id=int(member_id) if member_id is not None else None,
            )
            raised += int(result.created)
    return {"staff": len(by_staff), "alerts": raised}


# --- row 10: the monthly rationale audit -----------------------------------------------------


def _sample_key() -> bytes:
    # A key of its own, derived from the audit key: staff cannot predict the draw.
    return hmac.new(settings.AUDIT_CHAIN_KEY.encode(), b"fraud.adjust_rationale_audit", hashlib.sha256).digest()


def draw_hash(month: date, adjustment_id: int) -> str:
    """HMAC(key, ``YYYY-MM|id``) hex: the draw order (lowest first)."""
    message = f"{month:%Y-%m}|{adjustment_id}".encode()
    return hmac.new(_sample_key(), message, hashlib.sha256).hexdigest()


def _month_bounds(as_of: datetime) -> tuple[date, datetime, datetime]:
    first_this = local_day(as_of).replace(day=1)
    month = (first_this - timedelta(days=1)).replace(day=1)
    return month, day_start(month), day_start(first_this)


def adjust_rationale_audit(as_of: datetime) -> dict[str, Any]:
    """Row 10 (MO). Draws the previous local month's posted adjustments for
    headquarters' rationale audit as ``AuditSample`` rows: every headquarters-band one,
    ``supervisor_percent`` % of supervisor-band and ``direct_percent`` % of direct-band
    ones (rounded up; ``flagged_factor`` x for requesters signalled by
    staff_adjust_frequency or adjust_salami that month), at least ``min_sample`` in all
    (topped up in draw order). The draw is by lowest HMAC(key, month|id): re-running it
    draws the same sample (rows are unique per month and adjustment)."""
    cfg = config.detector(ADJUST_RATIONALE_AUDIT).thresholds
    month, start, end = _month_bounds(as_of)
    flagged = set(
        RiskSignal.objects.filter(
            detector__in=FLAGGING_DETECTORS, staff__isnull=False, occurred_at__gte=start, occurred_at__lt=end
        ).values_list("staff_id", flat=True)
    )
    rates: dict[str, int] = {
        Band.HEADQUARTERS: 100,
        Band.SUPERVISOR: cfg["supervisor_percent"],
        Band.DIRECT: cfg["direct_percent"],
    }
    groups: dict[tuple[str, bool], list[tuple[str, int, int]]] = defaultdict(list)
    for pk, band, staff in posted_adjustments(start=start, end=end).values_list("pk", "band", "requested_by_id"):
        groups[(band, staff in flagged)].append((draw_hash(month, pk), pk, staff))
    drawn: dict[int, tuple[str, str, int, bool]] = {}
    rest: list[tuple[str, int, str, int, bool]] = []
    for (band, is_flagged), rows in groups.items():
        rows.sort()
        rate = min(100, rates.get(band, 100) * (cfg["flagged_factor"] if is_flagged else 1))
        take = math.ceil(len(rows) * rate / 100)
        for digest, pk, staff in rows[:take]:
            drawn[pk] = (digest, band, staff, is_flagged)
        rest += [(digest, pk, band, staff, is_flagged) for digest, pk, staff in rows[take:]]
    for digest, pk, band, staff, is_flagged in sorted(rest)[: max(0, cfg["min_sample"] - len(drawn))]:
        drawn[pk] = (digest, band, staff, is_flagged)
    now = timezone.now()
    created = AuditSample.objects.bulk_create(
        [
            AuditSample(
                month=month,
                adjustment_id=pk,
                band=band,
                staff_id=staff,
                flagged_staff=is_flagged,
                draw_hash=digest,
                drawn_at=now,
            )  # fmt: skip
            for pk, (digest, band, staff, is_flagged) in sorted(drawn.items())
        ],
        ignore_conflicts=True,
    )
    posted = sum(len(rows) for rows in groups.values())
    return {"month": month.isoformat(), "posted": posted, "sampled": len(created)}


class AuditRefused(Refusal):
    """``not_found`` (no such sample), ``already_audited``, ``invalid_outcome``,
    ``permission_denied`` (only headquarters' reviewers of adjustments audit)."""

    MESSAGES = {
        "not_found": "No such audit sample.",
        "already_audited": "This adjustment was already audited.",
        "invalid_outcome": "The outcome must be passed or failed.",
        "permission_denied": "You may not audit adjustments.",
    }


def audit_sample_record(*, sample_id: int, outcome: str, actor: Any, now: datetime | None = None) -> AuditSample:
    """Headquarters' verdict on one sampled adjustment's rationale, once (a conditional
    UPDATE: a second verdict is refused). A failed one raises an
    ``adjust_rationale_audit`` alert on the requester (weight 30, case). Raises
    AuditRefused."""
    if outcome not in (AuditSample.Outcome.PASSED, AuditSample.Outcome.FAILED):
        raise AuditRefused("invalid_outcome")
    if not (actor and actor.is_active and actor.has_perm("loyalty.review_adjustmentrequest")):
        raise AuditRefused("permission_denied")
    now = now or timezone.now()
    with transaction.atomic():
        updated = AuditSample.objects.filter(pk=sample_id, outcome="").update(
            outcome=outcome, audited_by=actor, audited_at=now
        )
        sample = AuditSample.objects.filter(pk=sample_id).first()
        if sample is None:
            raise AuditRefused("not_found")
        if not updated:
            raise AuditRefused("already_audited")
        if outcome == AuditSample.Outcome.FAILED and sample.staff_id is not None:
            alert_raise(
                detector=ADJUST_RATIONALE_AUDIT,
                subjects=[Subject.staff(sample.staff_id)],
                facts={"adjustment_id": sample.adjustment_id, "month": f"{sample.month:%Y-%m}", "band": sample.band},
                occurred_at=now,
                dedupe_key=dedupe(
                    ADJUST_RATIONALE_AUDIT,
                    f"staff:{sample.staff_id}",
                    sample.month,
                    ruleset_version(),
                    sample.adjustment_id,
                ),  # fmt: skip
                staff_id=sample.staff_id,
            )
    return sample
