"""One answer per idempotency key: claim the key, run the ledger work, save, replay.

In one READ COMMITTED transaction (LEDGER.md §2, "Write path"):

1. claim the key with ``INSERT … ON CONFLICT DO NOTHING``. A concurrent duplicate
   blocks on the unique index until the first commits, then finds the saved answer and
   returns it (the same key with another payload is refused and writes nothing);
2. run the ledger work (``loyalty.ledger.services``), which returns an ``Entry`` or
   raises a ``LedgerRefusal``;
3. save the answer under the key, in the same transaction: 201 and the entry's record
   for an operation written, 200 for one that moved nothing, the refusal's status (the
   API's one table, ``refusal_status``) and error body for a refusal.

Serialization failures and deadlocks (SQLSTATE 40001/40P01) are retried with a
jittered backoff and never reported as business refusals.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, transaction
from django.utils import timezone

from loyalty.kernel import rawsql
from loyalty.kernel.statuses import error_body, refusal_status
from loyalty.ledger import refusals as refusals
from loyalty.ledger.models import IdempotencyKey
from loyalty.ledger.services.core import Actor, Entry, Posting, fault

NAMESPACE = uuid.UUID("6f1c2a4e-3b5d-4f7a-9c8e-2d1b0a9f8e7d")
RETRY_SQLSTATES = {"40001", "40P01"}
MAX_ATTEMPTS = 6
CREATED, NOTHING_WRITTEN = 201, 200

_SAVE_ANSWER_SQL = f"UPDATE {IdempotencyKey._meta.db_table} SET status_code = %s, response = %s WHERE id = %s"  # noqa: S608


@dataclass
class Outcome:
    """The answer under a key (a status and a JSON body), as first given or replayed."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def error_code(self) -> str | None:
        return None if self.ok else self.body.get("error", {}).get("code")


@dataclass
class Request:
    """An operation's idempotency identity (the caller's scope and key) and payload.

    ``fingerprint`` joins the payload where a caller passes its whole validated request,
    so the same key with any other request body is refused even where the operation's
    own arguments match.
    """

    actor: Actor
    key: str
    payload: dict[str, Any] = field(default_factory=dict)
    scope_override: str | None = None

    @property
    def scope(self) -> str:
        return self.scope_override or self.actor.scope

    @property
    def request_hash(self) -> str:
        canonical = json.dumps(self.payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def operation_id(self) -> uuid.UUID:
        # Deterministic: a retried request names the same operation.
        return uuid.uuid5(NAMESPACE, f"{self.scope}:{self.key}")


def canonical(body: dict[str, Any]) -> dict[str, Any]:
    """Keys sorted at every level, so a replay (read back from jsonb, which reorders
    keys) renders byte for byte like the first response."""
    result: dict[str, Any] = json.loads(json.dumps(body, sort_keys=True))
    return result


def unsaved(entry: Entry) -> Outcome:
    """The answer for work that moved nothing and saved nothing (``NothingToWrite``)."""
    return Outcome(NOTHING_WRITTEN, canonical(entry.record))


def run(request: Request, work: Callable[[Posting], Entry]) -> Outcome:
    """``work`` once per key, in the key's transaction; the saved answer on a retry."""
    if not request.key or len(request.key) > 128:
        raise ValueError("an idempotency key of 1 to 128 characters is required")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            outcome = _run_once(request, work)
            fault("after_commit")
            return outcome
        except OperationalError as exc:
            sqlstate = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
            if sqlstate not in RETRY_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 (jitter, not security)
    raise AssertionError("unreachable")


def _claim_key(request: Request) -> int | None:
    """Insert the key row; None if it already existed (possibly after waiting for it)."""
    row = rawsql.fetchone(
        f"INSERT INTO {IdempotencyKey._meta.db_table} (scope, key, request_hash, status_code, response, created_at) "  # noqa: S608
        "VALUES (%s, %s, %s, 0, %s, %s) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
        [request.scope, request.key, request.request_hash, "{}", rawsql.when(timezone.now())],
    )
    return row[0] if row else None


def _error_body(refusal: refusals.LedgerRefusal) -> dict[str, Any]:
    return error_body(refusal.code, str(refusal), dict(refusal.facts) or None)


def _run_once(request: Request, work: Callable[[Posting], Entry]) -> Outcome:
    with transaction.atomic():
        key_id = _claim_key(request)
        if key_id is None:
            saved = IdempotencyKey.objects.get(scope=request.scope, key=request.key)
            if saved.request_hash != request.request_hash:
                reused = refusals.IdempotencyKeyReused()  # answered, not saved: the key is the first request's
                return Outcome(refusal_status(reused), _error_body(reused))
            return Outcome(saved.status_code, canonical(saved.response), replayed=True)
        fault("after_key_claimed")
        saved_alongside: tuple[int, dict[str, Any]] | None = None

        def save_alongside(record: dict[str, Any]) -> tuple[str, list[Any]]:
            # A credit saves its answer in its own statement (``core.credit``).
            nonlocal saved_alongside
            saved_alongside = (CREATED, canonical(record))
            return _SAVE_ANSWER_SQL, [CREATED, json.dumps(saved_alongside[1]), key_id]

        posting = Posting(request.actor, request.operation_id, save_alongside=save_alongside)
        try:
            # No savepoint: every rule is checked before the first journal write, so a
            # refusal has nothing to undo. Enforced: a refusal after a write is a bug,
            # and the whole transaction (key included) rolls back instead.
            entry = work(posting)
            status, body = (CREATED if entry.operation is not None else NOTHING_WRITTEN), canonical(entry.record)
        except refusals.LedgerRefusal as refusal:
            if posting.wrote:
                raise RuntimeError(f"{refusal.code} raised after a journal write") from refusal
            status, body = refusal_status(refusal), canonical(_error_body(refusal))
        if saved_alongside != (status, body):
            rawsql.execute(_SAVE_ANSWER_SQL, [status, json.dumps(body), key_id])
        fault("before_commit")
        return Outcome(status, body)
