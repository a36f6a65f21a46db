"""Retention purge runs (COMPLIANCE.md §2): one service per operation.

A run freezes its policy and cutoffs, counts what is due (the dry run: the same keyset
queries, nothing deleted), then, unless it is only a dry run, purges in keyset batches of
``BATCH_SIZE`` through ``loyalty_purge_batch`` (SECURITY DEFINER), each batch a short
transaction that also records the batch (count, SHA-256 of ``table:pk``) and the run's
progress, so a crashed run resumes where it stopped without loss or double counting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from compliance.models import RetentionBatch, RetentionRun
from compliance.retention import BATCH_SIZE, MUTABLE_BATCH_SQL, POLICY, cutoff

BatchHook = Callable[[RetentionRun, str, int], None]


class UnknownCategory(ValueError):
    code = "retention_unknown_category"


def retention_run_start(
    *, dry_run: bool, started_by: str, category: str | None = None, now: datetime | None = None
) -> RetentionRun:
    """Open a run with its policy and cutoffs frozen."""
    if category is not None and category not in (*POLICY, "inactive", "closed_pii"):
        raise UnknownCategory(f"unknown category {category!r}: one of {', '.join(POLICY)}")
    now = now or timezone.now()
    policy: dict[str, list[dict[str, Any]]] = {}
    for name, rules in POLICY.items():
        if category is None or name == category:
            policy[name] = [
                {
                    "table": rule.table,
                    "clock": rule.clock,
                    "years": rule.years,
                    "days": rule.days,
                    "cutoff": cutoff(rule, now).isoformat(),
                    "append_only": rule.append_only,
                }
                for rule in rules
            ]
    frozen: dict[str, Any] = {"as_of": now.isoformat(), "categories": policy}
    if category in (None, "inactive"):
        frozen["inactive"] = {
            "months_idle": settings.RETENTION_INACTIVE_MONTHS,
            "warning_days": settings.RETENTION_INACTIVE_WARNING_DAYS,
        }
    if category in (None, "closed_pii"):
        frozen["closed_pii"] = {"days_after_closure": settings.RETENTION_CLOSED_PII_DAYS}
    return RetentionRun.objects.create(dry_run=dry_run, started_by=started_by, policy=frozen)


def _batch(
    table: str, cut: str, after: int, dry_run: bool, *, append_only: bool = True
) -> tuple[int, str, int | None, int | None, int, list[int] | None]:
    """One keyset batch: (count, digest of ``table:pk``, first and last pk seen, rows held,
    the pks deleted)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = %s", [settings.RETENTION_LOCK_TIMEOUT])
        if not append_only:
            rule = next(r for rules in POLICY.values() for r in rules if r.table == table)
            sql = MUTABLE_BATCH_SQL.format(
                table=connection.ops.quote_name(table), clock=connection.ops.quote_name(rule.clock)
            )
            cursor.execute(sql, {"table": table, "after": after, "cutoff": cut, "limit": BATCH_SIZE, "dry": dry_run})
            return cursor.fetchone()
        if settings.RETENTION_DB_ROLE:
            cursor.execute(f"SET LOCAL ROLE {connection.ops.quote_name(settings.RETENTION_DB_ROLE)}")
        cursor.execute(
            "SELECT purged, digest, first_pk, last_pk, held, ids"
            " FROM loyalty_purge_batch(%s::regclass, %s, %s, %s, %s)",
            [table, cut, after, BATCH_SIZE, dry_run],
        )
        row = cursor.fetchone()
        if settings.RETENTION_DB_ROLE:
            cursor.execute("RESET ROLE")
    return row


def _phase(run: RetentionRun, *, dry: bool, after_batch: BatchHook | None) -> None:
    key = "dry" if dry else "purge"
    for name, rules in run.policy["categories"].items():
        for rule in rules:
            table = rule["table"]
            while True:
                with transaction.atomic():
                    run = RetentionRun.objects.select_for_update().get(pk=run.pk)
                    progress = run.progress.setdefault(key, {})
                    if progress.get(table) == "done":
                        break
                    after = progress.get(table, 0)
                    count, digest, first, last, held, ids = _batch(
                        table, rule["cutoff"], after, dry, append_only=rule.get("append_only", True)
                    )
                    counts = run.dry_counts if dry else run.counts
                    counts.setdefault(name, {}).setdefault(table, 0)
                    counts[name][table] += count
                    if first is None:
                        progress[table] = "done"
                    else:
                        progress[table] = last
                        if not dry:
                            run.held[table] = run.held.get(table, 0) + held
                            if count:
                                RetentionBatch.objects.create(
                                    run=run, table=table, count=count, sha256=digest, first_pk=first, last_pk=last
                                )
                                _chain_purge_record(table, ids or [])
                    run.save(update_fields=["progress", "dry_counts", "counts", "held"])
                if after_batch is not None and first is not None:
                    after_batch(run, table, count)


def _chain_purge_record(table: str, ids: list[int]) -> None:
    """Rows of a tamper-evident stream leave a signed purge record in the same transaction
    (``compliance.chain.purge_record``), so the rest of the stream still verifies."""
    from compliance.chain import STREAMS, purge_record

    for stream in STREAMS.values():
        if stream.model_class()._meta.db_table == table and ids:
            purge_record(stream.name, ids)


def _inactive(run: RetentionRun) -> None:
    """Long-inactive members: warned, then closed when the warning lapses (counts only in
    a dry run). Both steps are idempotent, so a resumed run adds what it did this time."""
    from compliance.inactive import inactive_close, inactive_to_warn, inactive_warn, notices_lapsed

    if run.policy.get("inactive") is None:
        return
    now = datetime.fromisoformat(run.policy["as_of"])
    with transaction.atomic():
        run = RetentionRun.objects.select_for_update().get(pk=run.pk)
        run.dry_counts["inactive"] = {
            "members_to_warn": inactive_to_warn(now).count(),
            "accounts_to_close": notices_lapsed(now).count(),
        }
        run.save(update_fields=["dry_counts"])
    if run.dry_run:
        return
    closed, cancelled = inactive_close(now)
    warned = inactive_warn(now)
    with transaction.atomic():
        run = RetentionRun.objects.select_for_update().get(pk=run.pk)
        counts = run.counts.setdefault("inactive", {})
        for key, value in (("members_warned", warned), ("accounts_closed", closed), ("notices_cancelled", cancelled)):
            counts[key] = counts.get(key, 0) + value
        run.save(update_fields=["counts"])


def _closed_pii(run: RetentionRun) -> None:
    """Closed members' personal data (crypto-shredded; the member row and ledger stay)."""
    from compliance.pii import closed_members_due, closed_members_held, closed_members_shred

    if run.policy.get("closed_pii") is None:
        return
    now = datetime.fromisoformat(run.policy["as_of"])
    with transaction.atomic():
        run = RetentionRun.objects.select_for_update().get(pk=run.pk)
        run.dry_counts.setdefault("closed_pii", {})["members_member"] = closed_members_due(now).count()
        run.held["members_member"] = closed_members_held(now)
        run.save(update_fields=["dry_counts", "held"])
    if not run.dry_run:
        shredded = closed_members_shred(now)
        with transaction.atomic():
            run = RetentionRun.objects.select_for_update().get(pk=run.pk)
            counts = run.counts.setdefault("closed_pii", {})
            counts["members_member"] = counts.get("members_member", 0) + shredded
            run.save(update_fields=["counts"])


def retention_run_continue(run: RetentionRun, *, after_batch: BatchHook | None = None) -> RetentionRun:
    """Carry a run on from its saved progress to the end: the dry run, then the purge."""
    _phase(run, dry=True, after_batch=after_batch)
    if not run.dry_run:
        _phase(run, dry=False, after_batch=after_batch)
    _inactive(run)
    _closed_pii(run)
    RetentionRun.objects.filter(pk=run.pk).update(state=RetentionRun.State.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def retention_purge(
    *, dry_run: bool, started_by: str, category: str | None = None, after_batch: BatchHook | None = None
) -> RetentionRun:
    """Resume the unfinished run of the same kind if there is one, else start one."""
    unfinished = RetentionRun.objects.filter(state=RetentionRun.State.RUNNING, dry_run=dry_run).order_by("pk").first()
    run = unfinished or retention_run_start(dry_run=dry_run, started_by=started_by, category=category)
    return retention_run_continue(run, after_batch=after_batch)


def evidence_report(run: RetentionRun) -> dict[str, Any]:
    """The run's evidence: policy, cutoffs, times, counts, digest of purged ids, holds
    skipped, who started it. No personal data."""
    import hashlib

    digest = hashlib.sha256()
    for batch in run.batches.order_by("pk"):
        digest.update(f"{batch.table}:{batch.first_pk}-{batch.last_pk}:{batch.count}:{batch.sha256}\n".encode())
    return {
        "run": run.pk,
        "dry_run": run.dry_run,
        "state": run.state,
        "started_by": run.started_by,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "policy": run.policy,
        "due": run.dry_counts,
        "purged": run.counts,
        "holds_skipped": run.held,
        "batches": run.batches.count(),
        "purged_ids_sha256": digest.hexdigest(),
    }
