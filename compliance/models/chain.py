"""Tamper-evident logs (COMPLIANCE.md §3): the chain's heads, links, queue, purge records and
anchors. Links, purge records and anchors are append-only (triggers in migration 0001_chain)."""

from __future__ import annotations

from django.db import models

from loyalty.kernel.append_only import AppendOnlyModel


class ChainHead(models.Model):
    """The newest link of one stream: ``UPDATE ... SET seq = seq + 1 RETURNING`` row-locks it
    until commit, so sequence numbers follow commit order without gaps."""

    stream = models.CharField(max_length=40, primary_key=True)
    seq = models.BigIntegerField(default=0)
    chain = models.BinaryField(default=bytes(32))
    last_verified_at = models.DateTimeField(null=True, blank=True)
    last_verified_ok = models.BooleanField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.stream} at {self.seq}"


class ChainLink(AppendOnlyModel):
    """One link ``(stream, seq, ref, key_id, mac, chain)``: ``mac`` covers the row's canonical
    form, ``chain = SHA-256(previous chain || be64(seq) || mac)``."""

    stream = models.CharField(max_length=40)
    seq = models.BigIntegerField()
    ref = models.CharField(max_length=64)
    key_id = models.CharField(max_length=20)
    mac = models.BinaryField()
    chain = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="chain_link_seq_once"),
            models.UniqueConstraint(fields=["stream", "ref"], name="chain_link_ref_once"),
        ]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq}"


class ChainQueue(models.Model):
    """A queued stream's entry waiting for the sealer (the ledger's hot path inserts one row)."""

    stream = models.CharField(max_length=40)
    ref = models.CharField(max_length=64)
    queued_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stream} {self.ref} (queued)"


class ChainPurge(AppendOnlyModel):
    """A signed record that some linked rows were purged: their seq range, count, their refs
    (newline-separated, in seq order: pseudonymous primary keys) and the SHA-256 of those refs,
    which the signature covers, so verification accepts exactly those rows missing."""

    stream = models.CharField(max_length=40)
    seq_first = models.BigIntegerField()
    seq_last = models.BigIntegerField()
    count = models.IntegerField()
    refs_sha256 = models.CharField(max_length=64)
    refs = models.TextField(default="")
    key_id = models.CharField(max_length=20)
    mac = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stream} purge {self.seq_first}..{self.seq_last} ({self.count})"


class ChainCheckpoint(AppendOnlyModel):
    """A signed checkpoint ``(stream, seq, chain)``: verification may start here, so the links
    before it may later be cut."""

    stream = models.CharField(max_length=40)
    seq = models.BigIntegerField()
    chain = models.BinaryField()
    key_id = models.CharField(max_length=20)
    mac = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stream} checkpoint at {self.seq}"


class ChainAnchor(AppendOnlyModel):
    """An Ed25519-signed statement of every stream's head, linked to the previous anchor."""

    body = models.TextField(help_text="Canonical JSON: heads, time, prev_anchor_hash.")
    signature = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"anchor {self.created_at:%Y-%m-%d %H:%M}"


class ChainRotation(AppendOnlyModel):
    """A chain key's introduction: at the stream's head ``(seq, chain)`` the key ``key_id``
    takes over from ``prev_key_id``. ``mac_prev`` (under the previous key) proves a holder of
    that key introduced the new one; ``mac_new`` proves the new key's holder took it up.
    Verification accepts links under ``key_id`` only after ``seq`` (``manage.py rotate_chain_key``)."""

    stream = models.CharField(max_length=40)
    seq = models.BigIntegerField()
    chain = models.BinaryField()
    key_id = models.CharField(max_length=20)
    prev_key_id = models.CharField(max_length=20)
    mac_prev = models.BinaryField()
    mac_new = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "key_id"], name="chain_rotation_key_once")]

    def __str__(self) -> str:
        return f"{self.stream}: key {self.key_id} after {self.prev_key_id} at {self.seq}"
