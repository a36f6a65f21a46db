"""Benchmark of the member sign-in endpoints on PostgreSQL (``make bench``; not a test).

Through gunicorn on 127.0.0.1 (2 workers, persistent database connections, as
``bench_ledger`` serves the till API), with ``--clients`` concurrent clients (processes,
default 4), each for ``--seconds``, prints requests per second of:

- ``POST /api/v1/auth/otp/verify``: purpose ``login``, channel ``app``, each request on a
  challenge of its own with its known code (the limits allow 5 codes per number per hour
  and 3 guesses per code), from a device the member already signed in from (so no
  new-device alert is part of the work);
- ``POST /api/v1/auth/refresh``: each client chains its own sessions' refresh tokens
  (every refresh rotates the token);
- the baseline: a DRF endpoint of the same shape (strict JSON in, JSON out, no-store)
  that touches no database, served by the same gunicorn in the same run
  (``members.management.bench_urls``, bench-only).

The three take turns (baseline first in one round, last in the next); every round is
printed, then the means and each endpoint's ratio to the baseline. Challenges come from
the real service (``members.services.otp.otp_request``, codes sent inline to the in-memory SMS
backend) and sessions from ``members.services.sessions.session_start``, created by each client
before the clients start together. A short verify warm-up sizes the challenge pools.
Any non-2xx answer is counted, printed (status and error code) and makes the command
exit non-zero.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections

from loyalty.management.commands.bench_ledger import Command as LedgerBench
from loyalty.notifications import LocmemSmsBackend
from members.management.bench_urls import BASELINE_PATH
from members.services.membership import member_create
from members.services.otp import otp_request
from members.services.pii import InvalidMemberData
from members.services.sessions import session_start

DURATION = 5.0
CLIENTS = 4
ROUNDS = 2
SESSIONS = 20
WARMUP_MEMBERS = 20
VERIFY_PATH = "/api/v1/auth/otp/verify"
REFRESH_PATH = "/api/v1/auth/refresh"
CODE = re.compile(r"\b(\d{6})\b")
# Challenge pools are the warm-up's fastest client rate times this, times the duration.
POOL_MARGIN = 3.0


@dataclass
class ClientResult:
    ok: int = 0
    errors: Counter = field(default_factory=Counter)  # (status, error code) -> count
    elapsed: float = 0.0
    exhausted: bool = False  # ran out of challenges or live refresh chains before the time was up


class Command(BaseCommand):
    help = "Benchmark OTP verify and token refresh over HTTP beside a no-database DRF baseline."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=DURATION, help="Duration of each measurement.")
        parser.add_argument("--rounds", type=int, default=ROUNDS, help="Alternating rounds of the three endpoints.")
        parser.add_argument("--clients", type=int, default=CLIENTS, help="Concurrent clients (processes).")
        parser.add_argument("--sessions", type=int, default=SESSIONS, help="Refresh chains per client.")
        parser.add_argument(
            "--warmup-members", type=int, default=WARMUP_MEMBERS, help="Members per client in the verify warm-up."
        )

    def handle(self, *args, seconds, rounds, clients, sessions, warmup_members, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL (set DATABASE_URL).")
        # In this process only (the server keeps its own settings): codes are sent here,
        # at once, to the in-memory backend, where the seeding reads them back; the
        # alert of each seeded device's first sign-in stays queued in the outbox.
        settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "otp_sms_delivery": "inline"}
        settings.SMS_BACKEND = "loyalty.notifications.LocmemSmsBackend"
        settings.NOTIFICATIONS_DELIVER_ON_COMMIT = False
        self.seconds, self.clients, self.sessions = seconds, clients, sessions
        # Disjoint blocks of Malaysian mobile numbers (+6012 and 7 digits), one per client
        # and measurement, from a random start so that a rerun on the same database
        # mostly meets free numbers (a taken one is skipped).
        self.next_block = random.randrange(0, 9_000_000, 10_000)  # noqa: S311 (not a secret)

        endpoints = {
            "baseline": ("baseline (no database)", self.baseline_prepare, self.baseline_client),
            "verify": ("POST auth/otp/verify", self.verify_prepare, self.verify_client),
            "refresh": ("POST auth/refresh", self.refresh_prepare, self.refresh_client),
        }
        samples: dict[str, list[float]] = {name: [] for name in endpoints}
        errors: Counter = Counter()
        base = settings.SETTINGS_MODULE
        server = LedgerBench.http_server(self)  # reads the environment when it starts
        try:
            with environ_set(DJANGO_SETTINGS_MODULE="members.management.bench_settings", BENCH_BASE_SETTINGS=base):
                port = server.__enter__()
        except BaseException:
            if getattr(server, "proc", None) is not None:  # started, but never answered
                server.__exit__(None, None, None)
            raise
        try:
            self.port = port
            self.wait_ready(workers=2)  # as bench_ledger starts it
            self.stdout.write(f"  {clients} clients, {seconds:g} s per measurement, {rounds} round(s)")
            # Warm-up (not counted): connections opened, code paths warmed, and the rate
            # that sizes the verify pools.
            self.verify_pool = warmup_members * 5
            warm = self.measure("warm-up: verify", self.verify_prepare, self.verify_client, errors, stop_early=True)
            if errors:
                raise CommandError(f"the warm-up failed: {errors_listed(errors)}")
            self.verify_pool = max(math.ceil(warm["fastest"] * seconds * POOL_MARGIN) + 10, self.verify_pool)
            self.stdout.write(f"  verify pools: {self.verify_pool} challenges per client per round")
            with connection.cursor() as cursor:  # statistics for the seeded tables
                cursor.execute("VACUUM ANALYZE")
            for round_no in range(rounds):
                order = list(endpoints) if round_no % 2 == 0 else list(endpoints)[::-1]
                for name in order:
                    label, prepare, client = endpoints[name]
                    figure = self.measure(f"round {round_no + 1}: {label}", prepare, client, errors)
                    samples[name].append(figure["rate"])
        finally:
            server.__exit__(None, None, None)

        means = {name: sum(rates) / len(rates) for name, rates in samples.items()}
        self.stdout.write(
            self.style.MIGRATE_HEADING(
                f"\nMember sign-in throughput (requests per second, {clients} clients, mean of {rounds} rounds)"
            )
        )
        rounds_header = "".join(f"{f'round {n + 1}':>10}" for n in range(rounds))
        self.stdout.write(f"  {'endpoint':<24}{rounds_header}{'mean':>10}  vs baseline")
        for name, (label, _, _) in endpoints.items():
            figures = "".join(f"{rate:>10.0f}" for rate in samples[name])
            ratio = means[name] / means["baseline"] if means["baseline"] else 0.0
            self.stdout.write(f"  {label:<24}{figures}{means[name]:>10.0f}  {ratio:>10.1%}")
        if errors:
            raise CommandError(f"{sum(errors.values())} requests failed: {errors_listed(errors)}")

    def wait_ready(self, *, workers: int, limit: float = 60.0) -> None:
        """Until every gunicorn worker has answered (each loads the application after
        the port is open): the first measurement must not wait for a worker's start."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        body = json.dumps(self.baseline_prepare(0)).encode()
        seen, deadline = set(), time.monotonic() + limit
        while len(seen) < workers and time.monotonic() < deadline:
            conn.request("POST", BASELINE_PATH, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise CommandError(f"the baseline endpoint answered {response.status} {error_code_of(payload)}")
            seen.add(json.loads(payload)["worker"])
        conn.close()

    # --- one measurement ------------------------------------------------------------------

    def measure(self, label: str, prepare, client, errors: Counter, *, stop_early: bool = False) -> dict:
        """``self.clients`` processes, each preparing its own data (members, challenges,
        sessions) and then, all together, calling the endpoint for ``self.seconds``.
        Prints and returns the rate (requests per second; non-2xx answers not counted)."""
        context = multiprocessing.get_context("fork")
        barrier, results = context.Barrier(self.clients + 1), context.Queue()
        blocks = [self.next_block + 10_000 * n for n in range(self.clients)]
        self.next_block = (self.next_block + 10_000 * self.clients) % 9_000_000
        connections.close_all()  # children open their own connections

        def child(block):
            try:
                work = prepare(block)
                connections.close_all()  # the clients talk HTTP only
                barrier.wait(timeout=600)
                results.put(client(work, time.monotonic() + self.seconds))
            except BaseException as exc:
                barrier.abort()
                results.put(exc)
                raise

        processes = [context.Process(target=child, args=(block,)) for block in blocks]
        rates, exhausted = clients_round(
            processes, barrier=barrier, results=results, seconds=self.seconds, label=label, errors=errors,
            line=lambda ok, rate: f"  {label:<40} {ok:>7} requests {rate:>8.0f}/s", write=self.stdout.write,
        )  # fmt: skip
        if exhausted and not stop_early:
            raise CommandError(
                f"a client ran out of challenges or live sessions before the time was up ({label}); "
                f"errors so far: {errors_listed(errors) or 'none'}"
            )
        return rates

    # --- data, prepared in each client before the clock starts ---------------------------

    def members_signed_in(self, block: int, count: int) -> list[tuple[str, str, str]]:
        """``count`` new members (phone numbers from ``block``), each signed in once on the
        app from a device of their own: (phone, device fingerprint, refresh token)."""
        signed_in, number = [], block
        while len(signed_in) < count:
            phone, number = f"+6012{number:07d}", number + 1
            try:
                member = member_create(phone=phone)
            except InvalidMemberData:  # taken by an earlier run on this database
                continue
            fingerprint = f"bench-device-{member.member_id}"
            tokens = session_start(member=member, channel="app", device_fingerprint=fingerprint, device_label="Bench")
            signed_in.append((phone, fingerprint, tokens.refresh_token))
        return signed_in

    def verify_prepare(self, block: int) -> list[dict]:
        """``self.verify_pool`` login challenges with their codes, 5 per member (the hourly
        limit), read back from the SMS the service sent."""
        bodies = []
        for phone, fingerprint, _ in self.members_signed_in(block, math.ceil(self.verify_pool / 5)):
            for _ in range(5):
                LocmemSmsBackend.outbox.clear()
                challenge = otp_request(phone=phone, purpose="login")
                (sms,) = LocmemSmsBackend.outbox
                bodies.append({
                    "challenge_id": str(challenge.challenge_id), "phone": phone,
                    "code": CODE.search(sms["text"]).group(1), "purpose": "login", "channel": "app",
                    "device": {"fingerprint": fingerprint, "label": "Bench"},
                })  # fmt: skip
        LocmemSmsBackend.outbox.clear()
        return bodies[: self.verify_pool]

    def refresh_prepare(self, block: int) -> list[dict]:
        return [
            {"refresh_token": token, "device_fingerprint": fingerprint}
            for _, fingerprint, token in self.members_signed_in(block, self.sessions)
        ]

    def baseline_prepare(self, block: int) -> dict:
        return {"refresh_token": "x" * 43, "device_fingerprint": "bench-baseline-device"}

    # --- clients (HTTP only) ---------------------------------------------------------------

    def verify_client(self, bodies: list[dict], stop: float) -> ClientResult:
        pending = iter(bodies)

        def next_body(_result):
            return next(pending, None)

        return self.client(VERIFY_PATH, next_body, stop, lambda body, answer: None)

    def refresh_client(self, chains: list[dict], stop: float) -> ClientResult:
        """Round-robin over the client's sessions; each answer's refresh token is the
        next request's for that session. A refused refresh drops its session."""
        live = list(chains)
        turn = [0]

        def next_body(_result):
            if not live:
                return None
            turn[0] = (turn[0] + 1) % len(live)
            return live[turn[0]]

        def answered(body, answer):
            if answer is None:
                live.remove(body)
            else:
                body["refresh_token"] = answer["refresh_token"]

        return self.client(REFRESH_PATH, next_body, stop, answered)

    def baseline_client(self, body: dict, stop: float) -> ClientResult:
        return self.client(BASELINE_PATH, lambda _result: body, stop, lambda body, answer: None)

    def client(self, path: str, next_body, stop: float, answered) -> ClientResult:
        """POST bodies to ``path`` until ``stop``; ``answered(body, json or None)`` after
        each (None for a non-2xx answer, which is counted by status and error code)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        result, started = ClientResult(), time.monotonic()
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < stop:
            body = next_body(result)
            if body is None:
                result.exhausted = True
                break
            conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if 200 <= response.status < 300:
                result.ok += 1
                answered(body, json.loads(payload))
            else:
                result.errors[(response.status, error_code_of(payload))] += 1
                answered(body, None)
        result.elapsed = time.monotonic() - started
        conn.close()
        return result


def clients_run(processes, *, barrier, results, seconds: float, label: str) -> list[ClientResult]:
    """Start the client processes, release them together (``barrier``), and collect one
    ``ClientResult`` from each (``results``); a client's exception fails the run."""
    for process in processes:
        process.start()
    with contextlib.suppress(Exception):  # a child that failed breaks the barrier; its error follows
        barrier.wait(timeout=600)
    outcomes = [results.get(timeout=seconds + 600) for _ in processes]
    for process in processes:
        process.join()
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        raise CommandError(f"a client failed ({label}): {failures[0]!r}")
    return outcomes


def clients_tally(outcomes: list[ClientResult]) -> tuple[int, float, Counter]:
    """Successes, their rate over the slowest client's time, and the errors counted."""
    ok = sum(o.ok for o in outcomes)
    errors = Counter()
    for outcome in outcomes:
        errors.update(outcome.errors)
    return ok, ok / max(o.elapsed for o in outcomes), errors


def clients_round(
    processes, *, barrier, results, seconds: float, label: str, errors: Counter, line, write
) -> tuple[dict, bool]:
    """One measured round: run the clients (``clients_run``), add their errors to
    ``errors``, ``write`` the round's ``line(ok, rate)`` (with its errors, if any).
    Returns the rates ({"rate", "fastest"}) and whether a client ran out of work."""
    outcomes = clients_run(processes, barrier=barrier, results=results, seconds=seconds, label=label)
    ok, rate, round_errors = clients_tally(outcomes)
    errors.update(round_errors)
    text = line(ok, rate)
    if round_errors:
        text += f"  ERRORS: {errors_listed(round_errors)}"
    write(text)
    rates = {"rate": rate, "fastest": max(o.ok / o.elapsed for o in outcomes)}
    return rates, any(o.exhausted for o in outcomes)


def errors_listed(errors: Counter) -> str:
    return ", ".join(f"{count} x {status} {code}" for (status, code), count in errors.most_common())


def error_code_of(payload: bytes) -> str:
    """The API's stable error code (never the message or the body: they are not printed)."""
    try:
        return str(json.loads(payload)["error"]["code"])[:40]
    except (ValueError, KeyError, TypeError):
        return "-"


@contextlib.contextmanager
def environ_set(**values: str):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
