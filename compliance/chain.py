"""Keyed hash chains over the records of what happened (COMPLIANCE.md §3).

Each stream's rows get one link ``(stream, seq, ref, key_id, mac, chain)``::

    mac_n   = HMAC-SHA256(K[key_id], "chain/2" || stream || ref || be64(n) || canonical(row))
    chain_n = SHA-256(chain_{n-1} || be64(n) || mac_n)

The MAC binds the row to its position ``n`` (chain/1 did not): the chain function is unkeyed, so
whoever can write the tables can recompute every chain value; with the position under the key, a
reordered, removed or inserted link fails its MAC even when the chain after it was recomputed
(tests/compliance/test_chain_tamper_all.py).

The key never enters the database. Sync streams append with TWO statements: an upsert of the
stream's head (``ON CONFLICT ... DO UPDATE SET seq = h.seq RETURNING seq, chain``: created by the
first append) row-locks it and reads its position, Python computes the MAC for ``seq + 1``, and
one CTE moves the head and inserts the link. The head's row lock is held until commit, so seq
follows commit order without gaps. They must be the last statements of the writer's transaction (a ``post_save`` receiver runs right after the
row's INSERT, which is the last write of every hooked service). Queued streams (the ledger)
insert into ``chain_queue`` instead (the ledger: an AFTER INSERT trigger on
the ledger's operations table, since its hot path writes in one CTE without ``post_save``); ``seal_queue`` links them in id order under an advisory
lock.

Hooking: lower layers (staffauth, members, ledger, vouchers, adjustments) may not import
compliance (import-linter ``direction`` contract), so ``compliance.apps.ready()`` connects
``post_save`` receivers (``created=True``, same connection and transaction as the INSERT)
that make the single call ``chain_append(stream, instance)``. Signals keep the dependency
direction without a kernel registry: the apps below know nothing about chaining.

Canonical form: versioned per-stream field lists (``STREAMS``; immutable columns only), JSON
with sorted keys and no spaces, datetimes in UTC formatted in Python
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``), Decimals and UUIDs as strings, foreign keys as their ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction

VERSION = b"chain/2"
ZERO = bytes(32)


@dataclass(frozen=True)
class Stream:
    name: str
    model: str  # app_label.ModelName
    fields: tuple[str, ...]
    version: int = 1
    queued: bool = False

    def model_class(self) -> type[models.Model]:
        return apps.get_model(self.model)


# Versioned field lists: only columns that never change after the INSERT.
STREAMS: dict[str, Stream] = {
    s.name: s
    for s in (
        Stream(
            "security",
            "staffauth.SecurityEvent",
            ("id", "kind", "created_at", "actor", "subject", "username", "ip_address", "user_agent", "detail"),
        ),
        Stream(
            "member-security", "members.MemberSecurityEvent", ("id", "member", "kind", "detail", "ip", "created_at")
        ),
        Stream("access", "members.MemberPiiAccess", ("id", "member", "staff", "field", "accessed_at")),
        Stream(
            "consent",
            "members.ConsentRecord",
            ("id", "member", "purpose", "granted", "version", "source", "session_id", "created_at"),
        ),
        Stream(
            "adjustments",
            "loyalty.AdjustmentEvent",
            ("id", "request", "kind", "actor", "actor_job", "comment", "created_at"),
        ),
        Stream(
            "vouchers",
            "vouchers.VoucherRedemption",
            # not ``receipt``: the redemption service writes it right after the INSERT (it
            # names the redemption's id), so it is a rendering of these facts, not one of them
            ("id", "voucher", "till", "store", "staff", "shift", "idempotency_key", "redeemed_at"),
        ),
        Stream(
            "audit", "auditlog.LogEntry", ("id", "content_type", "object_pk", "action", "changes", "actor", "timestamp")
        ),
        Stream(
            "ledger",
            "loyalty.LedgerOperation",
            (
                "id",
                "kind",
                "member",
                "store",
                "points",
                "actor_staff",
                "actor_till",
                "actor_member",
                "actor_job",
                "receipt_ref",
                "amount_minor",
                "related",
                "reason",
                "hold_expires_at",
                "created_at",
            ),
            queued=True,
        ),
    )
}


# --- keys ------------------------------------------------------------------------------------


def keys() -> list[tuple[str, bytes]]:
    """``AUDIT_CHAIN_KEYS`` (newest first, ``id:secret`` pairs) or ``AUDIT_CHAIN_KEY`` as "k0"."""
    configured = getattr(settings, "AUDIT_CHAIN_KEYS", None) or []
    if configured:
        return [(kid, secret.encode() if isinstance(secret, str) else secret) for kid, secret in configured]
    return [("k0", settings.AUDIT_CHAIN_KEY.encode())]


def _key(key_id: str) -> bytes | None:
    return dict(keys()).get(key_id)


# --- canonical form --------------------------------------------------------------------------


def canonical_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): canonical_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_value(v) for v in value]
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def _fields(stream: Stream) -> list[models.Field]:
    model = stream.model_class()
    return [model._meta.get_field(name) for name in stream.fields]  # type: ignore[misc]


def canonical(stream: Stream, instance: models.Model) -> bytes:
    row = {"v": stream.version}
    for f in _fields(stream):
        value = getattr(instance, f.attname)
        if value is not None and not f.is_relation and not isinstance(f, models.JSONField):
            value = f.to_python(value)  # as read back (an int given to a CharField is text)
        row[f.name] = canonical_value(value)
    if stream.name == "ledger":
        # the operation's legs (sorted by id) and their lot movements: a header or leg edit
        # that keeps every sum balanced still changes the MAC
        legs = []
        for t in instance.transfers.order_by("id"):  # type: ignore[attr-defined]
            legs.append(
                {
                    "id": str(t.id),
                    "kind": t.kind,
                    "debit": t.debit_account_id,
                    "credit": t.credit_account_id,
                    "amount": t.amount,
                    "pending": canonical_value(t.pending_id),
                    "reverses": canonical_value(t.reverses_id),
                    "lots": sorted([m.lot_id, m.delta] for m in t.lot_movements.all()),
                }
            )
        row["legs"] = legs
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_mac(stream: Stream, ref: str, seq: int, instance: models.Model, key: bytes) -> bytes:
    """The link's MAC: the row's canonical form at position ``seq`` of its stream."""
    message = b"|".join(
        (VERSION, stream.name.encode(), ref.encode(), seq.to_bytes(8, "big"), canonical(stream, instance))
    )
    return hmac.new(key, message, hashlib.sha256).digest()


def next_chain(previous: bytes, seq: int, mac: bytes) -> bytes:
    return hashlib.sha256(previous + seq.to_bytes(8, "big") + mac).digest()


def _sign(key: bytes, *parts: Any) -> bytes:
    return hmac.new(
        key, json.dumps([canonical_value(p) for p in parts], separators=(",", ":")).encode(), hashlib.sha256
    ).digest()


# --- appending -------------------------------------------------------------------------------

# Lock the stream's head (created by the first append) and read its position.
_HEAD_SQL = """
INSERT INTO compliance_chainhead AS h (stream, seq, chain) VALUES (%(stream)s, 0, %(zero)s)
ON CONFLICT (stream) DO UPDATE SET seq = h.seq
RETURNING seq, chain
"""
# Move the head and insert the link (the head's row lock is already held).
_APPEND_SQL = """
WITH head AS (
    UPDATE compliance_chainhead SET seq = %(seq)s, chain = %(chain)s WHERE stream = %(stream)s RETURNING seq
)
INSERT INTO compliance_chainlink (stream, seq, ref, key_id, mac, chain)
SELECT %(stream)s, head.seq, %(ref)s, %(key_id)s, %(mac)s, %(chain)s FROM head
"""


def chain_append(stream_name: str, instance: models.Model) -> None:
    """Link one freshly inserted row, in the writer's transaction.

    Sync streams: lock and read the head, then the head's UPDATE and the link's INSERT in one
    CTE. Queued streams: one INSERT into ``chain_queue`` (the sealer MACs the row).
    """
    stream = STREAMS[stream_name]
    ref = str(instance.pk)
    from django.db import connections

    using = instance._state.db or "default"
    # the head's lock must span reading the position and writing the link: a writer in
    # autocommit (no transaction of its own) gets one here; inside one, nothing is added
    # (no savepoint: the link commits or rolls back with its row)
    with transaction.atomic(using=using, savepoint=False), connections[using].cursor() as cursor:
        if stream.queued:
            # the operation's legs are written after its header: the sealer MACs the committed
            # operation with its legs (the queue row commits or rolls back with it)
            cursor.execute(
                "INSERT INTO compliance_chainqueue (stream, ref, queued_at) VALUES (%s, %s, now())", [stream.name, ref]
            )
            return
        key_id, key = keys()[0]
        if cursor.db.vendor != "postgresql":
            _append_serialised(cursor, stream, ref, key_id, key, instance)
            return
        cursor.execute(_HEAD_SQL, {"stream": stream.name, "zero": ZERO})
        seq, previous = cursor.fetchone()
        seq += 1
        mac = compute_mac(stream, ref, seq, instance, key)
        chain = next_chain(bytes(previous), seq, mac)
        cursor.execute(
            _APPEND_SQL, {"stream": stream.name, "seq": seq, "ref": ref, "key_id": key_id, "mac": mac, "chain": chain}
        )


def _append_serialised(cursor: Any, spec: Stream, ref: str, key_id: str, key: bytes, instance: models.Model) -> None:
    """The embedded (SQLite) first run's append: SQLite has one writer at a time, so the head
    read after the first write of the transaction (``INSERT OR IGNORE``/``UPDATE`` take the
    write lock) cannot move under us; five statements instead of PostgreSQL's two."""
    stream = spec.name
    cursor.execute(
        "INSERT INTO compliance_chainhead (stream, seq, chain) VALUES (%s, 0, %s) ON CONFLICT DO NOTHING",
        [stream, ZERO],
    )
    cursor.execute("UPDATE compliance_chainhead SET seq = seq + 1 WHERE stream = %s", [stream])
    cursor.execute("SELECT seq, chain FROM compliance_chainhead WHERE stream = %s", [stream])
    seq, previous = cursor.fetchone()
    mac = compute_mac(spec, ref, seq, instance, key)
    chain = next_chain(bytes(previous), seq, mac)
    cursor.execute("UPDATE compliance_chainhead SET chain = %s WHERE stream = %s", [chain, stream])
    cursor.execute(
        "INSERT INTO compliance_chainlink (stream, seq, ref, key_id, mac, chain) VALUES (%s, %s, %s, %s, %s, %s)",
        [stream, seq, ref, key_id, mac, chain],
    )


SEALER_LOCK = 0x636861696E  # "chain"


def seal_queue(*, limit: int = 10_000) -> int:
    """Link queued entries in id order (one sealer at a time: ``pg_try_advisory_xact_lock``).
    Returns how many were sealed (0 when another sealer holds the lock)."""
    sealed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        postgresql = connection.vendor == "postgresql"  # SQLite (first run): one writer anyway
        if postgresql:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        cursor.execute(
            "SELECT id, stream, ref FROM compliance_chainqueue ORDER BY id LIMIT %s"  # noqa: S608 (constants)
            + (" FOR UPDATE" if postgresql else ""),
            [limit],
        )
        rows = cursor.fetchall()
        heads: dict[str, tuple[int, bytes]] = {}
        key_id, key = keys()[0]
        for _id, stream, ref in rows:
            spec = STREAMS[stream]
            instance = spec.model_class()._default_manager.filter(pk=ref).first()
            if instance is None:
                raise RuntimeError(f"queued row of stream {stream!r} is missing: sealing stops")
            if stream not in heads:
                cursor.execute(
                    "INSERT INTO compliance_chainhead (stream, seq, chain) VALUES (%s, 0, %s) ON CONFLICT DO NOTHING",
                    [stream, ZERO],
                )
                cursor.execute(
                    "SELECT seq, chain FROM compliance_chainhead WHERE stream = %s"  # noqa: S608 (constants)
                    + (" FOR UPDATE" if postgresql else ""),
                    [stream],
                )
                seq, chain = cursor.fetchone()
                heads[stream] = (seq, bytes(chain))
            seq, chain = heads[stream]
            seq += 1
            mac = compute_mac(spec, ref, seq, instance, key)
            chain = next_chain(chain, seq, mac)
            cursor.execute(
                "INSERT INTO compliance_chainlink (stream, seq, ref, key_id, mac, chain) VALUES (%s, %s, %s, %s, %s, %s)",
                [stream, seq, ref, key_id, mac, chain],
            )
            heads[stream] = (seq, chain)
            sealed += 1
        for stream, (seq, chain) in heads.items():
            cursor.execute(
                "UPDATE compliance_chainhead SET seq = %s, chain = %s WHERE stream = %s", [seq, chain, stream]
            )
        if rows:
            cursor.execute("DELETE FROM compliance_chainqueue WHERE id <= %s", [rows[-1][0]])
    return sealed


def unsealed_older_than(minutes: int = 5) -> int:
    from compliance.models import ChainQueue

    return ChainQueue.objects.filter(queued_at__lt=_now() - dt.timedelta(minutes=minutes)).count()


# --- purge records and checkpoints -----------------------------------------------------------


def _refs_sha256(refs: list[str]) -> str:
    return hashlib.sha256("\n".join(refs).encode()).hexdigest()


def purge_record(stream_name: str, refs: list[str] | list[Any]) -> Any:
    """Record, signed, that the rows ``refs`` (primary keys) of ``stream_name`` are purged.

    Contract (for the retention purge): call it in the SAME transaction as the DELETE of those
    rows, with every ref the purge deletes (holds excluded: rows kept keep their links). Every
    ref must already be linked (queued streams: sealed). The record stores the seq range of
    their links, their count and SHA-256 of their refs joined by newlines in seq order;
    verification then accepts exactly that set of rows missing within the range (a row of the
    range not named, or a named row still present, fails). Links are never deleted here.
    """
    from compliance.models import ChainLink, ChainPurge

    wanted = {str(r) for r in refs}
    links = list(ChainLink.objects.filter(stream=stream_name, ref__in=wanted).order_by("seq").values_list("seq", "ref"))
    if len(links) != len(wanted):
        raise ValueError(f"{len(wanted) - len(links)} ref(s) are not linked in stream {stream_name!r}")
    if not links:
        raise ValueError("nothing to purge")
    ordered = [ref for _seq, ref in links]
    key_id, key = keys()[0]
    first, last, digest = links[0][0], links[-1][0], _refs_sha256(ordered)
    mac = _sign(key, "purge", stream_name, first, last, len(ordered), digest)
    return ChainPurge.objects.create(
        stream=stream_name,
        seq_first=first,
        seq_last=last,
        count=len(ordered),
        refs_sha256=digest,
        refs="\n".join(ordered),
        key_id=key_id,
        mac=mac,
    )


def checkpoint(stream_name: str) -> Any:
    """A signed checkpoint at the stream's verified head (verify first: a checkpoint is trusted)."""
    from compliance.models import ChainCheckpoint, ChainHead

    head = ChainHead.objects.get(stream=stream_name)
    key_id, key = keys()[0]
    chain = bytes(head.chain)
    return ChainCheckpoint.objects.create(
        stream=stream_name,
        seq=head.seq,
        chain=chain,
        key_id=key_id,
        mac=_sign(key, "checkpoint", stream_name, head.seq, chain),
    )


def _rotation_message(stream: str, seq: int, chain: bytes, key_id: str, prev_key_id: str) -> tuple[Any, ...]:
    return ("rotation", stream, seq, chain, key_id, prev_key_id)


class RotationRefused(ValueError):
    """A key rotation that cannot be recorded (``code``: stable, for the command's message)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def rotate(new_key_id: str) -> list[Any]:
    """Record, for every stream, that ``new_key_id`` takes over at the stream's head.

    Both keys must be configured (``AUDIT_CHAIN_KEYS``). The previous key is the key of the
    stream's last link (an empty stream: the newest configured key other than the new one).
    Each record is MAC'd under the previous key (a holder of it introduced the new key) and
    under the new one, at the head read under its row lock (no append slips in between).
    Streams already rotated to ``new_key_id`` are skipped: running it twice is harmless.
    Returns the records written."""
    from compliance.models import ChainHead, ChainLink, ChainRotation

    configured = dict(keys())
    new_key = configured.get(new_key_id)
    if new_key is None:
        raise RotationRefused("key_not_configured", f"{new_key_id!r} is not in AUDIT_CHAIN_KEYS")
    others = [kid for kid, _secret in keys() if kid != new_key_id]
    written = []
    with transaction.atomic():
        for name in STREAMS:
            if ChainRotation.objects.filter(stream=name, key_id=new_key_id).exists():
                continue
            ChainHead.objects.get_or_create(stream=name, defaults={"seq": 0, "chain": ZERO})
            head = ChainHead.objects.select_for_update().get(stream=name)
            last = ChainLink.objects.filter(stream=name, seq=head.seq).values_list("key_id", flat=True).first()
            prev_key_id = last or (others[0] if others else None)
            if prev_key_id is None or prev_key_id not in configured:
                raise RotationRefused(
                    "previous_key_not_configured", f"stream {name!r}: the previous key must stay in AUDIT_CHAIN_KEYS"
                )
            if prev_key_id == new_key_id:
                raise RotationRefused(
                    "key_already_in_use",
                    f"stream {name!r} already has links under {new_key_id!r}: rotate before making it the newest key",
                )
            chain = bytes(head.chain)
            message = _rotation_message(name, head.seq, chain, new_key_id, prev_key_id)
            written.append(
                ChainRotation.objects.create(
                    stream=name,
                    seq=head.seq,
                    chain=chain,
                    key_id=new_key_id,
                    prev_key_id=prev_key_id,
                    mac_prev=_sign(configured[prev_key_id], *message),
                    mac_new=_sign(new_key, *message),
                )
            )
    return written


def _rotation_valid(rotation: Any) -> bool:
    prev, new = _key(rotation.prev_key_id), _key(rotation.key_id)
    if prev is None or new is None:
        return False
    message = _rotation_message(
        rotation.stream, rotation.seq, bytes(rotation.chain), rotation.key_id, rotation.prev_key_id
    )
    return hmac.compare_digest(bytes(rotation.mac_prev), _sign(prev, *message)) and hmac.compare_digest(
        bytes(rotation.mac_new), _sign(new, *message)
    )


# --- verification ----------------------------------------------------------------------------


@dataclass
class StreamResult:
    stream: str
    links: int = 0
    head: int = 0
    first_broken: int | None = None
    problem: str = ""
    seconds: float = 0.0  # how long verifying the stream took

    @property
    def ok(self) -> bool:
        return self.first_broken is None

    def fail(self, seq: int, problem: str) -> None:
        if self.first_broken is None or seq < self.first_broken:
            self.first_broken, self.problem = seq, problem


@dataclass
class Verification:
    streams: list[StreamResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.streams)


def _ref_key(ref: str) -> tuple[int, Any]:
    return (0, int(ref)) if ref.isdigit() else (1, ref)


VERIFY_CHUNK = 2000


def verify_stream(
    stream_name: str, *, anchor_seq: int | None = None, pins: list[tuple[int, bytes]] | tuple = ()
) -> StreamResult:
    """Recompute one stream from its last trusted checkpoint: chains, MACs, coverage, purges.
    Reports the first broken seq (never row content). Reads the links in chunks of
    ``VERIFY_CHUNK`` with their rows, so memory holds one chunk plus the refs seen.

    ``anchor_seq``: the head must reach it. ``pins``: anchored ``(seq, chain)`` heads (signed
    outside this check): the head must reach each, and the chain there must be the anchored
    one (a tail cut and then written over by new links reaches the seq with another chain)."""
    from compliance.models import ChainCheckpoint, ChainHead, ChainLink, ChainPurge, ChainRotation

    stream = STREAMS[stream_name]
    result = StreamResult(stream_name)
    pinned: dict[int, list[bytes]] = {}
    for pin_seq, pin_chain in pins:
        pinned.setdefault(pin_seq, []).append(pin_chain)
        anchor_seq = max(anchor_seq or 0, pin_seq)
    start_seq, chain = 0, ZERO
    for cp in ChainCheckpoint.objects.filter(stream=stream_name).order_by("-seq"):
        key = _key(cp.key_id)
        if key and hmac.compare_digest(bytes(cp.mac), _sign(key, "checkpoint", stream_name, cp.seq, bytes(cp.chain))):
            start_seq, chain = cp.seq, bytes(cp.chain)
            break
    # key rotations: a link's key must be the stream's first key or one a valid rotation record
    # (signed under a key already in use) introduced at an earlier seq
    rotations = list(ChainRotation.objects.filter(stream=stream_name).order_by("seq", "id"))
    allowed: set[str] = set()
    for rotation in rotations:
        if not _rotation_valid(rotation):
            result.fail(max(rotation.seq, start_seq) + 1, "rotation record signature invalid")
        elif rotation.seq <= start_seq:  # before the checkpoint: its links may be gone
            allowed |= {rotation.prev_key_id, rotation.key_id}
    pending = [r for r in rotations if r.seq > start_seq and _rotation_valid(r)]
    model = stream.model_class()
    missing: dict[str, int] = {}  # ref -> seq of linked rows no longer there
    linked_refs: set[str] = set()
    expected = start_seq
    broken = False
    while not broken:
        links = list(
            ChainLink.objects.filter(stream=stream_name, seq__gt=expected)
            .order_by("seq")
            .values_list("seq", "ref", "key_id", "mac", "chain")[:VERIFY_CHUNK]
        )
        if not links:
            break
        rows = {str(obj.pk): obj for obj in model._default_manager.filter(pk__in=[link[1] for link in links])}
        for seq, ref, key_id, mac, stored_chain in links:
            expected += 1
            while pending and pending[0].seq < expected:
                rotation = pending.pop(0)
                if allowed and rotation.prev_key_id not in allowed:
                    result.fail(rotation.seq + 1, "rotation record not signed by a key of the stream")
                allowed |= {rotation.key_id} if allowed else {rotation.prev_key_id, rotation.key_id}
                if rotation.seq != expected - 1 or not hmac.compare_digest(bytes(rotation.chain), chain):
                    result.fail(max(rotation.seq, 1), "chain differs from a rotation record")
            if seq != expected:
                result.fail(expected, "link missing")
                broken = True
                break
            mac = bytes(mac)
            chain = next_chain(chain, seq, mac)
            if not hmac.compare_digest(chain, bytes(stored_chain)):
                result.fail(seq, "chain mismatch")
                broken = True
                break
            if any(not hmac.compare_digest(chain, pin) for pin in pinned.get(seq, ())):
                result.fail(seq, "chain differs from the anchored head")
                broken = True
                break
            result.links += 1
            linked_refs.add(ref)
            allowed = allowed or {key_id}  # the stream's first key needs no rotation record
            if key_id not in allowed and _key(key_id) is not None:
                result.fail(seq, "key not introduced by a rotation record")
            row = rows.get(ref)
            if row is None:
                missing[ref] = seq
                continue
            key = _key(key_id)
            if key is None:
                result.fail(seq, "unknown key")
            elif not hmac.compare_digest(mac, compute_mac(stream, ref, seq, row, key)):
                result.fail(seq, "row changed")
    if broken:
        expected -= 1
    result.head = expected if result.ok else (result.first_broken or 0) - 1
    head = ChainHead.objects.filter(stream=stream_name).first()
    if head is not None and head.seq != expected and result.ok:
        result.fail(min(head.seq, expected) + 1, "head and links disagree")
    for rotation in pending if not broken else []:  # records at (or past) the last link
        if rotation.seq > expected:  # a signed record of a head the links no longer reach
            result.fail(expected + 1, "truncated: head short of a rotation record")
            break
        if allowed and rotation.prev_key_id not in allowed:
            result.fail(rotation.seq + 1, "rotation record not signed by a key of the stream")
        if not hmac.compare_digest(bytes(rotation.chain), chain):
            result.fail(max(rotation.seq, 1), "chain differs from a rotation record")
    if anchor_seq is not None and expected < anchor_seq:
        result.fail(expected + 1, "truncated: head short of the last anchor")
    # purges: each signed record names its refs; each must be a missing row of its range
    for purge in ChainPurge.objects.filter(stream=stream_name, seq_last__gt=start_seq).order_by("id"):
        key = _key(purge.key_id)
        sig = (
            _sign(key, "purge", stream_name, purge.seq_first, purge.seq_last, purge.count, purge.refs_sha256)
            if key
            else b""
        )
        refs = purge.refs.split("\n") if purge.refs else []
        if not key or not hmac.compare_digest(bytes(purge.mac), sig) or _refs_sha256(refs) != purge.refs_sha256:
            result.fail(max(purge.seq_first, start_seq + 1), "purge record signature invalid")
            continue
        for ref in refs:
            seq = missing.get(ref)
            if seq is not None and purge.seq_first <= seq <= purge.seq_last:
                del missing[ref]
            elif ref in linked_refs:
                result.fail(max(purge.seq_first, start_seq + 1), "purge record does not match the missing rows")
                break
    if missing:
        result.fail(min(missing.values()), "row deleted")
    # coverage: every row (queued streams: sealed or queued) has a link
    if start_seq == 0:
        queued: set[str] = set()
        if stream.queued:
            from compliance.models import ChainQueue

            queued = set(ChainQueue.objects.filter(stream=stream_name).values_list("ref", flat=True))
        unlinked = None
        for pk in model._default_manager.values_list("pk", flat=True).iterator(chunk_size=VERIFY_CHUNK):
            ref = str(pk)
            if ref not in linked_refs and ref not in queued and (unlinked is None or _ref_key(ref) < unlinked):
                unlinked = _ref_key(ref)
        if unlinked is not None:
            # the position the row claims: after every link whose row comes before it
            position = expected + 1 if stream.queued else 1 + sum(1 for r in linked_refs if _ref_key(r) < unlinked)
            result.fail(position, "row without a link")
    return result


def verify(
    stream_names: list[str] | None = None,
    *,
    anchor: dict[str, int] | None = None,
    pins: dict[str, list[tuple[int, bytes]]] | None = None,
) -> Verification:
    """Verify the streams; ``anchor`` ``{stream: seq}`` and/or ``pins`` ``{stream: [(seq,
    chain)]}`` (``compliance.anchors.anchor_pins``) as in ``verify_stream``."""
    from compliance.models import ChainHead

    report = Verification()
    for name in stream_names or list(STREAMS):
        started = time.monotonic()
        result = verify_stream(name, anchor_seq=(anchor or {}).get(name), pins=(pins or {}).get(name, ()))
        result.seconds = time.monotonic() - started
        report.streams.append(result)
        ChainHead.objects.filter(stream=name).update(last_verified_at=_now(), last_verified_ok=result.ok)
    return report


def _now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()
