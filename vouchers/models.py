"""Vouchers: the reward catalogue, issued vouchers, their single-use redemption at the
till, and the till's redemption controls (shifts, audit sample, offline queue).

Invariants held by the database, not only by the services:

- a voucher is redeemed at most once: ``VoucherRedemption.voucher`` is unique, and the
  services consume a voucher with one conditional UPDATE (``status = 'active'``);
- a voucher's status and its timestamps agree (check constraints);
- a reward's stock never goes below zero (a positive integer column, decremented by a
  conditional UPDATE);
- a staff user has at most one open shift;
- every validation attempt is kept (``VoucherScan`` is append-only).

A voucher's code (``vouchers.services.codes``) carries no member information: the binding to the
member is the ``member`` column, and it travels to the till only inside the signed QR
token (``vouchers.services.tokens``).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from loyalty.kernel.append_only import AppendOnlyModel


def _when(moment) -> str:
    """A time for a name: in the programme's time zone (stored UTC, shown local)."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "—"


def _staff_name(user) -> str:
    """``Aminah Yusof (aminah)``, or the user name alone (as ``display.staff_label``)."""
    full = user.get_full_name()
    return f"{full} ({user.get_username()})" if full else user.get_username()


class Reward(models.Model):
    """An entry of the reward catalogue, managed by Program Administrators."""

    class Kind(models.TextChoices):
        FIXED_VALUE = "fixed_value", "Fixed value off"
        PERCENTAGE = "percentage", "Percentage off"
        FREE_ITEM = "free_item", "Free item"

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    value_minor = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fixed value: the amount off, in minor units (sen)."
    )
    percent = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Percentage: 1 to 100.")
    item = models.CharField(max_length=120, blank=True, help_text="Free item: what the member gets (SKU or name).")
    points_price = models.PositiveIntegerField(help_text="Points a member pays for one voucher.")
    valid_days = models.PositiveSmallIntegerField(default=30, help_text="A voucher expires this many days after issue.")
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)
    stock_remaining = models.PositiveIntegerField(
        null=True, blank=True, help_text="Vouchers that may still be issued; empty: unlimited."
    )
    min_tier = models.PositiveSmallIntegerField(default=1, help_text="Members of this tier and above may buy it.")
    per_member_limit = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Vouchers of this reward one member may hold in all; empty: no limit."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["points_price", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(points_price__gt=0), name="reward_points_price_positive"),
            models.CheckConstraint(condition=Q(valid_days__gt=0), name="reward_valid_days_positive"),
            models.CheckConstraint(
                condition=(
                    Q(kind="fixed_value", value_minor__gt=0, percent__isnull=True)
                    | Q(kind="percentage", percent__gte=1, percent__lte=100, value_minor__isnull=True)
                    | Q(kind="free_item", value_minor__isnull=True, percent__isnull=True) & ~Q(item="")
                ),
                name="reward_kind_fields",
            ),
            models.CheckConstraint(
                condition=Q(available_from__isnull=True)
                | Q(available_until__isnull=True)
                | Q(available_until__gt=models.F("available_from")),
                name="reward_availability_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.points_price} points)"


class Voucher(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REDEEMED = "redeemed", "Redeemed"
        REVOKED = "revoked", "Revoked by staff"
        REPORTED = "reported", "Reported lost or stolen"

    class Source(models.TextChoices):
        PURCHASE = "purchase", "Bought with points"
        GOODWILL = "goodwill", "Goodwill (staff)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=16, unique=True, editable=False, help_text="Normalised, without separators.")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="vouchers")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="vouchers")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    points_paid = models.PositiveIntegerField(default=0)
    # The ledger's redeem operation that paid for it (purchase); unique, so a replayed
    # purchase finds its voucher instead of issuing a second one.
    ledger_operation = models.OneToOneField(
        "loyalty.LedgerOperation", null=True, blank=True, on_delete=models.PROTECT, related_name="voucher"
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers_issued"
    )
    issue_reason = models.CharField(max_length=200, blank=True, help_text="Goodwill: why it was given.")
    # Goodwill: the issuing form's one-time submission id, so a form sent twice (a double
    # click, a resubmitted page) issues one voucher.
    issue_key = models.CharField(max_length=64, null=True, blank=True, editable=False)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers_revoked"
    )
    revoke_reason = models.CharField(max_length=200, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["member", "status", "-issued_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("issued_at")), name="voucher_expires_after_issue"
            ),
            models.CheckConstraint(
                condition=Q(status="redeemed", redeemed_at__isnull=False)
                | (~Q(status="redeemed") & Q(redeemed_at__isnull=True)),
                name="voucher_redeemed_status_agrees",
            ),
            models.CheckConstraint(
                condition=Q(status="revoked", revoked_at__isnull=False) | ~Q(status="revoked"),
                name="voucher_revoked_status_agrees",
            ),
            models.CheckConstraint(
                condition=Q(status="reported", reported_at__isnull=False) | ~Q(status="reported"),
                name="voucher_reported_status_agrees",
            ),
            models.CheckConstraint(
                condition=Q(source="purchase", points_paid__gt=0) | Q(source="goodwill", points_paid=0),
                name="voucher_source_points",
            ),
            models.UniqueConstraint(fields=["issued_by", "issue_key"], name="voucher_goodwill_issued_once_per_key"),
        ]
        permissions = [
            ("issue_goodwill_voucher", "Can issue goodwill vouchers"),
            ("revoke_voucher", "Can revoke vouchers"),
        ]

    def __str__(self) -> str:
        # Never the code: it is the bearer credential (with the member's QR token). Its
        # last group (with the check character) is what a member reads out to match it.
        return f"{self.reward.name} ••••-••••-••••-{self.code[-4:]}"


class StaffShift(models.Model):
    """A staff user clocked in at a store (and a till). While a shift is open, the staff
    user may not redeem to their own member account; till redemptions name the shift."""

    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="shifts")
    store = models.ForeignKey("loyalty.Store", on_delete=models.PROTECT, related_name="shifts")
    till = models.ForeignKey("loyalty.Till", null=True, blank=True, on_delete=models.PROTECT, related_name="shifts")
    # The bearer the till sends with the staff user's requests (SHA-256 only).
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["staff"], condition=Q(ended_at__isnull=True), name="one_open_shift_per_staff"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="shift_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        # "KL01/T1 shift of Aminah Yusof (aminah), 2026-12-04 09:00"
        where = str(self.till) if self.till_id else self.store.code
        return f"{where} shift of {_staff_name(self.staff)}, {_when(self.started_at)}"


class VoucherRedemption(models.Model):
    """The one redemption of a voucher (unique per voucher: the database refuses a second)."""

    voucher = models.OneToOneField(Voucher, on_delete=models.PROTECT, related_name="redemption")
    till = models.ForeignKey("loyalty.Till", on_delete=models.PROTECT, related_name="voucher_redemptions")
    store = models.ForeignKey("loyalty.Store", on_delete=models.PROTECT, related_name="voucher_redemptions")
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="voucher_redemptions"
    )
    shift = models.ForeignKey(StaffShift, null=True, blank=True, on_delete=models.PROTECT, related_name="redemptions")
    idempotency_key = models.CharField(max_length=128)
    redeemed_at = models.DateTimeField()
    receipt = models.JSONField(default=dict, help_text="What the till printed (no personal data).")

    class Meta:
        ordering = ["-redeemed_at"]
        # The cashier-frequency rule counts a staff member's recent redemptions.
        indexes = [models.Index(fields=["staff", "redeemed_at"])]
        constraints = [
            models.UniqueConstraint(fields=["till", "idempotency_key"], name="voucher_redemption_key_once_per_till")
        ]

    def __str__(self) -> str:
        return f"{self.voucher} redeemed at {self.till}, {_when(self.redeemed_at)}"


class VoucherScan(AppendOnlyModel):
    """One validation or redemption attempt at a till, whatever its result. Append-only."""

    class Action(models.TextChoices):
        VALIDATE = "validate", "Validate"
        REDEEM = "redeem", "Redeem"

    voucher = models.ForeignKey(Voucher, null=True, blank=True, on_delete=models.PROTECT, related_name="scans")
    till = models.ForeignKey("loyalty.Till", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("loyalty.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    result = models.CharField(max_length=40, help_text="ok, or the refusal's code.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["voucher", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.result.replace('_', ' ')}, {_when(self.created_at)}"


class RedemptionAudit(models.Model):
    """A till redemption (voucher or points) drawn at random for a Store Manager to review."""

    # Store-scoped (``loyalty.kernel.scoping.restrict``): a user sees the audits of their stores.
    store_scope_field = "store"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Awaiting review"
        CONFIRMED = "confirmed", "Confirmed in order"
        IRREGULAR = "irregular", "Irregular (escalated to the fraud team)"

    store = models.ForeignKey("loyalty.Store", on_delete=models.PROTECT, related_name="redemption_audits")
    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="redemption_audits"
    )
    voucher_redemption = models.OneToOneField(
        VoucherRedemption, null=True, blank=True, on_delete=models.PROTECT, related_name="audit"
    )
    ledger_operation = models.OneToOneField(
        "loyalty.LedgerOperation", null=True, blank=True, on_delete=models.PROTECT, related_name="redemption_audit"
    )
    points = models.PositiveIntegerField(default=0)
    sampled_at = models.DateTimeField(db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING, db_index=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-sampled_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(voucher_redemption__isnull=False) | Q(ledger_operation__isnull=False),
                name="redemption_audit_names_a_redemption",
            )
        ]
        permissions = [("review_redemptionaudit", "Can review sampled redemptions")]

    def __str__(self) -> str:
        what = f"{self.points:,} points" if self.ledger_operation_id else "a voucher"
        return f"{what} redeemed at {self.store.code}, sampled {_when(self.sampled_at)}"


class PendingRedemption(models.Model):
    """A redemption a till attempted while offline: never honoured offline, queued here
    for approval online; the member is told it awaits verification."""

    # Store-scoped (``loyalty.kernel.scoping.restrict``): a user decides the queue of their stores.
    store_scope_field = "store"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending online approval"
        APPROVED = "approved", "Approved and redeemed"
        REJECTED = "rejected", "Rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    till = models.ForeignKey("loyalty.Till", on_delete=models.PROTECT, related_name="pending_redemptions")
    store = models.ForeignKey("loyalty.Store", on_delete=models.PROTECT, related_name="pending_redemptions")
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="pending_redemptions")
    voucher = models.ForeignKey(Voucher, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    points = models.PositiveIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=128)
    attempted_at = models.DateTimeField(help_text="When the till attempted it (offline).")
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=200, blank=True)
    ledger_operation = models.OneToOneField(
        "loyalty.LedgerOperation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["till", "idempotency_key"], name="pending_redemption_key_once_per_till"),
            models.CheckConstraint(
                condition=Q(voucher__isnull=False, points__isnull=True) | Q(voucher__isnull=True, points__gt=0),
                name="pending_redemption_voucher_or_points",
            ),
        ]
        permissions = [("decide_pendingredemption", "Can approve or reject offline redemptions")]

    def __str__(self) -> str:
        what = f"{self.points:,} points" if self.points is not None else "a voucher"
        return f"offline redemption of {what} at {self.till}, {_when(self.attempted_at)}"


class TillRedemption(models.Model):
    """A points redemption at the till (``vouchers.services.till_points``): the ledger's hold, who
    took it on which shift, the member's authorisation and how the hold was settled.

    The ledger alone moves the points (``points_hold`` / ``points_capture`` /
    ``points_void``); this row holds the till-side controls. Invariants held here:
    one row per hold (``hold_operation`` is unique) and per till and Idempotency-Key;
    captured only once authorised (check constraint); captured and voided exclusive.
    ``receipt`` is what the till printed: no personal data (the loyalty number masked).
    """

    class Authorisation(models.TextChoices):
        SMS_CODE = "sms_code", "SMS code read to the cashier"
        APP = "app", "Confirmed in the member's app"

    hold_operation = models.OneToOneField(
        "loyalty.LedgerOperation", on_delete=models.PROTECT, related_name="till_redemption"
    )
    till = models.ForeignKey("loyalty.Till", on_delete=models.PROTECT, related_name="till_redemptions")
    store = models.ForeignKey("loyalty.Store", on_delete=models.PROTECT, related_name="till_redemptions")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="till_redemptions")
    shift = models.ForeignKey(StaffShift, on_delete=models.PROTECT, related_name="till_redemptions")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="till_redemptions")
    points = models.PositiveIntegerField(help_text="Points held.")
    idempotency_key = models.CharField(max_length=128)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The SMS challenge sent to the member for this hold (its code is never stored here).
    challenge_id = models.UUIDField(null=True, blank=True)
    # What the hold answered about authorisation (replayed with the hold).
    authorisation_offer = models.JSONField(default=dict, blank=True)
    authorised_via = models.CharField(max_length=10, choices=Authorisation.choices, blank=True)
    authorised_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    captured_at = models.DateTimeField(null=True, blank=True)
    capture_shift = models.ForeignKey(
        StaffShift, null=True, blank=True, on_delete=models.PROTECT, related_name="till_captures"
    )
    captured_points = models.PositiveIntegerField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    receipt = models.JSONField(default=dict, blank=True, help_text="What the till printed (no personal data).")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["staff", "captured_at"])]
        constraints = [
            models.UniqueConstraint(fields=["till", "idempotency_key"], name="till_redemption_key_once_per_till"),
            models.CheckConstraint(condition=Q(points__gt=0), name="till_redemption_points_positive"),
            models.CheckConstraint(
                condition=Q(authorised_at__isnull=True, authorised_via="")
                | (Q(authorised_at__isnull=False) & ~Q(authorised_via="")),
                name="till_redemption_authorisation_agrees",
            ),
            models.CheckConstraint(
                condition=Q(captured_at__isnull=True) | Q(authorised_at__isnull=False),
                name="till_redemption_captured_only_authorised",
            ),
            models.CheckConstraint(
                condition=Q(captured_at__isnull=True) | Q(voided_at__isnull=True),
                name="till_redemption_captured_or_voided",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points:,} points held at {self.till}, {_when(self.created_at)}"
