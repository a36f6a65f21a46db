"""The points ledger's tables: accounts, balances, operations, the journal, lots."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from loyalty.kernel.append_only import AppendOnlyModel
from loyalty.kernel.models import Store, Till

# --- The points ledger ------------------------------------------------------------------------
#
# A double-entry journal (Transfer) between accounts, after TigerBeetle and LEDGER.md:
# one points account per member plus system accounts. Only a member's balance row is
# ever locked; system accounts have no balance row (their balance is a sum over the
# journal), so they never become a hot row that every request queues behind.
#
# Deviation from LEDGER.md: one expiry lot per earning transfer rather than one per
# member per expiry date, so that every redeemed or expired point traces back to the
# exact purchase that earned it (the issue asks for that). FEFO orders lots by
# (expires_on, id).


class Account(models.Model):
    class Kind(models.TextChoices):
        MEMBER = "member", "Member"
        EARN = "earn", "Issued (earned points)"
        REDEEM = "redeem", "Redeemed"
        EXPIRE = "expire", "Expired"
        ADJUST = "adjust", "Adjustments"
        RETURN_SHORTFALL = "return_shortfall", "Return shortfall"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    member = models.OneToOneField(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="points_account"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="member", member__isnull=False)
                | (~models.Q(kind="member") & models.Q(member__isnull=True)),
                name="account_member_iff_member_kind",
            ),
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(member__isnull=True), name="one_system_account_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"member {self.member}" if self.member_id else self.get_kind_display()


class MemberBalance(models.Model):
    """The cached counters of a member's account: the only row the write path locks.

    available = credits_posted - debits_posted - debits_pending, and the database
    refuses any write that would make it negative.
    """

    account = models.OneToOneField(Account, primary_key=True, on_delete=models.PROTECT, related_name="balance")
    credits_posted = models.BigIntegerField(default=0)
    debits_posted = models.BigIntegerField(default=0)
    debits_pending = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(credits_posted__gte=0), name="balance_credits_posted_nonneg"),
            models.CheckConstraint(condition=models.Q(debits_posted__gte=0), name="balance_debits_posted_nonneg"),
            models.CheckConstraint(condition=models.Q(debits_pending__gte=0), name="balance_debits_pending_nonneg"),
            models.CheckConstraint(
                condition=models.Q(credits_posted__gte=models.F("debits_posted") + models.F("debits_pending")),
                name="balance_no_overdraw",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.available} points"

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


class LedgerOperation(models.Model):
    """One business operation (earn, return, hold, capture, ...): the audit event.

    Records who did it (staff user, till, member or job) and where (store). Its
    transfers are the journal legs; its receipt reference makes a purchase earn once.
    """

    class Kind(models.TextChoices):
        EARN = "earn", "Earn"
        RELEASE = "release", "Pending points released"
        REVERSE_EARN = "reverse_earn", "Return (earn reversed)"
        HOLD = "hold", "Redemption hold"
        CAPTURE = "capture", "Redemption capture"
        VOID = "void", "Redemption void"
        REDEEM = "redeem", "Redeem"
        REVERSE_REDEEM = "reverse_redeem", "Refund of a redemption"
        EXPIRE = "expire", "Expiry"
        ADJUST = "adjust", "Adjustment"

    id = models.UUIDField(primary_key=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="ledger_operations")
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_operations")
    points = models.BigIntegerField(help_text="Points moved by the operation (positive).")
    actor_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_operations"
    )
    actor_till = models.ForeignKey(
        Till, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_operations"
    )
    actor_member = models.BooleanField(default=False, help_text="The member acted themselves (member API).")
    actor_job = models.CharField(max_length=80, blank=True, help_text="Scheduled job that acted, if any.")
    receipt_ref = models.CharField(max_length=120, null=True, blank=True, help_text="store/till/receipt of a purchase.")
    amount_minor = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="For earns: the purchase amount (minor units), so returns by amount are exact; "
        "for returns: the returned amount when the till gave it.",
    )
    related = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="followups",
        help_text="The earn a return reverses, the hold a capture settles, the redemption a refund reverses.",
    )  # fmt: skip
    reason = models.CharField(max_length=200, blank=True)
    hold_expires_at = models.DateTimeField(null=True, blank=True, help_text="For holds: when an unsettled hold lapses.")
    pending_until = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="For earns kept pending through the return window: when the points are released.",
    )  # fmt: skip
    needs_review = models.BooleanField(default=False, help_text="Flagged for review (e.g. a return shortfall).")
    # Till data of purchases and returns, for the return detectors (FRAUD.md, "Till data").
    # Only keyed hashes (``loyalty.ledger.tilldata``): never a SKU or a payment token as
    # sent. On the operation row itself, so the earn stays one INSERT and the return reads
    # the purchase's tender with the purchase it already reads.
    item_lines = models.JSONField(
        null=True, blank=True,
        help_text='Item lines from the till: [{"sku_hash", "qty", "amount_minor"}] (SKUs as keyed hashes).',
    )  # fmt: skip
    # A database default too: writers that name their columns (COPY, raw INSERTs) need not name it.
    tender_hash = models.CharField(
        max_length=64, blank=True, default="", db_default="",
        help_text="HMAC of the payment processor's tender token (never the token, never a card number).",
    )  # fmt: skip
    receipt_presented = models.BooleanField(
        null=True, blank=True, help_text="For returns: whether the original receipt was shown (None: not said)."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["receipt_ref"], condition=models.Q(kind="earn"), name="earn_receipt_once"),
            # A hold settles once: one capture or one void.
            models.UniqueConstraint(
                fields=["related"], condition=models.Q(kind__in=["capture", "void"]), name="hold_settles_once"
            ),
            models.UniqueConstraint(
                fields=["related"], condition=models.Q(kind="release"), name="pending_earn_released_once"
            ),
            models.CheckConstraint(condition=models.Q(points__gt=0), name="operation_points_positive"),
            models.CheckConstraint(
                condition=models.Q(actor_staff__isnull=False)
                | models.Q(actor_till__isnull=False)
                | models.Q(actor_member=True)
                | ~models.Q(actor_job=""),
                name="operation_has_an_actor",
            ),
        ]
        indexes = [models.Index(fields=["member", "-created_at"]), models.Index(fields=["store", "-created_at"])]

    def __str__(self) -> str:
        # What, how much and when (the programme's time zone), never the UUID: it titles
        # the journal's page (as ``loyalty.workplace.display.operation_label``).
        when = f", {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}" if self.created_at else ""
        return f"{self.get_kind_display()} of {self.points:,} points{when}"


class Transfer(AppendOnlyModel):
    """A journal leg: ``amount`` points from ``debit_account`` to ``credit_account``.

    Append-only: a PostgreSQL trigger refuses UPDATE and DELETE (Python refuses them
    too, for SQLite runs). Corrections are new, compensating transfers.
    """

    class Kind(models.TextChoices):
        EARN = "earn", "Earn"
        REVERSE_EARN = "reverse_earn", "Reverse earn"
        RETURN_SHORTFALL = "return_shortfall", "Return shortfall"
        HOLD = "hold", "Hold (pending)"
        POST = "post", "Post a hold"
        VOID = "void", "Void a hold"
        REDEEM = "redeem", "Redeem"
        REVERSE_REDEEM = "reverse_redeem", "Reverse redeem"
        EXPIRE = "expire", "Expire"
        ADJUST = "adjust", "Adjust"

    id = models.UUIDField(primary_key=True)
    operation = models.ForeignKey(LedgerOperation, on_delete=models.PROTECT, related_name="transfers")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="debits")
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credits")
    amount = models.BigIntegerField()
    pending = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resolutions",
        help_text="For post/void: the hold it resolves.",
    )  # fmt: skip
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals",
        help_text="For reversals: the transfer reversed.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=~models.Q(debit_account=models.F("credit_account")), name="transfer_accounts_differ"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["post", "void"], pending__isnull=False)
                | (~models.Q(kind__in=["post", "void"]) & models.Q(pending__isnull=True)),
                name="transfer_pending_iff_post_or_void",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


# Transfers that move posted points (holds are pending; voids only release a hold).
POSTED_KINDS = [
    Transfer.Kind.EARN,
    Transfer.Kind.REVERSE_EARN,
    Transfer.Kind.RETURN_SHORTFALL,
    Transfer.Kind.POST,
    Transfer.Kind.REDEEM,
    Transfer.Kind.REVERSE_REDEEM,
    Transfer.Kind.EXPIRE,
    Transfer.Kind.ADJUST,
]


class PointsLot(models.Model):
    """Points earned by one transfer, with their expiry date. ``remaining`` is spent
    earliest-expiring first (FEFO); every change is a LotMovement."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots")
    source = models.OneToOneField(Transfer, on_delete=models.PROTECT, related_name="lot")
    expires_on = models.DateField(db_index=True)
    earned = models.BigIntegerField()
    remaining = models.BigIntegerField()

    class Meta:
        ordering = ["expires_on", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(earned__gt=0), name="lot_earned_positive"),
            models.CheckConstraint(
                condition=models.Q(remaining__gte=0, remaining__lte=models.F("earned")), name="lot_remaining_in_range"
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_on", "id"], condition=models.Q(remaining__gt=0), name="lot_fefo_open"
            ),
            models.Index(fields=["expires_on"], condition=models.Q(remaining__gt=0), name="lot_expiry_open"),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.earned} expiring {self.expires_on}"


class LotMovement(AppendOnlyModel):
    """How a transfer changed a lot: negative when points left it, positive when they
    came back (a void, a refund). Append-only."""

    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="lot_movements")
    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, related_name="movements")
    delta = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transfer", "lot"], name="lot_movement_once"),
            models.CheckConstraint(condition=~models.Q(delta=0), name="lot_movement_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d}"


class IdempotencyKey(models.Model):
    """The saved outcome of a write, per (scope, key): a replay returns it unchanged.

    ``request_hash`` is a SHA-256 of the canonical request; the same key with another
    payload is refused. Refusals are saved too, so a retry never changes the outcome.
    """

    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=128)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique"),
            models.CheckConstraint(condition=~models.Q(key=""), name="idempotency_key_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class LedgerRefusalEvent(AppendOnlyModel):
    """A refused earn or return, as the fraud detectors read it (FRAUD.md rows 1, 3, 13).

    Written once per refusal first answered (never for a replay), after the ledger's
    transaction, in its own (``loyalty.ledger.operations``): a refusal record stands
    whatever became of the transaction that refused. Ids, codes and counts only: no
    receipt reference, no loyalty number, nothing the till typed. Append-only.
    """

    class Kind(models.TextChoices):
        EARN = "earn", "Earn"
        REVERSE_EARN = "reverse_earn", "Return"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    code = models.CharField(max_length=60, help_text="The refusal's stable code, e.g. purchase_not_found.")
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_refusals"
    )
    actor_till = models.ForeignKey(
        Till, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_refusals"
    )
    actor_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_refusals"
    )
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_refusals")
    facts = models.JSONField(default=dict, blank=True, help_text="The refusal's numeric facts (counts, limits).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["actor_till", "created_at"], name="refusal_till_time"),
            models.Index(fields=["member", "created_at"], name="refusal_member_time"),
            models.Index(fields=["code", "created_at"], name="refusal_code_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} refused: {self.code}"
