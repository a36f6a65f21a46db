"""Benchmark of the ledger's write path on PostgreSQL (``make bench``; not a test).

Prints, in one run:

(a) earn operations per second through ``loyalty.services.points_earn`` with 1 and 4
    concurrent workers, each operation on a distinct member;
(b) the same through the HTTP till API (gunicorn on 127.0.0.1, signed requests);
(c) a baseline: the same rows written by plain SQL in the same transaction shape
    (claim the key, lock the balance, insert operation, transfer, lot and movement,
    update the balance, save the key), with the same worker counts;
(d) (a) with the till's data on every earn (three item lines and a tender token, hashed
    and stored on the operation's row: ``points_earn(till=...)``, issue 14);

then the ratios (a)/(c), (b)/(c) and (d)/(a), and the expiry job over 10,000 and 100,000 lots
with its time and peak Python memory (tracemalloc), which must stay flat.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import timedelta

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.utils import timezone

from loyalty.kernel.models import Store
from loyalty.ledger.models import Account, MemberBalance, PointsLot
from loyalty.ledger.operations import Actor, points_earn, points_expire_due
from loyalty.ledger.tilldata import till_data
from members.models import Member

DURATION = 5.0
WORKERS = (1, 4)
ROUNDS = 2
# The "before" of the fraud checks on the HTTP path (tests/bench_settings_unguarded.py).
UNGUARDED_SETTINGS = "tests.bench_settings_unguarded"
HISTORY = 50_000
_NO_DIGITS = str.maketrans(
    "0123456789", "ghijklmnop"
)  # earns already in the ledger before measuring: a live ledger is not empty


class Command(BaseCommand):
    help = "Benchmark earn throughput (service, HTTP, plain-SQL baseline) and the expiry job."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=DURATION, help="Duration of each throughput run.")
        parser.add_argument("--lots", type=int, nargs="+", default=[10_000, 100_000], help="Lot counts for expiry.")
        parser.add_argument("--rounds", type=int, default=ROUNDS, help="Alternating rounds of service and baseline.")
        parser.add_argument("--history", type=int, default=HISTORY, help="Earns in the ledger before measuring.")
        parser.add_argument("--members", type=int, default=1000, help="Members each worker cycles through.")
        parser.add_argument("--skip-http", action="store_true")

    def handle(self, *args, seconds, lots, rounds, history, members, skip_http, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL (set DATABASE_URL).")
        settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)  # one earn per member anyway
        self.seconds, self.members_per_worker = seconds, members
        self.store, _ = Store.objects.get_or_create(code="BENCH", defaults={"name": "Benchmark store"})
        from loyalty.api.auth import till_create

        self.till, self.secret = till_create(store=self.store, code=f"B{uuid.uuid4().hex[:8]}")
        self.dsn = bench_dsn()

        self.seed_history(history)
        # The paths take turns, baseline first in one round and second in the next, so
        # that neither always meets the database in the same state (autovacuum, page
        # splits, checkpoints); each figure is the mean of its rounds.
        samples: dict[tuple[str, int], list[float]] = {}
        for round_no in range(rounds):
            paths = [
                ("sql", "plain SQL", self.sql_worker),
                ("service", "service", self.service_worker),
                ("till", "service+till", self.service_till_worker),
            ]
            for path, label, target in paths if round_no % 2 == 0 else paths[::-1]:
                for workers in WORKERS:
                    samples.setdefault((path, workers), []).append(self.run(label, workers, target))
        if not skip_http:
            # As deployed, and without the fraud issue's enumeration guard (its "before"),
            # in turns like the paths above.
            servers = [("http", "HTTP till API", None), ("http_unguarded", "HTTP, no guard", UNGUARDED_SETTINGS)]
            for round_no in range(rounds):
                for path, label, settings_module in servers if round_no % 2 == 0 else servers[::-1]:
                    with self.http_server(settings_module) as port:
                        self.port = port
                        for workers in WORKERS:
                            samples.setdefault((path, workers), []).append(self.run(label, workers, self.http_worker))
        results = {key: sum(rates) / len(rates) for key, rates in samples.items()}

        self.stdout.write(
            self.style.MIGRATE_HEADING(f"\nEarn throughput (operations per second, mean of {rounds} rounds)")
        )
        self.stdout.write(f"  {'path':<16}" + "".join(f"{w} worker{'s' if w > 1 else '':<5}" for w in WORKERS))
        for path in ("service", "till", "http", "http_unguarded", "sql"):
            if (path, WORKERS[0]) in results:
                self.stdout.write(f"  {path:<16}" + "".join(f"{results[(path, w)]:>10.0f}  " for w in WORKERS))
        for workers in WORKERS:
            base = results[("sql", workers)]
            line = f"  {workers} worker(s): service/baseline {results[('service', workers)] / base:.0%}"
            if ("http", workers) in results:
                line += f", HTTP/baseline {results[('http', workers)] / base:.0%}"
                guarded = results[("http", workers)] / results[("http_unguarded", workers)]
                line += f", HTTP with/without the enumeration guard {guarded:.0%}"
            line += f", with till data/service {results[('till', workers)] / results[('service', workers)]:.0%}"
            self.stdout.write(line)
        self.stdout.write(
            f"  scaling 4/1 workers: service {results[('service', 4)] / results[('service', 1)]:.2f}x, "
            f"baseline {results[('sql', 4)] / results[('sql', 1)]:.2f}x"
        )

        self.stdout.write(self.style.MIGRATE_HEADING("\nExpiry job"))
        for count in lots:
            self.expiry(count)

        self.stdout.write(self.style.MIGRATE_HEADING("\nLedger verification"))
        self.verify()

    # --- throughput -------------------------------------------------------------------------

    def seed_history(self, earns: int, per_member: int = 100) -> None:
        """A ledger with a past: ``earns`` earns (not yet due to expire) spread over
        members, then vacuumed and analysed."""
        if earns:
            started = time.monotonic()
            members = self.fresh_members(max(earns // per_member, 1))
            account_ids = list(Account.objects.filter(member__in=members).values_list("pk", flat=True))
            _bulk_lots(account_ids, per_member, expires_on=timezone.localdate() + timedelta(days=365), till=self.till)
            self.stdout.write(f"  history: {earns:,} earns in the ledger ({time.monotonic() - started:.1f}s)")
        # Settled as a live database is: statistics gathered and nothing left for
        # autovacuum to do in the middle of a measurement, dirty pages flushed.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("CHECKPOINT")

    def fresh_members(self, count: int) -> list[Member]:
        members = Member.objects.bulk_create([Member(home_store=self.store) for _ in range(count)])
        accounts = Account.objects.bulk_create([Account(kind=Account.Kind.MEMBER, member=m) for m in members])
        MemberBalance.objects.bulk_create([MemberBalance(account=a) for a in accounts])
        return members

    def run(self, label: str, workers: int, target) -> float:
        """``workers`` processes (like gunicorn or Celery workers: no shared GIL), each
        on its own members, started together; returns operations per second."""
        # Each worker cycles through its own members: no two workers touch one member.
        pools = [self.fresh_members(self.members_per_worker) for _ in range(workers)]
        context = multiprocessing.get_context("fork")
        barrier, results = context.Barrier(workers + 1), context.Queue()
        connections.close_all()  # children open their own connections

        def child(members):
            barrier.wait()
            stop = time.monotonic() + self.seconds
            try:
                results.put(target(itertools.cycle(members), stop))
            except BaseException as exc:
                results.put(exc)
                raise
            finally:
                connections.close_all()

        processes = [context.Process(target=child, args=(pool,)) for pool in pools]
        for process in processes:
            process.start()
        barrier.wait()
        started = time.monotonic()
        counts = [results.get(timeout=self.seconds + 120) for _ in processes]
        failures = [c for c in counts if isinstance(c, BaseException)]
        if failures:
            raise CommandError(f"a {label} worker failed: {failures[0]!r}")
        elapsed = time.monotonic() - started
        for process in processes:
            process.join()
            if process.exitcode != 0:
                raise CommandError(f"a {label} worker failed (exit code {process.exitcode})")
        rate = sum(counts) / elapsed
        self.stdout.write(f"  {label:<14} {workers} worker(s): {sum(counts):>6} earns, {rate:8.0f}/s")
        return rate

    def service_worker(self, members, stop, *, with_till_data: bool = False) -> int:
        actor, done = Actor(till=self.till), 0
        while time.monotonic() < stop:
            member = next(members)
            ref = f"S-{uuid.uuid4().hex}"
            extra = {"till": _bench_till_data(ref)} if with_till_data else {}
            outcome = points_earn(member=member, points=10, receipt_ref=ref, actor=actor, idempotency_key=ref, **extra)
            assert outcome.status_code == 201, outcome.body
            done += 1
        return done

    def service_till_worker(self, members, stop) -> int:
        return self.service_worker(members, stop, with_till_data=True)

    def sql_worker(self, members, stop) -> int:
        done = 0
        earn_account = Account.objects.get(kind=Account.Kind.EARN, member__isnull=True).pk
        with psycopg.connect(self.dsn) as conn:
            while time.monotonic() < stop:
                member = next(members)
                with conn.transaction(), conn.cursor() as cur:
                    _baseline_earn(cur, member, self.till.pk, self.store.pk, earn_account)
                done += 1
        return done

    def http_worker(self, members, stop) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        done = 0
        while time.monotonic() < stop:
            member = next(members)
            # Hex digits mapped to letters: a random digit run could pass the Luhn check
            # and be refused as a card number, as it should.
            receipt = "R-" + uuid.uuid4().hex[:16].translate(_NO_DIGITS)
            body = json.dumps(
                {"loyalty_number": member.loyalty_number, "receipt_number": receipt, "amount_minor": 1000}
            ).encode()
            path, timestamp = "/api/v1/pos/purchases", str(int(time.time()))
            message = f"{timestamp}\nPOST\n{path}\n".encode() + body
            headers = {
                "Content-Type": "application/json",
                "X-Till-Key": self.till.key_id,
                "X-Timestamp": timestamp,
                "X-Signature": hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest(),
                "Idempotency-Key": uuid.uuid4().hex,
            }
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 201:
                raise CommandError(f"HTTP {response.status}: {payload[:300]!r}")
            done += 1
        conn.close()
        return done

    def http_server(self, settings_module: str | None = None):
        command = self

        class Server:
            def __enter__(self):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    self.port = probe.getsockname()[1]
                env = {
                    **os.environ,
                    "ALLOWED_HOSTS": "127.0.0.1",
                    "SECURE_SSL_REDIRECT": "0",
                    "TILL_RATE_LIMIT": "1000000/min",
                    # As deployed: persistent connections (a new one per request costs
                    # more than the earn, and re-prepares its statements).
                    "DB_CONN_MAX_AGE": "60",
                    "LOG_LEVEL": "WARNING",
                }
                if settings_module:
                    env["DJANGO_SETTINGS_MODULE"] = settings_module
                self.proc = subprocess.Popen(  # noqa: S603 (a fixed argument list)
                    [sys.executable, "-m", "gunicorn", "loyalty.wsgi", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", "2", "--log-level", "warning"],
                    env=env, cwd=settings.BASE_DIR,
                )  # fmt: skip
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                        command.stdout.write(
                            f"  gunicorn (2 workers) on 127.0.0.1:{self.port}"
                            + (f" with {settings_module}" if settings_module else "")
                        )
                        return self.port
                    except OSError:
                        time.sleep(0.2)
                raise CommandError("gunicorn did not start")

            def __exit__(self, *exc):
                self.proc.terminate()
                self.proc.wait(timeout=30)

        return Server()

    # --- expiry -------------------------------------------------------------------------------

    def expiry(self, lot_count: int, lots_per_member: int = 100) -> None:
        members = self.fresh_members(lot_count // lots_per_member)
        account_ids = list(Account.objects.filter(member__in=members).values_list("pk", flat=True))
        started = time.monotonic()
        _bulk_lots(account_ids, lots_per_member, expires_on=timezone.localdate() - timedelta(days=1), till=self.till)
        self.stdout.write(f"  {lot_count:,} due lots created in {time.monotonic() - started:.1f}s")
        done = [0]

        def progress(n):
            done[0] += n
            if done[0] % 200 == 0 or done[0] == len(account_ids):
                self.stdout.write(f"    expired {done[0]:,}/{len(account_ids):,} members", ending="\r")

        tracemalloc.start()
        started = time.monotonic()
        points = points_expire_due(as_of=timezone.localdate(), progress=progress)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        left = PointsLot.objects.filter(account_id__in=account_ids, remaining__gt=0).count()
        self.stdout.write(
            f"\n  {lot_count:,} lots: {points:,} points expired in {elapsed:.1f}s "
            f"({lot_count / elapsed:,.0f} lots/s), peak Python memory {peak / 2**20:.1f} MiB, lots left {left}"
        )

    # --- verification ----------------------------------------------------------------------

    def verify(self) -> None:
        """``verify_ledger`` over everything the runs above wrote (history, earns, expiry)."""
        from loyalty.ledger.verify import ledger_verify

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute(
                "SELECT (SELECT count(*) FROM loyalty_ledgeroperation), (SELECT count(*) FROM loyalty_transfer), "
                "(SELECT count(*) FROM loyalty_pointslot), (SELECT count(*) FROM loyalty_account WHERE kind = 'member')"
            )
            operations, transfers, lots, accounts = cursor.fetchone()
        started = time.monotonic()
        report = ledger_verify()
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"  verify_ledger: {operations:,} operations, {transfers:,} transfers, {lots:,} lots, "
            f"{accounts:,} member accounts in {elapsed:.1f}s "
            f"({'every invariant holds' if report.ok else f'{len(report.problems)} problem(s)'})"
        )
        for check, rows in report.checks.items():
            self.stdout.write(f"    {check}: {rows:,} checked in {report.seconds.get(check, 0):.2f}s")
        for problem in report.problems[:10]:
            self.stdout.write(f"    MISMATCH {problem}")


def _bench_till_data(ref: str):
    """A basket of three lines and a tender token, as a till sends them (hashed on arrival)."""
    items = [{"sku": f"SKU-{n}-{ref[-4:]}", "qty": n, "amount_minor": 250 * n} for n in (1, 2, 3)]
    return till_data(items=items, tender_ref=f"tok_{ref[-12:]}")


def bench_dsn() -> str:
    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"], user=db.get("USER") or None, password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None, port=db.get("PORT") or None,
    )  # fmt: skip


def _baseline_earn(cur, member: Member, till_id: int, store_id: int, earn_account: int) -> None:
    """The rows one earn writes, by hand: key claimed, balance locked, operation,
    transfer, lot, movement, balance and key updated, in one transaction."""
    key, op_id, transfer_id = uuid.uuid4().hex, uuid.uuid4(), uuid.uuid4()
    now = timezone.now()
    cur.execute(
        "INSERT INTO loyalty_idempotencykey (scope, key, request_hash, status_code, response, created_at) "
        "VALUES (%s, %s, %s, 0, '{}', %s) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
        [f"till:{till_id}", key, "x" * 64, now],
    )
    key_id = cur.fetchone()[0]
    cur.execute("SELECT account_id FROM loyalty_memberbalance WHERE account_id = "
                "(SELECT id FROM loyalty_account WHERE member_id = %s) FOR UPDATE", [member.pk])  # fmt: skip
    account_id = cur.fetchone()[0]
    cur.execute(
        "INSERT INTO loyalty_ledgeroperation (id, kind, member_id, store_id, points, actor_till_id, actor_member, "
        "actor_job, receipt_ref, reason, needs_review, created_at) "
        "VALUES (%s, 'earn', %s, %s, 10, %s, false, '', %s, '', false, %s)",
        [op_id, member.pk, store_id, till_id, f"B-{key}", now],
    )
    cur.execute(
        "INSERT INTO loyalty_transfer (id, operation_id, kind, debit_account_id, credit_account_id, amount, created_at) "
        "VALUES (%s, %s, 'earn', %s, %s, 10, %s)",
        [transfer_id, op_id, earn_account, account_id, now],
    )
    cur.execute(
        "INSERT INTO loyalty_pointslot (account_id, source_id, expires_on, earned, remaining) "
        "VALUES (%s, %s, %s, 10, 10) RETURNING id",
        [account_id, transfer_id, timezone.localdate() + timedelta(days=365)],
    )
    lot_id = cur.fetchone()[0]
    cur.execute(
        "INSERT INTO loyalty_lotmovement (transfer_id, lot_id, delta) VALUES (%s, %s, 10)", [transfer_id, lot_id]
    )
    cur.execute(
        "UPDATE loyalty_memberbalance SET credits_posted = credits_posted + 10, updated_at = %s WHERE account_id = %s",
        [now, account_id],
    )
    response = {"kind": "earn", "loyalty_number": member.loyalty_number, "operation_id": str(op_id), "points": 10,
                "receipt_ref": f"B-{key}"}  # fmt: skip
    cur.execute(
        "UPDATE loyalty_idempotencykey SET status_code = 201, response = %s WHERE id = %s",
        [json.dumps(response), key_id],
    )


def _bulk_lots(account_ids: list[int], per_account: int, *, expires_on, till) -> None:
    """Consistent earn rows (idempotency key, operation, transfer, lot, movement,
    balance) for lots expiring on ``expires_on``, earned at ``till``, written set-wise
    so that 100,000 of them take seconds. As the service writes them, so that
    ``verify_ledger`` finds every copy in agreement."""
    from loyalty.ledger.services.core import system_account

    earn_account = system_account(Account.Kind.EARN).pk
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH src AS (
                SELECT a.id AS account_id, a.member_id, m.loyalty_number, g.n, gen_random_uuid() AS op_id,
                    gen_random_uuid() AS transfer_id
                FROM loyalty_account a JOIN members_member m ON m.id = a.member_id
                CROSS JOIN generate_series(1, %s) AS g(n) WHERE a.id = ANY(%s)
            ), keys AS (
                INSERT INTO loyalty_idempotencykey (scope, key, request_hash, status_code, response, created_at)
                SELECT 'till:' || %s, 'bench-' || op_id, repeat('x', 64), 201,
                    jsonb_build_object('operation_id', op_id::text, 'kind', 'earn', 'points', 7,
                        'loyalty_number', loyalty_number, 'receipt_ref', 'bench-' || op_id), now()
                FROM src
            ), ops AS (
                INSERT INTO loyalty_ledgeroperation (id, kind, member_id, store_id, points, actor_till_id, actor_member,
                    actor_job, receipt_ref, reason, needs_review, created_at)
                SELECT op_id, 'earn', member_id, %s, 7, %s, false, '', 'bench-' || op_id, '', false, now() FROM src
            ), transfers AS (
                INSERT INTO loyalty_transfer (id, operation_id, kind, debit_account_id, credit_account_id, amount, created_at)
                SELECT transfer_id, op_id, 'earn', %s, account_id, 7, now() FROM src
            ), lots AS (
                INSERT INTO loyalty_pointslot (account_id, source_id, expires_on, earned, remaining)
                SELECT account_id, transfer_id, %s, 7, 7 FROM src RETURNING id, source_id
            )
            INSERT INTO loyalty_lotmovement (transfer_id, lot_id, delta) SELECT source_id, id, 7 FROM lots
            """,
            [per_account, account_ids, till.pk, till.store_id, till.pk, earn_account, expires_on],
        )
        cur.execute(
            "UPDATE loyalty_memberbalance SET credits_posted = credits_posted + %s WHERE account_id = ANY(%s)",
            [7 * per_account, account_ids],
        )
