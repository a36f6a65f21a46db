"""Benchmark of voucher redemption at the till on PostgreSQL (``make bench``; not a test).

Through gunicorn on 127.0.0.1 (2 workers, persistent database connections: bench_ledger's
``http_server``), ``--clients`` tills (default 4) in one store redeem vouchers at once,
each from its own process, for ``--seconds``:

- seeded first: the tills, one cashier per till (role Cashier, assigned to the store, a
  confirmed TOTP device), each clocked in over HTTP (``POST /api/v1/pos/shifts``, password
  and the device's current code: one open shift per till), and a reward below the
  cashier's redemption limit;
- each measurement: every client gets its own fresh active vouchers (distinct codes, 5 per
  member, members of its own) and redeems each once by code and loyalty number
  (``POST /api/v1/pos/vouchers/redeem``: signed like every till request, ``X-Staff-Shift``,
  a new Idempotency-Key per request);
- the ledger's plain-SQL baseline (``bench_ledger``'s earn by hand, same worker count) in
  the same run.

The two take turns over ``--rounds`` (baseline first in one round, second in the next);
every measurement is printed, then the means and the ratio redemptions / baseline. A
warm-up (not counted) sizes the voucher pools from its fastest client. Any non-2xx answer
is counted and printed by status and error code, and the command then exits non-zero.

The server runs with the product's settings except the cashier redemption-frequency
alert threshold, raised for the bench (printed): at the default (20 an hour) every
redemption past a cashier's 20th would also write or look up a fraud alert, work a real
till never does at this pace. The count behind the alert still runs. The audit sample
(``audit_sample_percent``) stays at its setting: it is the product's cost per redemption.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import math
import multiprocessing
import secrets
import time
import uuid
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import connection, connections
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from loyalty.api.auth import till_create
from loyalty.kernel.models import Store
from loyalty.ledger.services.core import system_accounts_open
from loyalty.management.commands.bench_ledger import Command as LedgerBench
from loyalty.management.commands.bench_ledger import bench_dsn
from members.management.commands.bench_members import (
    ClientResult,
    clients_round,
    environ_set,
    error_code_of,
    errors_listed,
)
from staffauth.models import StaffUser
from staffauth.roles import ROLES
from vouchers.models import Reward, Voucher
from vouchers.services.codes import code_generate

DURATION = 5.0
CLIENTS = 4
ROUNDS = 2
VOUCHERS_PER_MEMBER = 5
SHIFT_PATH = "/api/v1/pos/shifts"
REDEEM_PATH = "/api/v1/pos/vouchers/redeem"
# Bench only (the server's environment): above any count the bench reaches.
ALERT_THRESHOLD = 1_000_000_000
# Voucher pools are the warm-up's fastest client rate times this, times the duration.
POOL_MARGIN = 3.0
WARMUP_POOL = 1000


class Command(LedgerBench):
    help = "Benchmark voucher redemptions per second (HTTP, concurrent tills) beside the ledger's SQL baseline."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=DURATION, help="Duration of each measurement.")
        parser.add_argument("--rounds", type=int, default=ROUNDS, help="Alternating rounds of redemption and baseline.")
        parser.add_argument("--clients", type=int, default=CLIENTS, help="Concurrent tills (processes).")
        parser.add_argument("--members", type=int, default=1000, help="Members each baseline worker cycles through.")

    def handle(self, *args, seconds, rounds, clients, members, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL (set DATABASE_URL).")
        # What bench_ledger's baseline reads from ``self``: one earn per member anyway.
        self.seconds, self.members_per_worker, self.clients = seconds, members, clients
        self.dsn = bench_dsn()
        run = uuid.uuid4().hex[:8]
        self.store, _ = Store.objects.get_or_create(code="BENCHV", defaults={"name": "Voucher benchmark store"})
        system_accounts_open()  # the baseline's earn account among them (a migration opens them)
        self.tills = [till_create(store=self.store, code=f"V{n}-{run}") for n in range(clients)]
        self.till = self.tills[0][0]  # the baseline's till
        password = secrets.token_urlsafe(24)
        cashiers = [self.cashier_create(f"bench-cashier-{run}-{n}", password) for n in range(clients)]
        self.reward = Reward.objects.create(
            name=f"Bench voucher {run}", kind=Reward.Kind.FIXED_VALUE, value_minor=500, points_price=100, valid_days=30
        )
        limit = settings.ROLE_LIMITS.get("redeem_below", {}).get("cashier")
        if limit is not None and self.reward.points_price >= limit:
            raise CommandError("the cashier's redemption limit is below the bench reward's price")

        self.stdout.write(
            f"  bench-only server setting: VOUCHER_CASHIER_REDEMPTIONS_ALERT={ALERT_THRESHOLD} (product default "
            f"{settings.VOUCHERS.get('cashier_redemptions_alert')}: past it every redemption also raises or finds "
            "a fraud alert); audit sample left at "
            f"{settings.VOUCHERS.get('audit_sample_percent')}%"
        )
        errors: Counter = Counter()
        samples: dict[str, list[float]] = {"vouchers": [], "sql": []}
        server = self.http_server()  # reads the environment when it starts
        try:
            with environ_set(VOUCHER_CASHIER_REDEMPTIONS_ALERT=str(ALERT_THRESHOLD)):
                self.port = server.__enter__()
        except BaseException:
            if getattr(server, "proc", None) is not None:  # started, but never answered
                server.__exit__(None, None, None)
            raise
        try:
            self.shifts = [
                self.clock_in(till, secret, cashier, password)
                for (till, secret), cashier in zip(self.tills, cashiers, strict=True)
            ]
            self.stdout.write(f"  {clients} tills, {clients} cashiers clocked in, {seconds:g} s per measurement")
            # Warm-up (not counted): both gunicorn workers loaded, code paths warmed, and
            # the rate that sizes the voucher pools.
            self.pool = WARMUP_POOL
            warm = self.measure("warm-up: redeem", errors, stop_early=True)
            if errors:
                raise CommandError(f"the warm-up failed: {errors_listed(errors)}")
            self.pool = max(math.ceil(warm["fastest"] * seconds * POOL_MARGIN) + 20, 50)
            self.stdout.write(f"  voucher pools: {self.pool} vouchers per till per round")
            for round_no in range(rounds):
                order = ["sql", "vouchers"] if round_no % 2 == 0 else ["vouchers", "sql"]
                for name in order:
                    label = f"round {round_no + 1}: "
                    if name == "sql":
                        with connection.cursor() as cursor:  # as bench_ledger settles it
                            cursor.execute("VACUUM ANALYZE")
                        samples[name].append(self.run(f"{label}plain SQL", clients, self.sql_worker))
                    else:
                        samples[name].append(self.measure(f"{label}redeem", errors)["rate"])
        finally:
            server.__exit__(None, None, None)

        means = {name: sum(rates) / len(rates) for name, rates in samples.items()}
        self.stdout.write(
            self.style.MIGRATE_HEADING(
                f"\nVoucher redemption throughput ({clients} tills, per second, mean of {rounds} rounds)"
            )
        )
        self.stdout.write(f"  {'path':<34}" + "".join(f"{f'round {n + 1}':>10}" for n in range(rounds)) + "      mean")
        labels = {"vouchers": "HTTP voucher redemptions", "sql": f"ledger baseline (plain SQL, {clients} w.)"}
        for name, label in labels.items():
            self.stdout.write(
                f"  {label:<34}" + "".join(f"{r:>10.0f}" for r in samples[name]) + f"{means[name]:>10.0f}"
            )
        ratio = means["vouchers"] / means["sql"] if means["sql"] else 0.0
        self.stdout.write(f"  redemptions / baseline: {ratio:.1%}")
        if errors:
            raise CommandError(f"{sum(errors.values())} redemptions failed: {errors_listed(errors)}")

    # --- seeding --------------------------------------------------------------------------

    def cashier_create(self, username: str, password: str) -> StaffUser:
        user = StaffUser.objects.create_user(username=username, password=password)
        user.groups.add(Group.objects.get(name=ROLES["cashier"].name))
        user.stores.add(self.store)
        TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        return user

    def clock_in(self, till, secret: str, cashier: StaffUser, password: str) -> str:
        """The shift token, from the till API (password and the device's current code)."""
        device = TOTPDevice.objects.get(user=cashier, confirmed=True)
        code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
        body = {"username": cashier.username, "password": password, "otp": code}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            status, payload = _post(conn, till.key_id, secret, SHIFT_PATH, body, {})
        finally:
            conn.close()
        if status != 201:
            raise CommandError(f"clock-in refused: {status} {error_code_of(payload)}")
        return json.loads(payload)["token"]

    def vouchers_fresh(self, count: int) -> list[tuple[str, str]]:
        """``count`` active goodwill vouchers of the bench reward on new members
        (``VOUCHERS_PER_MEMBER`` each): (code, loyalty number)."""
        members = self.fresh_members(math.ceil(count / VOUCHERS_PER_MEMBER))
        now = timezone.now()
        vouchers = Voucher.objects.bulk_create([
            Voucher(
                code=code_generate(), reward=self.reward, member=members[n // VOUCHERS_PER_MEMBER],
                source=Voucher.Source.GOODWILL, points_paid=0, issue_reason="bench",
                issued_at=now, expires_at=now + timedelta(days=self.reward.valid_days),
            )
            for n in range(count)
        ])  # fmt: skip
        return [(v.code, v.member.loyalty_number) for v in vouchers]

    # --- one measurement ------------------------------------------------------------------

    def measure(self, label: str, errors: Counter, *, stop_early: bool = False) -> dict:
        """Every till in its own process on its own ``self.pool`` new vouchers, started
        together for ``self.seconds``. Prints and returns the rate (redemptions per second;
        non-2xx answers are counted in ``errors``, not in the rate)."""
        pools = [self.vouchers_fresh(self.pool) for _ in self.tills]
        context = multiprocessing.get_context("fork")
        barrier, results = context.Barrier(self.clients + 1), context.Queue()
        connections.close_all()  # the clients talk HTTP only

        def child(till, secret, shift, pool):
            try:
                barrier.wait(timeout=600)
                results.put(self.client(till.key_id, secret, shift, pool, time.monotonic() + self.seconds))
            except BaseException as exc:
                barrier.abort()
                results.put(exc)
                raise

        processes = [
            context.Process(target=child, args=(till, secret, shift, pool))
            for (till, secret), shift, pool in zip(self.tills, self.shifts, pools, strict=True)
        ]
        rates, exhausted = clients_round(
            processes, barrier=barrier, results=results, seconds=self.seconds, label=label, errors=errors,
            line=lambda ok, rate: f"  {label:<24} {self.clients} till(s): {ok:>6} redemptions, {rate:8.0f}/s",
            write=self.stdout.write,
        )  # fmt: skip
        if exhausted and not stop_early:
            raise CommandError(f"a till ran out of vouchers before the time was up ({label})")
        return rates

    def client(self, key_id: str, secret: str, shift: str, pool: list[tuple[str, str]], stop: float) -> ClientResult:
        """Redeem each voucher of ``pool`` once until ``stop``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        result, started, pending = ClientResult(), time.monotonic(), iter(pool)
        while time.monotonic() < stop:
            voucher = next(pending, None)
            if voucher is None:
                result.exhausted = True
                break
            code, loyalty_number = voucher
            status, payload = _post(
                conn, key_id, secret, REDEEM_PATH, {"code": code, "loyalty_number": loyalty_number},
                {"X-Staff-Shift": shift, "Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
            if status == 201:
                result.ok += 1
            else:
                result.errors[(status, error_code_of(payload))] += 1
        result.elapsed = time.monotonic() - started
        conn.close()
        return result


def _post(conn, key_id: str, secret: str, path: str, body: dict, headers: dict) -> tuple[int, bytes]:
    """A signed till request (``loyalty.api.auth``): (status, body)."""
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()))
    message = f"{timestamp}\nPOST\n{path}\n".encode() + raw
    conn.request(
        "POST",
        path,
        body=raw,
        headers={
            "Content-Type": "application/json",
            "X-Till-Key": key_id,
            "X-Timestamp": timestamp,
            "X-Signature": hmac.new(secret.encode(), message, hashlib.sha256).hexdigest(),
            **headers,
        },
    )
    response = conn.getresponse()
    return response.status, response.read()
