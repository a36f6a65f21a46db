"""The staff workplace: what a person's landing page in the admin shows (``/admin/``).

``workplace(user)`` gathers, for whoever is signed in, read-only and set-based:

- **Needs you now**: the queues awaiting this person's decision, each with its count, the
  age of its oldest item and a link to the filtered list. A queue appears iff the user
  may act on it (the permission that decides it), even when it is empty.
- **Your figures**: points issued and redeemed, adjustments and fraud alerts per day over
  the last 30 days (totals for 7 and 30), at the stores the user may see
  (``loyalty.kernel.scoping``): a store-scoped role sees its stores' figures, a
  programme-wide role the programme's. Each figure appears iff the user may view its records.
- **Shortcuts** to the lists and forms the role uses daily (only those it may open).
- **Recent activity**: the person's own ledger operations, adjustment decisions and
  security events (Django's "Recent actions" reads admin log entries, which our services
  do not write).
- **Job status** (those who may change the schedules: system administrators): each
  schedule's last run and result, recent failures, and service health.
- **Compliance** (those who may see any section of the compliance dashboard): its link,
  with the overdue data-subject requests and complaints and the broken chains they may see.

A page costs a query per queue and per figure, three for the activity and three for the
job status; each uses an index (``created_at``, ``state``/``status``, the job log's
``(task_name, -finished_at)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from loyalty.workplace import charts
from loyalty.workplace.display import (
    choice_label,
    link,
    local_time,
    member_link,
    operation_link,
    points_signed,
    store_label,
    yes_no,
)

if TYPE_CHECKING:
    from staffauth.models import StaffUser

# How each role is named on its landing page (staffauth.roles keys).
ROLE_TITLES = {
    "cashier": "Cashier",
    "store_manager": "Store manager",
    "program_admin": "Programme administrator",
    "system_admin": "System administrator",
    "fraud_analyst": "Fraud analyst",
}
DAYS = 30
WEEK = 7
ACTIVITY_LIMIT = 10
FAILURES_SHOWN = 10


# --- shapes ----------------------------------------------------------------------------------


def age_text(delta: timedelta) -> str:
    """``4 min``, ``3 h``, ``2 d``: how long the oldest item has waited."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


@dataclass
class Queue:
    key: str
    noun: tuple[str, str]  # singular, plural
    verb: tuple[str, str]  # what waiting items do: ("awaits your decision", "await your decision")
    count: int
    oldest: datetime | None
    url: str
    dom_id: str = ""  # the id of a non-empty queue's line (tests and links rely on some)

    @property
    def text(self) -> str:
        noun = self.noun[0] if self.count == 1 else self.noun[1]
        verb = self.verb[0] if self.count == 1 else self.verb[1]
        return f"{self.count} {noun} {verb}"

    @property
    def empty_text(self) -> str:
        return f"No {self.noun[1]} {self.verb[1]}"

    def age(self, now: datetime) -> str:
        return age_text(now - self.oldest) if self.oldest else ""


@dataclass
class Figure:
    key: str
    title: str
    unit: str
    week: int
    month: int
    bars: SafeString
    spark: SafeString

    @property
    def week_text(self) -> str:
        return f"{self.week:,}"

    @property
    def month_text(self) -> str:
        return f"{self.month:,}"


@dataclass
class Shortcut:
    label: str
    url: str


@dataclass
class Activity:
    at: datetime
    what: SafeString

    @property
    def when(self) -> SafeString:
        return local_time(self.at)


@dataclass
class ScheduleStatus:
    name: str
    url: str | None
    task: str
    enabled: bool
    last_finished: datetime | None
    last_state: str
    last_error: str
    by_hand: bool  # the last run recorded was not started by this schedule

    @property
    def enabled_text(self) -> SafeString:
        return yes_no(self.enabled)

    @property
    def finished_text(self) -> SafeString:
        return local_time(self.last_finished)

    @property
    def state_text(self) -> str:
        return state_label(self.last_state)


@dataclass
class FailedRun:
    task: str
    schedule: str
    finished_at: datetime
    error: str

    @property
    def finished_text(self) -> SafeString:
        return local_time(self.finished_at)


@dataclass
class JobStatus:
    schedules: list[ScheduleStatus]
    failure_rows: list[FailedRun]
    health: dict[str, str]


@dataclass
class CaseLine:
    reference: str
    url: str | None
    severity: str
    severity_label: str
    subject: SafeString
    due: SafeString
    overdue: bool


@dataclass
class FraudDashboard:
    """The fraud analyst's section: open cases by age, alerts by detector over 30 days,
    the risk trend (signals per day), their own open cases and the overdue ones."""

    buckets: list[tuple[str, int, str]]  # (label, count, link to the queue)
    open_total: int
    detectors: SafeString
    detector_rows: list[tuple[str, int]]
    risk: SafeString
    risk_total: int
    mine: list[CaseLine]
    overdue: list[CaseLine]
    queue_url: str


@dataclass
class ComplianceLink:
    """The landing page's way to the compliance dashboard, with its headline counts
    (overdue requests and complaints, broken chains: those the user may see)."""

    url: str
    headline: dict[str, int]

    @property
    def alerts(self) -> int:
        return sum(self.headline.values())


@dataclass
class Workplace:
    title: str
    roles: list[str]
    scope: str  # "KLA Store A" or "all stores"
    queues: list[Queue] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    shortcuts: list[Shortcut] = field(default_factory=list)
    activity: list[Activity] = field(default_factory=list)
    jobs: JobStatus | None = None
    fraud: FraudDashboard | None = None
    compliance: ComplianceLink | None = None
    now: datetime = field(default_factory=timezone.now)
    time_zone: str = field(default_factory=lambda: str(settings.TIME_ZONE))

    @property
    def waiting(self) -> int:
        return sum(queue.count for queue in self.queues)

    def queue_ages(self) -> list[tuple[Queue, str]]:
        return [(queue, queue.age(self.now)) for queue in self.queues]


# --- who ---------------------------------------------------------------------------------------


def roles_of(user: StaffUser) -> list[str]:
    """The user's product roles (staffauth.roles keys), in the roles' order."""
    from staffauth.roles import ROLE_BY_NAME, ROLES

    held = {ROLE_BY_NAME[name].key for name in user.groups.values_list("name", flat=True) if name in ROLE_BY_NAME}
    return [key for key in ROLES if key in held]


def scope_text(user: StaffUser) -> str:
    """``all stores``, or the user's stores by code and name (the first two, then how many more)."""
    from loyalty.kernel.scoping import sees_all_stores, stores_visible_to

    if sees_all_stores(user):
        return "all stores"
    stores = list(stores_visible_to(user).order_by("code")[:3])
    if not stores:
        return "no store assigned"
    if len(stores) <= 2:
        return ", ".join(store_label(store) for store in stores)
    more = stores_visible_to(user).count() - 2
    return f"{store_label(stores[0])}, {store_label(stores[1])} and {more} more"


def title_for(user: StaffUser, roles: list[str], scope: str) -> str:
    """The landing page's heading: ``Store manager · KLA Store A``. Stable (no greeting)."""
    if not roles:
        return "Workplace"
    role = " / ".join(ROLE_TITLES[key] for key in roles)
    return f"{role} · {scope}"


# --- needs you now ---------------------------------------------------------------------------


def _url(name: str, query: str = "") -> str | None:
    try:
        return reverse(name) + query
    except NoReverseMatch:
        return None


def _change_url(name: str, pk: Any) -> str | None:
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return None


def _summary(queryset: QuerySet[Any], time_field: str) -> tuple[int, datetime | None]:
    """How many rows and the oldest ``time_field``: one aggregate query."""
    row = queryset.order_by().aggregate(n=Count("pk"), oldest=Min(time_field))
    return row["n"], row["oldest"]


def _adjustments_queue(user: StaffUser) -> Queue | None:
    if not (user.has_perm("loyalty.approve_adjustmentrequest") or user.has_perm("loyalty.review_adjustmentrequest")):
        return None
    from loyalty.adjustments.services import adjustments_awaiting

    count, oldest = _summary(adjustments_awaiting(user), "requested_at")
    return Queue(
        "adjustments", ("adjustment request", "adjustment requests"), ("awaits your decision", "await your decision"),
        count, oldest, reverse("admin:loyalty_adjustmentrequest_changelist") + "?awaiting=me",
        dom_id="adjustments-awaiting",
    )  # fmt: skip


def _offline_queue(user: StaffUser) -> Queue | None:
    if not user.has_perm("vouchers.decide_pendingredemption"):
        return None
    from loyalty.kernel.scoping import restrict
    from vouchers.models import PendingRedemption

    pending = PendingRedemption.objects.filter(status=PendingRedemption.Status.PENDING)
    count, oldest = _summary(restrict(pending, user, "decide"), "received_at")
    return Queue(
        "offline", ("offline redemption", "offline redemptions"), ("awaits approval", "await approval"),
        count, oldest, reverse("admin:vouchers_pendingredemption_changelist") + "?status__exact=pending",
        dom_id="offline-awaiting",
    )  # fmt: skip


def _audit_queue(user: StaffUser) -> Queue | None:
    if not user.has_perm("vouchers.review_redemptionaudit"):
        return None
    from loyalty.kernel.scoping import restrict
    from vouchers.models import RedemptionAudit

    pending = RedemptionAudit.objects.filter(outcome=RedemptionAudit.Outcome.PENDING)
    count, oldest = _summary(restrict(pending, user, "review"), "sampled_at")
    return Queue(
        "audits", ("sampled redemption", "sampled redemptions"), ("awaits your review", "await your review"),
        count, oldest, reverse("admin:vouchers_redemptionaudit_changelist") + "?outcome__exact=pending",
        dom_id="audits-awaiting",
    )  # fmt: skip


def _alerts_queue(user: StaffUser) -> Queue | None:
    if not user.has_perm("fraud.change_fraudalert"):
        return None
    from fraud.models import FraudAlert
    from fraud.selectors import fraud_alerts_visible_to

    open_alerts = fraud_alerts_visible_to(user=user).filter(status=FraudAlert.Status.OPEN)
    count, oldest = _summary(open_alerts, "created_at")
    return Queue(
        "alerts", ("fraud alert", "fraud alerts"), ("is open", "are open"),
        count, oldest, reverse("admin:fraud_fraudalert_changelist") + "?status__exact=open",
        dom_id="alerts-open",
    )  # fmt: skip


def locked_out_attempts() -> QuerySet[Any]:
    """The lock-outs in force: attempts at the failure limit whose lock has not expired."""
    from axes.models import AccessAttempt
    from django.db.models import Q

    return AccessAttempt.objects.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT).filter(
        Q(expiration__isnull=True) | Q(expiration__expires_at__gt=timezone.now())
    )


def _lockouts_queue(user: StaffUser) -> Queue | None:
    if not user.has_perm("axes.delete_accessattempt"):
        return None
    count, oldest = _summary(locked_out_attempts(), "attempt_time")
    return Queue(
        "lockouts", ("locked-out sign-in", "locked-out sign-ins"), ("awaits release", "await release"),
        count, oldest, reverse("admin:axes_accessattempt_changelist"), dom_id="lockouts",
    )  # fmt: skip


def failed_job_runs() -> QuerySet[Any]:
    """Each task's latest run, where that run failed (a later success clears it)."""
    from loyalty.kernel.models import JobRun

    latest = JobRun.objects.filter(task_name=OuterRef("task_name")).order_by("-finished_at", "-id").values("pk")[:1]
    return JobRun.objects.filter(state=JobRun.State.FAILURE, pk=Subquery(latest))


def _jobs_queue(user: StaffUser) -> Queue | None:
    if not user.has_perm("django_celery_beat.change_periodictask"):
        return None
    count, oldest = _summary(failed_job_runs(), "finished_at")
    return Queue(
        "jobs", ("job", "jobs"), ("failed on its last run", "failed on their last run"),
        count, oldest, "#workplace-jobs", dom_id="jobs-failed",
    )  # fmt: skip


QUEUES = (_adjustments_queue, _offline_queue, _audit_queue, _alerts_queue, _lockouts_queue, _jobs_queue)


def queues_for(user: StaffUser) -> list[Queue]:
    return [queue for make in QUEUES if (queue := make(user)) is not None]


# --- your figures ----------------------------------------------------------------------------


def _days(now: datetime) -> list[date]:
    today = timezone.localdate(now)
    return [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]


def _since(days: list[date]) -> datetime:
    return timezone.make_aware(datetime.combine(days[0], datetime.min.time()))


def _figure(key: str, title: str, unit: str, per_day: dict[date, int], days: list[date]) -> Figure:
    series = [(f"{day:%Y-%m-%d}", per_day.get(day, 0)) for day in days]
    week = series[-WEEK:]
    return Figure(
        key=key,
        title=title,
        unit=unit,
        week=sum(value for _, value in week),
        month=sum(value for _, value in series),
        bars=charts.bar_chart(series, title=charts.describe(series, what=f"{title} per day"), css=f"chart-{key}"),
        spark=charts.sparkline(
            [value for _, value in week], title=charts.describe(week, what=f"{title}, last 7 days"), css=f"chart-{key}"
        ),
    )


def _daily_counts(queryset: QuerySet[Any], time_field: str) -> dict[date, int]:
    rows = (
        queryset.order_by()
        .annotate(day=TruncDate(time_field, tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(n=Count("pk"))
    )
    return {row["day"]: row["n"] for row in rows}


def figures_for(user: StaffUser, now: datetime) -> list[Figure]:
    """The figures ``user`` answers for, per day over the last 30 days, at their stores."""
    from loyalty.kernel.scoping import scope_to_stores

    days = _days(now)
    since = _since(days)
    figures = []
    if user.has_perm("loyalty.view_ledgeroperation"):
        from loyalty.ledger.selectors import ISSUED_KINDS, points_daily_visible

        issued: dict[date, int] = {}
        redeemed: dict[date, int] = {}
        for row in points_daily_visible(user=user, since=since):
            target = issued if row["kind"] in ISSUED_KINDS else redeemed
            target[row["day"]] = target.get(row["day"], 0) + row["points"]
        figures.append(_figure("issued", "Points issued", "points", issued, days))
        figures.append(_figure("redeemed", "Points redeemed", "points", redeemed, days))
    if user.has_perm("loyalty.view_adjustmentrequest"):
        from loyalty.adjustments.models import AdjustmentRequest

        raised = scope_to_stores(AdjustmentRequest.objects.filter(requested_at__gte=since), user)
        figures.append(_figure("adjustments", "Adjustments requested", "requests", _daily_counts(raised, "requested_at"), days))  # fmt: skip
    if user.has_perm("fraud.view_fraudalert"):
        from fraud.models import FraudAlert
        from fraud.selectors import fraud_alerts_visible_to

        alerts = fraud_alerts_visible_to(user=user, queryset=FraudAlert.objects.filter(created_at__gte=since))
        figures.append(_figure("alerts", "Fraud alerts raised", "alerts", _daily_counts(alerts, "created_at"), days))
    return figures


# --- the fraud analyst's dashboard -----------------------------------------------------------

# Open cases by how long they have been open: (label, from hours, to hours).
CASE_AGE_BUCKETS = (("under 1 day", 0, 24), ("1–3 days", 24, 72), ("3–7 days", 72, 168), ("over 7 days", 168, None))
CASES_SHOWN = 10


def _case_lines(cases: QuerySet[Any], user: StaffUser, now: datetime) -> list[CaseLine]:
    from fraud.admin.cases import subject_link

    return [
        CaseLine(
            reference=case.reference or f"#{case.pk}",
            url=_change_url("admin:fraud_fraudcase_change", case.pk),
            severity=case.severity,
            severity_label=case.get_severity_display(),
            subject=subject_link(case, user),
            due=local_time(case.due_at),
            overdue=case.due_at < now,
        )
        for case in cases.select_related("member", "staff", "store", "till__store")[:CASES_SHOWN]
    ]


def fraud_dashboard(user: StaffUser, now: datetime) -> FraudDashboard:
    """The fraud section of the landing page; a query per bucket set, chart and list."""
    from django.db.models import Q

    from fraud.models import FraudAlert, FraudCase, RiskSignal

    open_cases = FraudCase.objects.exclude(status=FraudCase.Status.CLOSED)
    aggregates = {}
    for index, (_, low, high) in enumerate(CASE_AGE_BUCKETS):
        window = Q(opened_at__lte=now - timedelta(hours=low))
        if high is not None:
            window &= Q(opened_at__gt=now - timedelta(hours=high))
        aggregates[f"bucket{index}"] = Count("pk", filter=window)
    counts = open_cases.order_by().aggregate(**aggregates)
    queue_url = reverse("admin:fraud_fraudcase_changelist")
    buckets = [
        (label, counts[f"bucket{i}"], f"{queue_url}?due=open") for i, (label, _, _) in enumerate(CASE_AGE_BUCKETS)
    ]
    days = _days(now)
    since = _since(days)
    per_kind = (
        FraudAlert.objects.filter(created_at__gte=since)
        .order_by()
        .values("kind")
        .annotate(n=Count("pk"))
        .order_by("-n", "kind")
    )
    detector_rows = [(row["kind"], row["n"]) for row in per_kind]
    signals = _daily_counts(RiskSignal.objects.filter(occurred_at__gte=since), "occurred_at")
    risk_series = [(f"{day:%Y-%m-%d}", signals.get(day, 0)) for day in days]
    return FraudDashboard(
        buckets=buckets,
        open_total=sum(counts.values()),
        detectors=charts.bar_chart(
            detector_rows,
            title=charts.describe(detector_rows, what="Fraud alerts by detector, last 30 days")
            if detector_rows
            else "Fraud alerts by detector, last 30 days: none.",
            width=max(120, 40 * len(detector_rows)),
            css="chart-detectors",
        ),
        detector_rows=detector_rows,
        risk=charts.bar_chart(
            risk_series, title=charts.describe(risk_series, what="Risk signals per day"), css="chart-risk"
        ),
        risk_total=sum(value for _, value in risk_series),
        mine=_case_lines(open_cases.filter(assigned_to=user).order_by("due_at", "pk"), user, now),
        overdue=_case_lines(open_cases.filter(due_at__lt=now).order_by("due_at", "pk"), user, now),
        queue_url=queue_url,
    )


# --- shortcuts -------------------------------------------------------------------------------

# (label, URL name, query string, permission): in the order of a working day.
SHORTCUTS = (
    ("Look up a member", "admin:members_member_changelist", "", "members.view_member"),
    ("Raise an adjustment", "admin:loyalty_adjustmentrequest_add", "", "loyalty.add_adjustmentrequest"),
    ("Adjustment requests", "admin:loyalty_adjustmentrequest_changelist", "", "loyalty.view_adjustmentrequest"),
    ("Adjustment reports", "admin:loyalty_adjustmentreport_changelist", "", "loyalty.view_adjustmentreport"),
    ("Offline redemptions", "admin:vouchers_pendingredemption_changelist", "", "vouchers.view_pendingredemption"),
    ("Till shifts", "admin:vouchers_staffshift_changelist", "", "vouchers.view_staffshift"),
    ("Till redemptions", "admin:vouchers_tillredemption_changelist", "", "vouchers.view_tillredemption"),
    ("Voucher scans", "admin:vouchers_voucherscan_changelist", "", "vouchers.view_voucherscan"),
    ("Redemption audit", "admin:vouchers_redemptionaudit_changelist", "", "vouchers.view_redemptionaudit"),
    ("Vouchers", "admin:vouchers_voucher_changelist", "", "vouchers.view_voucher"),
    ("Reward catalogue", "admin:vouchers_reward_changelist", "", "vouchers.change_reward"),
    ("Ledger operations", "admin:loyalty_ledgeroperation_changelist", "", "loyalty.view_ledgeroperation"),
    ("Fraud cases", "admin:fraud_fraudcase_changelist", "?due=open", "fraud.view_fraudcase"),
    ("Fraud alerts", "admin:fraud_fraudalert_changelist", "", "fraud.view_fraudalert"),
    ("Stores", "admin:loyalty_store_changelist", "", "loyalty.change_store"),
    ("Tills", "admin:loyalty_till_changelist", "", "loyalty.change_till"),
    ("Staff accounts", "admin:staffauth_staffuser_changelist", "", "staffauth.view_staffuser"),
    ("Schedules", "admin:django_celery_beat_periodictask_changelist", "", "django_celery_beat.view_periodictask"),
    ("Lock-outs", "admin:axes_accessattempt_changelist", "", "axes.delete_accessattempt"),
    ("Security events", "admin:staffauth_securityevent_changelist", "", "staffauth.view_securityevent"),
    ("Outbox", "admin:loyalty_outboundmessage_changelist", "", "loyalty.view_outboundmessage"),
)


def shortcuts_for(user: StaffUser) -> list[Shortcut]:
    found = []
    for label, name, query, perm in SHORTCUTS:
        if user.has_perm(perm) and (url := _url(name, query)) is not None:
            found.append(Shortcut(label, url))
    return found


# --- recent activity -------------------------------------------------------------------------


def activity_for(user: StaffUser) -> list[Activity]:
    """The person's own latest actions, newest first: ledger operations they made,
    adjustment requests they raised or decided, their security events."""
    from loyalty.adjustments.models import AdjustmentEvent
    from loyalty.ledger.selectors import operations_by_staff
    from staffauth.models import SecurityEvent

    found = []
    for operation in operations_by_staff(staff=user, limit=ACTIVITY_LIMIT):
        where = f" at {store_label(operation.store)}" if operation.store_id else ""
        found.append(
            Activity(
                operation.created_at,
                format_html("{} for {}{}", operation_link(operation, user), member_link(operation.member, user), where),
            )
        )
    events = (
        AdjustmentEvent.objects.filter(actor=user)
        .select_related("request__member")
        .order_by("-created_at", "-id")[:ACTIVITY_LIMIT]
    )
    for event in events:
        request = event.request
        found.append(
            Activity(
                event.created_at,
                format_html(
                    "Adjustment request {} ({} points) for {}: {}",
                    link(request, f"#{request.pk}", user),
                    points_signed(request.points),
                    member_link(request.member, user),
                    event.get_kind_display().lower(),
                ),
            )
        )
    for security in SecurityEvent.objects.filter(actor=user).order_by("-created_at", "-id")[:ACTIVITY_LIMIT]:
        found.append(Activity(security.created_at, link(security, security.get_kind_display(), user)))
    found.sort(key=lambda item: item.at, reverse=True)
    return found[:ACTIVITY_LIMIT]


# --- job status ------------------------------------------------------------------------------


def schedules_status() -> list[ScheduleStatus]:
    """Every schedule with its last run (by the schedule, else any run of its task) and
    how it ended. One query (subqueries on the job log's indexes)."""
    from django_celery_beat.models import PeriodicTask

    from loyalty.kernel.models import JobRun

    def latest(field_name: str, **match: Any) -> Subquery:
        runs = JobRun.objects.filter(**match).order_by("-finished_at", "-id").values(field_name)[:1]
        return Subquery(runs)

    by_schedule = {"periodic_task_name": OuterRef("name")}
    by_task = {"task_name": OuterRef("task")}
    rows = PeriodicTask.objects.annotate(
        s_finished=latest("finished_at", **by_schedule),
        s_state=latest("state", **by_schedule),
        s_error=latest("error", **by_schedule),
        t_finished=latest("finished_at", **by_task),
        t_state=latest("state", **by_task),
        t_error=latest("error", **by_task),
    ).order_by("name")
    found = []
    for row in rows:
        by_hand = row.t_finished is not None and (row.s_finished is None or row.t_finished > row.s_finished)
        prefix = "t" if by_hand else "s"
        found.append(
            ScheduleStatus(
                name=row.name,
                url=_change_url("admin:django_celery_beat_periodictask_change", row.pk),
                task=row.task,
                enabled=row.enabled,
                last_finished=getattr(row, f"{prefix}_finished"),
                last_state=getattr(row, f"{prefix}_state") or "",
                last_error=getattr(row, f"{prefix}_error") or "",
                by_hand=by_hand,
            )
        )
    return found


def job_status() -> JobStatus:
    from loyalty.health import broker_status, database_status
    from loyalty.kernel.models import JobRun

    failures = JobRun.objects.filter(state=JobRun.State.FAILURE).order_by("-finished_at", "-id")[:FAILURES_SHOWN]
    return JobStatus(
        schedules=schedules_status(),
        failure_rows=[FailedRun(run.task_name, run.periodic_task_name, run.finished_at, run.error) for run in failures],
        health={"Database": database_status(), "Broker (Redis)": broker_status()},
    )


def state_label(state: str) -> str:
    from loyalty.kernel.models import JobRun

    return choice_label(JobRun.State.choices, state) if state else "Never run"


# --- the page --------------------------------------------------------------------------------


def workplace(user: StaffUser, *, now: datetime | None = None) -> Workplace:
    """Everything the landing page shows ``user``; see the module docstring."""
    now = now or timezone.now()
    roles = roles_of(user)
    scope = scope_text(user)
    place = Workplace(title=title_for(user, roles, scope), roles=roles, scope=scope, now=now)
    place.queues = queues_for(user)
    place.figures = figures_for(user, now)
    place.shortcuts = shortcuts_for(user)
    place.activity = activity_for(user)
    if user.has_perm("django_celery_beat.change_periodictask"):
        place.jobs = job_status()
    if user.has_perm("fraud.work_fraudcase"):  # the fraud analyst works cases
        place.fraud = fraud_dashboard(user, now)
    place.compliance = compliance_link(user, now)
    return place


def compliance_link(user: StaffUser, now: datetime) -> ComplianceLink | None:
    """The compliance dashboard's link for a user who may open it (any of its sections'
    view permissions), else None. A count query per section shown in the headline."""
    from compliance.dashboard import compliance_headline, dashboard_visible

    if not dashboard_visible(user) or (url := _url("admin:compliance_dashboard")) is None:
        return None
    return ComplianceLink(url=url, headline=compliance_headline(user, now=now))
