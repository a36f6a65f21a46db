"""The compliance dashboard's selectors (read-only): what ``/admin/compliance/dashboard/``
shows, each section only to a user holding its view permission.

- **Data-subject requests** (``compliance.view_datasubjectrequest``): the open ones by
  deadline (``due_at``, then id), with days left in the programme's time zone, overdue
  and due within ``DUE_SOON_DAYS`` counted.
- **Complaints** (``compliance.view_complaint``): open complaints past their current
  deadline (first response, then resolution) or due within ``DUE_SOON_DAYS``, at the
  stores the user may see (``compliance.consumer.complaints_visible_to``).
- **Retention runs** (``compliance.view_retentionrun``): the last ``RUNS_SHOWN`` runs with
  their totals (rows due, purged, skipped under a hold).
- **Chains** (``compliance.view_chainhead``): every stream (those of ``compliance.chain.STREAMS``
  and any with a head), its head, its last verification and the entries waiting for the
  sealer (and how many waited longer than ``UNSEALED_ALERT_MINUTES``).
- **Legal holds** (``compliance.view_legalhold``): the standing ones, newest first.

No compliance role exists: programme administrators handle requests, system
administrators the chains, both retention and holds (staffauth.roles). A user holding
none of the section permissions may not open the page (``dashboard_visible``).

The page costs one query per list and per count group; each uses an index (``due_at``,
``state``/``respond_by``, ``started_at``, the chain head's primary key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models import Count, Min, Q
from django.utils import timezone

from compliance.chain import STREAMS
from compliance.consumer import complaints_visible_to, models_q_overdue
from compliance.models import ChainHead, ChainQueue, Complaint, DataSubjectRequest, LegalHold, RetentionRun

DUE_SOON_DAYS = 7
REQUESTS_SHOWN = 50
COMPLAINTS_SHOWN = 50
RUNS_SHOWN = 10
HOLDS_SHOWN = 50
UNSEALED_ALERT_MINUTES = 5

PERMISSIONS = {
    "requests": "compliance.view_datasubjectrequest",
    "complaints": "compliance.view_complaint",
    "retention": "compliance.view_retentionrun",
    "chains": "compliance.view_chainhead",
    "holds": "compliance.view_legalhold",
}
COMPLAINT_OPEN = (Complaint.State.OPEN, Complaint.State.RESPONDED, Complaint.State.ESCALATED)


def dashboard_sections(user) -> list[str]:
    """The sections ``user`` may see, in the page's order."""
    return [key for key, perm in PERMISSIONS.items() if user.has_perm(perm)]


def dashboard_visible(user) -> bool:
    """Whether ``user`` may open the dashboard: they hold at least one section's permission."""
    return bool(dashboard_sections(user))


def days_left(due: datetime, now: datetime) -> int:
    """Calendar days from today to the deadline's day, both in the programme's time zone
    (negative once past: ``-2`` is two days late; ``0`` is due today)."""
    return (timezone.localdate(due) - timezone.localdate(now)).days


# --- shapes ----------------------------------------------------------------------------------


@dataclass
class Deadline:
    """One open item with a deadline (a data-subject request or a complaint)."""

    obj: Any  # DataSubjectRequest | Complaint
    due_at: datetime
    days_left: int
    overdue: bool
    due_soon: bool


@dataclass
class DeadlineList:
    items: list[Deadline]
    open_total: int
    overdue: int
    due_soon: int  # not overdue, due within DUE_SOON_DAYS


@dataclass
class RunLine:
    run: RetentionRun
    due: int
    purged: int
    held: int


@dataclass
class StreamStatus:
    stream: str
    queued: bool  # a queued stream (sealed by the sealer), else appended in the writer's transaction
    seq: int
    has_head: bool
    last_verified_at: datetime | None
    last_verified_ok: bool | None
    unsealed: int
    unsealed_late: int  # waiting longer than UNSEALED_ALERT_MINUTES
    oldest_unsealed: datetime | None

    @property
    def status(self) -> str:
        """``ok``, ``broken`` or ``unverified``."""
        if self.last_verified_ok is None:
            return "unverified"
        return "ok" if self.last_verified_ok else "broken"


@dataclass
class HoldLine:
    hold: LegalHold
    record_model: type[models.Model] | None  # the model whose table a record hold names
    record: models.Model | None  # the held record, when it still exists


@dataclass
class ComplianceDashboard:
    sections: list[str]
    now: datetime
    requests: DeadlineList | None = None
    complaints: DeadlineList | None = None
    runs: list[RunLine] | None = None
    chains: list[StreamStatus] | None = None
    holds: list[HoldLine] | None = None
    holds_total: int = 0
    problems: dict[str, int] = field(default_factory=dict)  # headline counts (overdue, broken)


# --- data-subject requests -------------------------------------------------------------------


def _deadline(obj: Any, due: datetime, now: datetime) -> Deadline:
    overdue = due < now
    soon = not overdue and due <= now + timedelta(days=DUE_SOON_DAYS)
    return Deadline(obj=obj, due_at=due, days_left=days_left(due, now), overdue=overdue, due_soon=soon)


def open_requests(*, now: datetime, limit: int = REQUESTS_SHOWN) -> DeadlineList:
    """Open data-subject requests by deadline (earliest first), and the counts of all open,
    overdue and due within ``DUE_SOON_DAYS``. Two queries."""
    open_ = DataSubjectRequest.objects.filter(state__in=DataSubjectRequest.OPEN_STATES)
    counts = open_.order_by().aggregate(
        total=Count("pk"),
        overdue=Count("pk", filter=Q(due_at__lt=now)),
        soon=Count("pk", filter=Q(due_at__gte=now, due_at__lte=now + timedelta(days=DUE_SOON_DAYS))),
    )
    rows = open_.select_related("member").order_by("due_at", "pk")[:limit]
    return DeadlineList(
        items=[_deadline(request, request.due_at, now) for request in rows],
        open_total=counts["total"],
        overdue=counts["overdue"],
        due_soon=counts["soon"],
    )


# --- complaints ------------------------------------------------------------------------------


def complaint_due(complaint: Complaint) -> datetime:
    """The deadline in force: the first response until one is sent, then the resolution."""
    return complaint.respond_by if complaint.first_responded_at is None else complaint.resolve_by


def complaints_near_deadline(*, user, now: datetime, limit: int = COMPLAINTS_SHOWN) -> DeadlineList:
    """Open complaints ``user`` may see whose deadline in force has passed or falls within
    ``DUE_SOON_DAYS``, by that deadline. Two queries."""
    due_expr = models.Case(
        models.When(first_responded_at__isnull=True, then=models.F("respond_by")),
        default=models.F("resolve_by"),
        output_field=models.DateTimeField(),
    )
    open_ = complaints_visible_to(user).filter(state__in=COMPLAINT_OPEN).annotate(deadline=due_expr)
    soon = now + timedelta(days=DUE_SOON_DAYS)
    counts = open_.order_by().aggregate(
        total=Count("pk"),
        overdue=Count("pk", filter=Q(deadline__lt=now)),
        soon=Count("pk", filter=Q(deadline__gte=now, deadline__lte=soon)),
    )
    rows = open_.filter(deadline__lte=soon).select_related("member", "store").order_by("deadline", "pk")[:limit]
    return DeadlineList(
        items=[_deadline(complaint, complaint_due(complaint), now) for complaint in rows],
        open_total=counts["total"],
        overdue=counts["overdue"],
        due_soon=counts["soon"],
    )


# --- retention runs and holds ----------------------------------------------------------------


def _total(counts: Any) -> int:
    """The sum of a run's per-category (or per-table) counts, however nested."""
    if isinstance(counts, dict):
        return sum(_total(value) for value in counts.values())
    return counts if isinstance(counts, int) else 0


def retention_runs(*, limit: int = RUNS_SHOWN) -> list[RunLine]:
    """The last runs, newest first, with their totals: rows due, purged, skipped under a hold."""
    return [
        RunLine(run=run, due=_total(run.dry_counts), purged=_total(run.counts), held=_total(run.held))
        for run in RetentionRun.objects.order_by("-started_at", "-pk")[:limit]
    ]


def _model_for_table(table: str) -> type[models.Model] | None:
    for model in apps.get_models():
        if model._meta.db_table == table:
            return model
    return None


def standing_holds(*, limit: int = HOLDS_SHOWN) -> tuple[list[HoldLine], int]:
    """Legal holds in force (not released), newest first, and how many there are. A record
    hold carries its model and the record (one query per table named)."""
    standing = LegalHold.objects.filter(released_at__isnull=True)
    holds = list(standing.select_related("member", "placed_by").order_by("-placed_at", "-pk")[:limit])
    wanted: dict[str, set[int]] = {}
    for hold in holds:
        if hold.scope == LegalHold.Scope.RECORD and hold.record_pk is not None:
            wanted.setdefault(hold.table_name, set()).add(hold.record_pk)
    found: dict[tuple[str, int], models.Model] = {}
    models_by_table = {table: _model_for_table(table) for table in wanted}
    for table, pks in wanted.items():
        model = models_by_table[table]
        if model is not None:
            for obj in model._default_manager.filter(pk__in=pks):
                found[(table, obj.pk)] = obj
    lines = [
        HoldLine(
            hold=hold,
            record_model=models_by_table.get(hold.table_name),
            record=found.get((hold.table_name, hold.record_pk)) if hold.record_pk is not None else None,
        )
        for hold in holds
    ]
    return lines, standing.count()


# --- chains ----------------------------------------------------------------------------------


def chain_status(*, now: datetime) -> list[StreamStatus]:
    """Every stream: its head (sequence number, last verification) and its entries waiting
    for the sealer. Two queries."""
    heads = {head.stream: head for head in ChainHead.objects.all()}
    late = now - timedelta(minutes=UNSEALED_ALERT_MINUTES)
    waiting = {
        row["stream"]: row
        for row in ChainQueue.objects.order_by()
        .values("stream")
        .annotate(n=Count("pk"), late=Count("pk", filter=Q(queued_at__lt=late)), oldest=Min("queued_at"))
    }
    found = []
    for name in sorted(set(STREAMS) | set(heads) | set(waiting)):
        head = heads.get(name)
        queue = waiting.get(name, {})
        found.append(
            StreamStatus(
                stream=name,
                queued=name in STREAMS and STREAMS[name].queued,
                seq=head.seq if head else 0,
                has_head=head is not None,
                last_verified_at=head.last_verified_at if head else None,
                last_verified_ok=head.last_verified_ok if head else None,
                unsealed=queue.get("n", 0),
                unsealed_late=queue.get("late", 0),
                oldest_unsealed=queue.get("oldest"),
            )
        )
    return found


# --- the page --------------------------------------------------------------------------------


def compliance_dashboard(user, *, now: datetime | None = None) -> ComplianceDashboard:
    """Everything the dashboard shows ``user``: each section iff they hold its permission."""
    now = now or timezone.now()
    sections = dashboard_sections(user)
    board = ComplianceDashboard(sections=sections, now=now)
    if "requests" in sections:
        board.requests = open_requests(now=now)
        board.problems["overdue requests"] = board.requests.overdue
    if "complaints" in sections:
        board.complaints = complaints_near_deadline(user=user, now=now)
        board.problems["overdue complaints"] = board.complaints.overdue
    if "retention" in sections:
        board.runs = retention_runs()
    if "chains" in sections:
        board.chains = chain_status(now=now)
        board.problems["broken chains"] = sum(1 for stream in board.chains if stream.status == "broken")
    if "holds" in sections:
        board.holds, board.holds_total = standing_holds()
    return board


def compliance_headline(user, *, now: datetime | None = None) -> dict[str, int]:
    """The landing page's line: overdue requests and complaints, broken chains (those the
    user may see; zeros included). Cheaper than the whole page: counts only."""
    now = now or timezone.now()
    sections = dashboard_sections(user)
    found: dict[str, int] = {}
    if "requests" in sections:
        found["overdue requests"] = DataSubjectRequest.objects.filter(
            state__in=DataSubjectRequest.OPEN_STATES, due_at__lt=now
        ).count()
    if "complaints" in sections:
        found["overdue complaints"] = (
            complaints_visible_to(user).filter(state__in=COMPLAINT_OPEN).filter(models_q_overdue(now)).count()
        )
    if "chains" in sections:
        found["broken chains"] = ChainHead.objects.filter(last_verified_ok=False).count()
    return found
