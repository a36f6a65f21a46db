"""How a batch detector runs: one REPEATABLE READ snapshot per run, and for micro-batches
a watermark on ``created_at`` kept ``LAG`` behind ``as_of`` (FRAUD.md §6: id order is not
commit order, so a row committed late with an earlier time is still read next run)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from fraud.models import DetectorRun
from fraud.scoring import ruleset_current

LAG = timedelta(minutes=5)
# A micro-batch that never ran (or ran long ago) reads at most this far back.
FIRST_WINDOW = timedelta(hours=1)


@contextmanager
def snapshot() -> Iterator[None]:
    """One transaction in REPEATABLE READ: every read of the run sees one snapshot.

    Runs serialise on a lock of ``DetectorRun``'s table, taken before the snapshot is
    frozen (PostgreSQL freezes it at the first query, not at ``LOCK TABLE``): a run that
    waited reads the watermark its predecessor committed instead of failing to serialise
    on the row. Inside an outer transaction (a test's, a caller's), its isolation is kept."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if not outer and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute(f"LOCK TABLE {DetectorRun._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        yield


def ruleset_version() -> int:
    return ruleset_current().version


def micro_batch(
    code: str,
    as_of: datetime,
    body: Callable[[datetime, datetime], dict[str, Any]],
    *,
    first_window: timedelta = FIRST_WINDOW,
    max_window: timedelta = FIRST_WINDOW * 24,
) -> dict[str, Any]:
    """Run ``body(start, end)`` over ``[watermark, as_of - LAG)`` in one snapshot, then move
    the watermark to the window's end (in the same transaction: a failed run reads the
    window again). A first run reads ``first_window`` back; after an outage a run reads
    at most ``max_window``. Returns the run's counts (``{}`` when the window is empty)."""
    end = as_of - LAG
    ruleset_current()  # written (if new) before the snapshot, so the run sees it
    with snapshot():
        run, _ = DetectorRun.objects.select_for_update().get_or_create(detector=code)
        start = max(run.watermark or end - first_window, end - max_window)
        if start >= end:
            return {}
        started = timezone.now()
        counts = body(start, end)
        run.watermark, run.started_at, run.finished_at, run.counts = end, started, timezone.now(), counts
        run.save(update_fields=["watermark", "started_at", "finished_at", "counts"])
    return counts


def batch(code: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a nightly or monthly detector's ``body()`` in one snapshot and note the run."""
    ruleset_current()
    with snapshot():
        started = timezone.now()
        counts = body()
        DetectorRun.objects.update_or_create(
            detector=code, defaults={"started_at": started, "finished_at": timezone.now(), "counts": counts}
        )
    return counts


def daily_memo(name: str, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A figure a micro-batch needs once a day (a baseline over weeks), computed on the
    day's first run and kept on the ``DetectorRun`` row ``name`` under ``key`` (the day
    and the ruleset version): later runs read it instead of scanning weeks again."""
    memo = DetectorRun.objects.filter(detector=name).values_list("counts", flat=True).first() or {}
    if memo.get("key") == key:
        return dict(memo["value"])
    value = compute()
    DetectorRun.objects.update_or_create(detector=name, defaults={"counts": {"key": key, "value": value}})
    return value
