"""Races on PostgreSQL with real threads and committed transactions (LEDGER.md §4).

A plain TestCase never commits, so nothing can race inside it: these tests use
``transaction=True`` and one connection per thread, started together at a barrier.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.ledger import operations as ops
from loyalty.ledger.models import LedgerOperation, MemberBalance, PointsLot, Transfer
from loyalty.ledger.services import core
from loyalty.ledger.verify import ledger_verify
from members.models import Member
from tests.concurrency import race
from tests.db import rewriting_history
from tests.loyalty.conftest import assert_ledger_verified as verified
from tests.loyalty.conftest import available
from tests.reporting import add_figure

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("velocity_off")]

THREADS = 8


@pytest.fixture
def funded(member, till_actor):
    def fund(points, *, member=member, days_ago=0):
        outcome = ops.points_earn(
            member=member, points=points, receipt_ref=f"F-{member.pk}-{points}-{days_ago}-{time.monotonic_ns()}",
            actor=till_actor, idempotency_key=f"fund-{time.monotonic_ns()}",
            effective_at=timezone.now() - timedelta(days=days_ago),
        )  # fmt: skip
        assert outcome.ok
        return outcome

    return fund


@pytest.mark.parametrize(
    ("operation", "balance_field", "left"),
    [
        pytest.param(ops.points_redeem, "available", 10, id="redemptions"),
        pytest.param(ops.points_hold, "debits_pending", 90, id="holds"),
    ],
)
def test_overdraw_race_exactly_three_of_eight_succeed(member, till_actor, funded, operation, balance_field, left):
    """Redemptions take the points, holds set them aside: either way three of eight fit in 100."""
    funded(100)
    outcomes = race(*[
        (lambda n=n: operation(member=member, points=30, actor=till_actor, idempotency_key=f"race-{n}"))
        for n in range(THREADS)
    ])  # fmt: skip
    assert Counter(o.status_code for o in outcomes) == {201: 3, 422: 5}
    assert getattr(MemberBalance.objects.get(account__member=member), balance_field) == left
    verified()


def test_duplicate_storm_one_write_identical_responses(member, till_actor):
    def send(points=40):
        return ops.points_earn(
            member=member, points=points, receipt_ref="STORM", actor=till_actor, idempotency_key="storm"
        )

    outcomes = race(*[send] * THREADS)
    assert len({(o.status_code, str(o.body)) for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert LedgerOperation.objects.count() == 1 and available(member) == 40

    reused = race(*[(lambda n=n: send(41 + n)) for n in range(THREADS)])
    assert {o.error_code for o in reused} == {"idempotency_key_reused"}
    assert LedgerOperation.objects.count() == 1 and Transfer.objects.count() == 1
    verified()


def test_expiry_racing_a_redemption_spends_or_expires_never_both(member, till_actor, funded):
    for round_ in range(4):
        funded(100, days_ago=400)
        expired, redeemed = race(
            lambda: ops.points_expire_due(),
            lambda r=round_: ops.points_redeem(member=member, points=100, actor=till_actor, idempotency_key=f"x{r}"),
        )
        assert (expired == 100) != redeemed.ok, (expired, redeemed.body)
        assert available(member) == 0
    verified()


def test_expiry_jobs_running_concurrently_expire_once(store_a, till_actor):
    members = [Member.objects.create(home_store=store_a) for _ in range(6)]
    for m in members:
        for n in range(3):
            ops.points_earn(
                member=m, points=10 + n, receipt_ref=f"old-{m.pk}-{n}", actor=till_actor,
                idempotency_key=f"old-{m.pk}-{n}", effective_at=timezone.now() - timedelta(days=400),
            )  # fmt: skip
    results = race(*[ops.points_expire_due] * 4)
    assert sum(results) == 6 * (10 + 11 + 12)
    assert LedgerOperation.objects.filter(kind="expire").count() == 6
    assert not PointsLot.objects.filter(remaining__gt=0).exists()
    verified()


def test_two_concurrent_returns_of_one_purchase(member, till_actor, funded):
    purchase = funded(100)
    receipt = purchase.body["receipt_ref"]
    outcomes = race(*[
        (lambda n=n: ops.points_earn_reverse(member=member, receipt_ref=receipt, points=60, actor=till_actor, idempotency_key=f"ret{n}"))
        for n in range(2)
    ])  # fmt: skip
    assert sorted(o.status_code for o in outcomes) == [201, 422]
    assert available(member) == 40
    verified()


def test_sweeper_racing_a_capture_exactly_one_wins(member, till_actor, funded):
    funded(100)
    hold_id = ops.points_hold(member=member, points=50, actor=till_actor, idempotency_key="h").body["hold_id"]
    with rewriting_history():
        LedgerOperation.objects.filter(pk=hold_id).update(hold_expires_at=timezone.now() + timedelta(milliseconds=200))
    time.sleep(0.25)  # lapsed: the capture must lose to the lapse whoever runs first
    voided, capture = race(
        lambda: ops.points_holds_lapse(),
        lambda: ops.points_capture(hold_id=hold_id, actor=till_actor, idempotency_key="c"),
    )
    assert voided == 1 and capture.error_code == "hold_not_open"
    assert available(member) == 100
    # And with a live hold: capture and void race, exactly one settles it.
    hold_id = ops.points_hold(member=member, points=50, actor=till_actor, idempotency_key="h2").body["hold_id"]
    capture, void = race(
        lambda: ops.points_capture(hold_id=hold_id, actor=till_actor, idempotency_key="c2"),
        lambda: ops.points_void(hold_id=hold_id, actor=till_actor, idempotency_key="v2"),
    )
    assert sorted([capture.ok, void.ok]) == [False, True]
    verified()


@pytest.mark.parametrize("point", ["after_key_claimed", "after_transfer_insert", "before_commit", "after_commit"])
def test_crash_points_then_retry_writes_exactly_once(member, till_actor, point):
    def crash():
        raise ConnectionError(f"injected at {point}")

    core.FAULT_HOOKS[point] = crash
    try:
        with pytest.raises(ConnectionError):
            ops.points_earn(member=member, points=70, receipt_ref="CRASH", actor=till_actor, idempotency_key="crash")
    finally:
        core.FAULT_HOOKS.pop(point)
    retry = ops.points_earn(member=member, points=70, receipt_ref="CRASH", actor=till_actor, idempotency_key="crash")
    assert retry.status_code == 201
    assert retry.replayed == (point == "after_commit")  # only then had the first attempt committed
    assert LedgerOperation.objects.count() == 1 and available(member) == 70
    verified()


@pytest.mark.slow
def test_bank_test_conservation_and_no_overdraw_under_load(store_a, till_actor):
    """Jepsen-style: workers move points among a few members while a reader checks
    every invariant on consistent snapshots; then the whole ledger is verified."""
    members = [Member.objects.create(home_store=store_a) for _ in range(6)]
    for m in members:
        assert ops.points_earn(
            member=m, points=500, receipt_ref=f"seed-{m.pk}", actor=till_actor, idempotency_key=f"seed-{m.pk}"
        ).ok
    stop = time.monotonic() + 4.0
    counts = Counter()
    snapshot_problems: list = []

    def worker(seed):
        rng = random.Random(seed)
        n = 0
        while time.monotonic() < stop:
            n += 1
            m = rng.choice(members)
            key = f"w{seed}-{n}"
            op = rng.choice(["earn", "redeem", "hold", "return"])
            if op == "earn":
                outcome = ops.points_earn(
                    member=m, points=rng.randint(1, 80), receipt_ref=key, actor=till_actor, idempotency_key=key
                )
            elif op == "redeem":
                outcome = ops.points_redeem(member=m, points=rng.randint(1, 120), actor=till_actor, idempotency_key=key)
                if outcome.ok and rng.random() < 0.3:
                    ops.points_redeem_reverse(
                        redemption_id=outcome.body["operation_id"],
                        points=1,
                        actor=till_actor,
                        idempotency_key=key + "f",
                    )
            elif op == "hold":
                outcome = ops.points_hold(member=m, points=rng.randint(1, 120), actor=till_actor, idempotency_key=key)
                if outcome.ok:
                    settle = rng.choice([ops.points_capture, ops.points_void])
                    settle(hold_id=outcome.body["hold_id"], actor=till_actor, idempotency_key=key + "s")
            else:
                outcome = ops.points_earn_reverse(
                    member=m,
                    receipt_ref=f"seed-{m.pk}",
                    points=rng.randint(1, 30),
                    actor=till_actor,
                    idempotency_key=key,
                )
            counts[(op, outcome.status_code)] += 1
        return n

    def reader():
        snapshots = 0
        while time.monotonic() < stop:
            report = ledger_verify()
            snapshots += 1
            if not report.ok:
                snapshot_problems.extend(report.problems)
        return snapshots

    results = race(*[(lambda s=s: worker(s)) for s in range(4)], reader)
    assert not snapshot_problems, snapshot_problems[:5]
    assert results[-1] >= 3 and sum(results[:-1]) > 50, (results, counts)
    assert all(b.available >= 0 for b in MemberBalance.objects.all())
    succeeded = {op for (op, status), n in counts.items() if status == 201}
    assert succeeded == {"earn", "redeem", "hold", "return"}, counts  # every kind really ran
    add_figure("bank test operations", sum(results[:-1]))
    add_figure("bank test consistent snapshots verified", results[-1])
    verified()
    assert PointsLot.objects.exists()


def test_a_serialization_failure_is_retried_never_reported_as_a_refusal(member, till_actor, owner_role):
    """A test-only trigger makes the first lot insert fail with SQLSTATE 40001."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE test_fail_once")
        cursor.execute(
            """CREATE FUNCTION test_fail_once() RETURNS trigger AS $$
            BEGIN
                IF nextval('test_fail_once') = 1 THEN
                    RAISE EXCEPTION 'injected' USING ERRCODE = 'serialization_failure';
                END IF;
                RETURN NEW;
            END; $$ LANGUAGE plpgsql"""
        )
        cursor.execute(
            "CREATE TRIGGER test_fail_once BEFORE INSERT ON loyalty_pointslot FOR EACH ROW EXECUTE FUNCTION test_fail_once()"
        )
    try:
        outcome = ops.points_earn(
            member=member, points=25, receipt_ref="RETRY", actor=till_actor, idempotency_key="retry"
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_fail_once ON loyalty_pointslot")
            cursor.execute("DROP FUNCTION test_fail_once()")
            cursor.execute("SELECT last_value FROM test_fail_once")
            attempts = cursor.fetchone()[0]
            cursor.execute("DROP SEQUENCE test_fail_once")
    assert outcome.status_code == 201 and not outcome.replayed
    assert attempts == 2  # failed once, then retried
    assert LedgerOperation.objects.count() == 1 and available(member) == 25
    verified()
