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
    "voucher_rescan": "Used voucher presented again",
    "cashier_redemption_frequency": "Cashier redeeming too often",
    "redemption_irregular": "Sampled redemption found irregular",
    "detector_storm": "Detector tripped (too many alerts in an hour)",
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
    changes (``fraud.services.ruleset_current``); signals and decisions name theirs."""

    version = models.PositiveIntegerField(unique=True)
    config = models.JSONField()
    sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Fraud ruleset v{self.version}"


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
