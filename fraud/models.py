"""Fraud alerts: what the fraud team investigates.

An alert names what happened (``kind``), who it is about (a member, a staff user, a
store; any of them may be empty) and the facts in ``detail`` (ids and counts, never
personal data or secrets). Raised by services (a second scan of a used voucher, a
cashier redeeming too often...), never edited except for its investigation status.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from loyalty.kernel.append_only import AppendOnlyModel

# What each kind of alert means, for people (``kind`` is a code the raisers share).
KIND_LABELS = {
    "member_view_volume": "Staff member viewing unusually many member records in a day",
    "own_member_account_access": "Staff member viewed their own member account",
    "voucher_rescan": "Used voucher presented again",
    "cashier_redemption_frequency": "Cashier redeeming too often",
    "redemption_irregular": "Sampled redemption found irregular",
    "detector_storm": "Detector tripped (too many alerts in an hour)",
    "enumeration_404": "API client probing for members or vouchers (many not-found answers)",
    "pii_reveal_volume": "Staff member revealing unusually much personal data",
    "pii_reveal_outside_stores": "Staff member revealed personal data of a member outside their stores",
    "earn_above_baseline": "Member earning far above their baseline",
    "velocity_cap_streak": "Member at the daily earn cap day after day",
    "redemption_deviation": "Redemption far from the member's history",
    "redemption_spike": "Redemptions spiking",
    "store_issue_cap": "Store issuing points above its cap",
    "store_adjust_rate": "Store adjusting points unusually often",
    "staff_adjust_frequency": "Staff member raising many adjustments",
    "adjust_salami": "Small adjustments adding up",
    "adjust_rationale_audit": "Adjustment failed headquarters' rationale audit",
    "return_unmatched": "Returns without a recorded purchase at a till",
    "return_ladder": "Return ladder: account review",
    "risk_outcome": "Risk score outcome applied (review, step-up or block)",
}

SUBJECT_KINDS = ("member", "staff", "store", "till", "client")


class FraudAlert(models.Model):
    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        INVESTIGATING = "investigating", "Investigating"
        CLOSED = "closed", "Closed"

    kind = models.CharField(max_length=40, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_alerts"
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_alerts"
    )
    store = models.ForeignKey("loyalty.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict, blank=True)
    # One alert per incident: services that may fire repeatedly for one incident give a
    # key (e.g. "voucher_rescan:<voucher>:<day>"), and a second raise finds the first.
    dedupe_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The case the alert joined (the case of its first subject), once one exists.
    case = models.ForeignKey("fraud.FraudCase", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "created_at"], name="fraud_alert_kind_time")]

    def __str__(self) -> str:
        # Stored in UTC, shown in the programme's time zone (as every time on a page).
        when = f", {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}" if self.created_at else ""
        return f"{self.get_kind_display()} ({self.get_severity_display()}{when})"

    def get_kind_display(self) -> str:
        return KIND_LABELS.get(self.kind) or self.kind.replace("_", " ").capitalize()


def _exactly_one_subject(prefix: str) -> models.CheckConstraint:
    fields = {
        "member": Q(member__isnull=False),
        "staff": Q(staff__isnull=False),
        "store": Q(store__isnull=False),
        "till": Q(till__isnull=False),
        "client": ~Q(client=""),
    }
    unset = {
        "member": Q(member__isnull=True),
        "staff": Q(staff__isnull=True),
        "store": Q(store__isnull=True),
        "till": Q(till__isnull=True),
        "client": Q(client=""),
    }
    condition = Q()
    for kind, is_set in fields.items():
        one = is_set
        for other, is_unset in unset.items():
            if other != kind:
                one &= is_unset
        condition |= one
    return models.CheckConstraint(condition=condition, name=f"{prefix}_one_subject")


class Subject(models.Model):
    """Who a signal, decision, case or snooze is about: exactly one of a member, a staff
    user, a store, a till or an API client (a text key: a till key id, a session id or a
    keyed network hash, never an address). ``subject_key`` (``member:12``) is the one
    column the score and the open-case index read."""

    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    store = models.ForeignKey("loyalty.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    till = models.ForeignKey("loyalty.Till", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    client = models.CharField(max_length=64, blank=True, default="")
    subject_key = models.CharField(max_length=80, db_index=True)

    class Meta:
        abstract = True

    @property
    def subject_kind(self) -> str:
        return self.subject_key.split(":", 1)[0]


class FraudRuleset(models.Model):
    """One version of the fraud configuration: written when the configuration's hash
    changes (``fraud.services.ruleset_current``); signals and decisions name theirs.

    A version is *pending* until a Program Administrator approves it
    (``fraud.replay.ruleset_approve``) after seeing its replay: the last 30 days'
    decisions scored again under it and under the last approved version
    (``replay``, ``replayed_at``: the latest replay, run again at will). Approval is
    recorded once (``approved_by``, ``approved_at``: a trigger refuses any other change
    than those set once and the replay). It gates nothing: the version in force is the
    configuration's (see ``fraud.replay``)."""

    version = models.PositiveIntegerField(unique=True)
    config = models.JSONField()
    sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    replay = models.JSONField(default=dict, blank=True, help_text="The latest replay against the approved version.")
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        permissions = [("approve_fraudruleset", "Can approve a fraud ruleset version after its replay")]

    def __str__(self) -> str:
        return f"Fraud ruleset v{self.version}"

    @property
    def approved(self) -> bool:
        return self.approved_at is not None


class RiskSignal(Subject, AppendOnlyModel):
    """What a detector saw about one subject: its weight at raise time and its facts
    (ids, counts, enums, times; never personal data). Append-only."""

    detector = models.CharField(max_length=40)
    ruleset_version = models.PositiveIntegerField()
    weight = models.PositiveSmallIntegerField()
    occurred_at = models.DateTimeField()
    facts = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    alert = models.ForeignKey(FraudAlert, null=True, blank=True, on_delete=models.PROTECT, related_name="signals")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [_exactly_one_subject("fraud_signal")]
        indexes = [
            models.Index(fields=["subject_key", "occurred_at"], name="fraud_signal_subject_time"),
            models.Index(fields=["detector", "occurred_at"], name="fraud_signal_detector_time"),
        ]

    def __str__(self) -> str:
        return f"{self.detector} signal ({self.weight})"


class RiskDecision(Subject, AppendOnlyModel):
    """A subject's score at ``as_of`` and the outcome it mapped to, with every
    contribution (signal, detector, weight, age, counted, facts), largest first."""

    as_of = models.DateTimeField()
    score = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=20)
    forced_by = models.CharField(max_length=40, blank=True, default="")
    ruleset_version = models.PositiveIntegerField()
    contributions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-id"]
        constraints = [_exactly_one_subject("fraud_decision")]
        indexes = [models.Index(fields=["subject_key", "as_of"], name="fraud_decision_subject_time")]

    def __str__(self) -> str:
        return f"Risk {self.score} ({self.outcome})"


class SubjectOutcome(Subject):
    """The outcome in force for one subject (``fraud.outcomes``): the highest outcome
    applied automatically (``allow`` … ``block_and_review``), the decision and case that
    applied it and the member restriction it put on (``restriction_id``: a step-up
    requirement or a spending freeze). One row per subject, locked while a decision is
    applied, so two decisions at once apply one after the other.

    It only rises automatically; it falls when a person lowers it (``lowered_by``) or
    when its restriction ends (the member passed the step-up, an analyst lifted the
    freeze, the freeze lapsed): ``lowered_at`` then, and ``episode`` counts the
    lowerings (an alert is raised once per outcome and episode)."""

    outcome = models.CharField(max_length=20, default="allow")
    episode = models.PositiveIntegerField(default=0)
    decision = models.ForeignKey(
        "fraud.RiskDecision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    case = models.ForeignKey("fraud.FraudCase", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    restriction_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The member restriction the outcome put on (an id: members owns the row)."
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    lowered_at = models.DateTimeField(null=True, blank=True)
    lowered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lowered_reason = models.CharField(max_length=40, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            _exactly_one_subject("fraud_outcome"),
            models.UniqueConstraint(fields=["subject_key"], name="fraud_outcome_one_per_subject"),
        ]

    def __str__(self) -> str:
        return f"Outcome in force: {self.outcome}"


class OutcomeApplication(AppendOnlyModel):
    """What applying one ``RiskDecision`` did (``fraud.outcomes.decision_apply``): the
    outcome in force before and after, the actions taken (ids only: the alert, the case
    and whether it was opened, the member restriction) and, when nothing was applied or
    less than the decision's outcome, why (``held``). One per decision; append-only."""

    class Held(models.TextChoices):
        APPLIED = "", "Applied"
        NOT_AN_ESCALATION = "not_an_escalation", "Not above the outcome in force"
        NO_NEW_EVIDENCE = "no_new_evidence", "Lowered since, and no new signal"
        DETECTOR_STORM = "detector_storm", "A tripped detector's weight left out"
        SUPERSEDED = "superseded", "A later decision was applied first"
        NOT_ENFORCED = "not_enforced", "Automatic outcomes switched off"

    decision = models.OneToOneField("fraud.RiskDecision", on_delete=models.PROTECT, related_name="application")
    subject_key = models.CharField(max_length=80, db_index=True)
    outcome_before = models.CharField(max_length=20)
    outcome_after = models.CharField(max_length=20)
    held = models.CharField(max_length=20, choices=Held.choices, blank=True, default="")
    actions = models.JSONField(default=list, blank=True)
    case = models.ForeignKey(
        "fraud.FraudCase", null=True, blank=True, on_delete=models.PROTECT, related_name="outcome_applications"
    )
    applied_at = models.DateTimeField()

    class Meta:
        ordering = ["-applied_at", "-id"]

    def __str__(self) -> str:
        return f"Outcome {self.outcome_before} → {self.outcome_after}"


class FraudCase(Subject):
    """Alerts about one subject, grouped for one inbox: at most one open case per
    (inbox, subject) (a partial unique index); changes through fraud.services only,
    each recorded as a CaseEvent."""

    class Inbox(models.TextChoices):
        ATO = "ato", "Account takeover"
        RETURNS = "returns", "Returns"
        INSIDER = "insider", "Insider"
        STORE = "store", "Stores"
        API = "api", "API clients"

    class Status(models.TextChoices):
        NEW = "new", "New"
        INVESTIGATING = "investigating", "Investigating"
        AWAITING_ACTION = "awaiting_action", "Awaiting action"
        CLOSED = "closed", "Closed"

    class Outcome(models.TextChoices):
        CONFIRMED_FRAUD = "confirmed_fraud", "Confirmed fraud"
        NOT_FRAUD = "not_fraud", "Not fraud"
        INCONCLUSIVE = "inconclusive", "Inconclusive"

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    reference = models.CharField(max_length=20, unique=True, null=True, blank=True)
    inbox = models.CharField(max_length=12, choices=Inbox.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")
    resolution_reason = models.CharField(max_length=40, blank=True, default="")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_cases"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    score_at_open = models.PositiveSmallIntegerField(default=0)
    ruleset_version = models.PositiveIntegerField()
    previous_case = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    due_at = models.DateTimeField()
    first_signal_at = models.DateTimeField()
    opened_at = models.DateTimeField()
    contained_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["due_at", "id"]
        permissions = [("work_fraudcase", "Can work fraud cases (assign, investigate, close)")]
        constraints = [
            _exactly_one_subject("fraud_case"),
            models.UniqueConstraint(
                fields=["inbox", "subject_key"], condition=~Q(status="closed"), name="fraud_case_one_open_per_subject"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="fraud_case_status_due"),
            models.Index(fields=["assigned_to", "status"], name="fraud_case_assignee_status"),
        ]

    def __str__(self) -> str:
        return f"Case {self.reference or self.pk} ({self.get_status_display()})"


class CaseEvent(AppendOnlyModel):
    """One change of a case (or a note on it): append-only, the case's own timeline."""

    case = models.ForeignKey(FraudCase, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=24)
    old_value = models.CharField(max_length=64, blank=True, default="")
    new_value = models.CharField(max_length=64, blank=True, default="")
    note = models.TextField(blank=True, default="")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["case", "at"], name="fraud_caseevent_case_time")]

    def __str__(self) -> str:
        return f"{self.kind} at {timezone.localtime(self.at):%Y-%m-%d %H:%M}"


class DetectorSnooze(Subject):
    """A detector silenced for one subject until ``until`` (a reason, who): its signals
    are not recorded meanwhile. A not_fraud closure writes these for 90 days."""

    detector = models.CharField(max_length=40)
    until = models.DateTimeField()
    reason = models.CharField(max_length=200)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [_exactly_one_subject("fraud_snooze")]
        indexes = [models.Index(fields=["detector", "subject_key", "until"], name="fraud_snooze_lookup")]

    def __str__(self) -> str:
        return f"{self.detector} snoozed"


# --- batch detectors (FRAUD.md rows 2-10) -------------------------------------------------------


class MemberDayStats(models.Model):
    """A member's figures for one programme-local day, upserted set-based from the ledger
    (``fraud.detectors.earning.member_day_stats_refresh``): earns, their points and
    standard points, returns, redemptions (holds and one-step redemptions) and their points. Caps a
    baseline's read at 90 rows per member (FRAUD.md §6). Derived data: rebuilt at will."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    earns = models.PositiveIntegerField(default=0)
    points = models.BigIntegerField(default=0)
    # The day's earns at the programme's base rate, before tier multipliers: a member's
    # pattern is compared in these, so that a tier upgrade is not a spike.
    base_points = models.BigIntegerField(default=0)
    returns = models.PositiveIntegerField(default=0)
    redemptions = models.PositiveIntegerField(default=0)
    redeemed_points = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "day"], name="member_day_stats_once")]
        indexes = [models.Index(fields=["day"], name="member_day_stats_day")]

    def __str__(self) -> str:
        return f"day stats {self.day:%Y-%m-%d}"


class DetectorRun(models.Model):
    """A batch detector's progress: the micro-batch watermark (``created_at`` of the
    operations already read, kept 5 minutes behind the clock: id order is not commit
    order), the last run's start and end and its counts (rows read, alerts raised)."""

    detector = models.CharField(max_length=40, unique=True)
    watermark = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.detector} run"


class AuditSample(models.Model):
    """One posted adjustment drawn for headquarters' monthly rationale audit (FRAUD.md
    row 10): every headquarters-band adjustment, a share of the others (lowest keyed
    hash of month and id first, so the draw is reproducible and unpredictable to staff).
    ``outcome`` is headquarters' verdict once audited ("" until then)."""

    class Outcome(models.TextChoices):
        PENDING = "", "Not audited yet"
        PASSED = "passed", "Rationale sound"
        FAILED = "failed", "Rationale failed"

    month = models.DateField(help_text="The first day of the month audited.")
    adjustment = models.ForeignKey("loyalty.AdjustmentRequest", on_delete=models.PROTECT, related_name="audit_samples")
    band = models.CharField(max_length=20)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    flagged_staff = models.BooleanField(default=False, help_text="Drawn at the raised rate: the requester was flagged.")
    draw_hash = models.CharField(max_length=64)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True, default="")
    drawn_at = models.DateTimeField()
    audited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    audited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month", "draw_hash"]
        constraints = [models.UniqueConstraint(fields=["month", "adjustment"], name="audit_sample_once")]

    def __str__(self) -> str:
        return f"audit sample {self.month:%Y-%m}"


class ReturnLadderStep(AppendOnlyModel):
    """A step of the return ladder (FRAUD.md row 19) taken for a member: ``warning`` (a
    message to the member) or ``review`` (a high-severity alert and case). Once per
    ``dedupe_key``; a step is taken again only after 180 days without one. Append-only."""

    class Step(models.TextChoices):
        WARNING = "warning", "Warning sent"
        REVIEW = "review", "Account review opened"

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=12, choices=Step.choices)
    suspicious_returns = models.PositiveIntegerField()
    at = models.DateTimeField()
    dedupe_key = models.CharField(max_length=120, unique=True)
    message = models.ForeignKey(
        "loyalty.OutboundMessage", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    alert = models.ForeignKey(FraudAlert, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "step", "at"], name="fraud_ladder_member_step")]

    def __str__(self) -> str:
        return f"Return ladder {self.step} ({self.suspicious_returns})"


def _case_file_storage():
    from django.core.files.storage import storages

    return storages["private"]


class CaseFile(AppendOnlyModel):
    """Evidence attached to a case: a private file (never under MEDIA_URL), its type
    read from its first bytes (PDF, PNG, JPEG: ``loyalty.adjustments.services.document_type``),
    served only to those who may view the case. Append-only: evidence is added, not edited."""

    case = models.ForeignKey(FraudCase, on_delete=models.PROTECT, related_name="files")
    file = models.FileField(storage=_case_file_storage, upload_to="fraud/cases/%Y/%m/")
    content_type = models.CharField(max_length=60)
    size = models.PositiveIntegerField()
    description = models.CharField(max_length=200, blank=True, default="")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"Case file {self.pk} ({self.content_type})"


class FraudReport(models.Model):
    """A fraud report of one period (a local day, a Monday-to-Sunday week or a calendar
    month, ``settings.TIME_ZONE``): rows in ``fraud.reports.COLUMNS`` order (the CSV's)
    plus their store and subject for scoping, and the page's totals.

    A report built after its period ended is ``final`` and never changes again (a
    trigger refuses UPDATE and DELETE of a final row): it records what was known when it
    was built, like a closed ledger day. One built while its period is still running is
    provisional, and the next build of the same period replaces it. Building is thus
    idempotent: a rebuild of a final report returns it untouched."""

    class Period(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    period = models.CharField(max_length=8, choices=Period.choices)
    start = models.DateField(help_text="The period's first local day.")
    end = models.DateField(help_text="The day after the period's last local day.")
    rows = models.JSONField(default=list, help_text="One entry per figure, in CSV column order.")
    totals = models.JSONField(default=dict, help_text="The page's figures: by detector, store, staff, cases, targets.")
    final = models.BooleanField(default=False, help_text="Built after the period ended: never rebuilt.")
    built_at = models.DateTimeField()
    built_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-start", "period"]
        constraints = [
            models.UniqueConstraint(fields=["period", "start"], name="fraud_report_one_per_period"),
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="fraud_report_end_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.get_period_display()} fraud report from {self.start:%Y-%m-%d}"
