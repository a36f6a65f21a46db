"""The programme's places, its outbox and its job log: stores, tills, every message sent,
every background job run."""

from django.db import models
from django.db.models.functions import Upper


class Store(models.Model):
    """A retail store. Staff are assigned to stores; store-scoped roles see only theirs."""

    code = models.CharField(max_length=16, unique=True, help_text="Short store code, e.g. KL01.")
    name = models.CharField(max_length=120)
    region = models.CharField(max_length=80, blank=True, db_index=True)
    active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(Upper("code"), name="store_code_ci_unique"),
        ]
        permissions = [
            # Held by roles that work across all stores; without it a user sees only the
            # stores they are assigned to (see loyalty.kernel.scoping).
            ("view_all_stores", "Can see objects of every store"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Till(models.Model):
    """A point-of-sale terminal. It signs its requests with its own secret (HMAC-SHA256).

    The secret is stored encrypted (it must be readable to check signatures); an
    optional allow-list restricts the addresses the till may call from.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="tills")
    code = models.CharField(max_length=32, help_text="Till identifier, unique within the store.")
    key_id = models.CharField(max_length=40, unique=True, help_text="Public credential id sent by the till.")
    secret_encrypted = models.TextField(editable=False)
    allowed_ips = models.JSONField(default=list, blank=True, help_text="Addresses or networks; empty allows any.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["store__code", "code"]
        constraints = [models.UniqueConstraint(fields=["store", "code"], name="till_code_unique_per_store")]

    def __str__(self) -> str:
        return f"{self.store.code}/{self.code}"


class OutboundMessage(models.Model):
    """The outbox: every notification the programme sends, written in the same
    transaction as what it reports and delivered after commit by the configured
    backends (console in development, SMTP and the SMS gateway in production)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        PREFERRED = "preferred", "Member's preferred channel"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        HELD = "held", "Held (no address on file)"
        FAILED = "failed", "Failed"

    channel = models.CharField(max_length=12, choices=Channel.choices)
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="messages",
        help_text="The member addressed; their contact details are looked up at delivery, never stored here.",
    )  # fmt: skip
    to = models.CharField(max_length=254, blank=True, help_text="Staff or headquarters address.")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    topic = models.CharField(max_length=40, db_index=True, help_text="What the message is about, e.g. adjustment.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(member__isnull=False) | ~models.Q(to=""), name="message_has_a_recipient"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.subject}"


class JobRun(models.Model):
    """One run of a background job (a Celery task), written by the worker when the run
    ends (``loyalty.kernel.jobs``): which task, which schedule started it (if any), when,
    and how it ended. Holds no arguments, results or error messages (they may hold
    personal data): a failure keeps only the exception's class name."""

    class State(models.TextChoices):
        SUCCESS = "success", "Succeeded"
        FAILURE = "failure", "Failed"
        RETRY = "retry", "Failed, retrying"

    task_name = models.CharField(max_length=200, help_text="The registered task name.")
    periodic_task_name = models.CharField(
        max_length=200, blank=True, help_text="The schedule (django-celery-beat) that started the run, if any."
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices)
    error = models.CharField(max_length=200, blank=True, help_text="The exception's class name, never its message.")

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [
            models.Index(fields=["task_name", "-finished_at"], name="jobrun_task_latest"),
            models.Index(fields=["periodic_task_name", "-finished_at"], name="jobrun_schedule_latest"),
            models.Index(fields=["state", "-finished_at"], name="jobrun_state_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} ({self.get_state_display()})"
