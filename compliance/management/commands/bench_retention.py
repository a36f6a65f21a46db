"""Benchmark of the nightly retention purge (``make bench``; not a test).

Seeds ``--members`` expired security events (one per member of the million-member set)
and a tenth as many recent ones, then times, in one run:

- the purge's dry run (``retention_purge --dry-run``: keyset batches of 1,000 through
  ``loyalty_purge_batch``, counts and digests only);
- the real purge (dry run then delete, batches recorded, holds checked);
- the baseline: the same rows deleted by a hand-written batched SQL DELETE (1,000 rows a
  transaction, as the tables' owner with the triggers off), after re-seeding them.

Prints each time and the ratios to the baseline. Runs as the database owner (a
superuser), and creates the retention and purger roles (``db_roles``) first.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from compliance.purge import retention_purge
from compliance.retention import BATCH_SIZE, POLICY, cutoff
from loyalty.kernel import dbroles
from loyalty.kernel.append_only import RETENTION_ROLE

PURGER = "loyalty_purger"
TABLE = "staffauth_securityevent"


class Command(BaseCommand):
    help = "Time the retention purge (dry run and real) against a hand-written batched DELETE."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=1_000_000, help="Expired rows to purge (one per member).")

    def _seed(self, expired: int, cut: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (kind, created_at, username, user_agent, detail) "  # noqa: S608 (a constant)
                "SELECT 'login_failed', %s - (g %% 1000) * interval '1 hour' - interval '1 second', '', '', '{}' "
                "FROM generate_series(1, %s) g",
                [cut, expired],
            )
            cursor.execute(
                f"INSERT INTO {TABLE} (kind, created_at, username, user_agent, detail) "  # noqa: S608 (a constant)
                "SELECT 'login_failed', now() - (g %% 1000) * interval '1 minute', '', '', '{}' "
                "FROM generate_series(1, %s) g",
                [max(expired // 10, 1)],
            )
            # every security event is on the tamper-evident chain, as the product writes them:
            # the purge records what it deletes there (the MACs are not read by the purge)
            cursor.execute(
                "INSERT INTO compliance_chainlink (stream, seq, ref, key_id, mac, chain) "  # noqa: S608 (constants)
                "SELECT 'security', coalesce((SELECT max(seq) FROM compliance_chainlink WHERE stream = 'security'), 0)"
                f" + row_number() OVER (ORDER BY t.id), t.id::text, 'bench', '\\x00', '\\x00' FROM {TABLE} t "
                "WHERE NOT EXISTS (SELECT 1 FROM compliance_chainlink l WHERE l.stream = 'security' AND l.ref = t.id::text)"
            )
            cursor.execute(f"ANALYZE {TABLE}")
            cursor.execute("ANALYZE compliance_chainlink")

    def _remaining(self, cut: Any) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < %s", [cut])  # noqa: S608
            return int(cursor.fetchone()[0])

    def handle(self, *args: Any, members: int, **options: Any) -> None:
        dbroles.apply(
            connection,
            [dbroles.role_create_statement(connection, role, login=False) for role in (RETENTION_ROLE, PURGER)]
            + dbroles.retention_grant_statements(connection, purger=PURGER),
        )
        settings.RETENTION_DB_ROLE = PURGER
        rule = next(r for r in POLICY["security"] if r.table == TABLE)
        cut = cutoff(rule, timezone.now())
        self._seed(members, cut)

        started = time.perf_counter()
        dry = retention_purge(dry_run=True, started_by="bench", category="security")
        dry_seconds = time.perf_counter() - started
        assert dry.dry_counts["security"][TABLE] == members, dry.dry_counts

        started = time.perf_counter()
        real = retention_purge(dry_run=False, started_by="bench", category="security")
        real_seconds = time.perf_counter() - started
        assert real.counts["security"][TABLE] == members and self._remaining(cut) == 0, real.counts

        self._seed(members, cut)
        started = time.perf_counter()
        deleted = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE id IN "  # noqa: S608 (constants)
                    f"(SELECT id FROM {TABLE} WHERE created_at < %s ORDER BY id LIMIT {BATCH_SIZE})",
                    [cut],
                )
                batch = cursor.rowcount
            deleted += batch
            if batch == 0:
                break
        baseline_seconds = time.perf_counter() - started
        assert deleted == members

        self.stdout.write(f"retention purge of {members:,} expired rows ({TABLE}, batches of {BATCH_SIZE:,})")
        self.stdout.write(f"  dry run (counts and digests):      {dry_seconds:8.2f} s")
        self.stdout.write(f"  purge (dry run + delete, evidence): {real_seconds:8.2f} s")
        self.stdout.write(f"  hand-written batched DELETE:        {baseline_seconds:8.2f} s")
        self.stdout.write(f"  ratio dry run / baseline:          {dry_seconds / baseline_seconds:8.2f}")
        self.stdout.write(f"  ratio purge / baseline:            {real_seconds / baseline_seconds:8.2f}")
