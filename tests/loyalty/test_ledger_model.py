"""Random operation sequences against an in-memory reference model (Hypothesis).

The model is an independent, plain-Python ledger: lots consumed earliest-expiry
first, holds and refunds restoring the exact lots they took (last taken, first
back), returns taking from the returned purchase first, expiry on a fake clock.
After every step the database must agree with the model (balances and every lot)
and every invariant of ``ledger_verify`` must hold. Hypothesis prints the failing
sequence (and ``derandomize`` makes a run reproducible).
"""

from __future__ import annotations

import itertools
import os
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loyalty.kernel.models import Store, Till
from loyalty.ledger import operations as ledger
from loyalty.ledger.models import MemberBalance, PointsLot
from loyalty.ledger.verify import ledger_verify
from members.models import Member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]

_ids = itertools.count(1)


class Model:
    """The reference: lots as [expires_on, remaining, earn_receipt], plus what each
    hold / redemption / purchase took from which lot."""

    def __init__(self):
        self.lots: dict[int, list] = {}  # lot key -> [expires_on, remaining]
        self.pending = 0
        self.takes: dict[str, list[tuple[int, int]]] = {}  # operation -> [(lot, points)] in order taken
        self.purchases: dict[str, dict] = {}  # receipt -> {"lot": key, "earned": n, "returned": n}

    @property
    def available(self) -> int:
        return sum(remaining for _, remaining in self.lots.values())

    def fefo(self, first=None):
        keys = sorted(self.lots, key=lambda k: (self.lots[k][0], k))
        if first is not None and first in self.lots:
            keys.remove(first)
            keys.insert(0, first)
        return keys

    def consume(self, op: str, points: int, first=None):
        taken = []
        for key in self.fefo(first):
            if points == 0:
                break
            take = min(self.lots[key][1], points)
            if take:
                self.lots[key][1] -= take
                taken.append((key, take))
                points -= take
        assert points == 0
        self.takes[op] = taken

    def restore(self, op: str, points: int):
        net: dict[int, int] = {}
        for key, n in self.takes[op]:
            net[key] = net.get(key, 0) + n
        for key in reversed(list(net)):
            give = min(net[key], points)
            if give > 0:
                self.lots[key][1] += give
                points -= give
                self.takes[op].append((key, -give))
        assert points == 0


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.clock = time_machine.travel(timezone.now(), tick=False)
        self.coordinates = self.clock.start()
        self.model = Model()
        self.holds: list[tuple[str, int]] = []
        self.redemptions: list[tuple[str, int]] = []  # (operation id, points still refundable)

    @initialize()
    def open_member(self):
        store = Store.objects.get_or_create(code="HYP", defaults={"name": "Hypothesis"})[0]
        till = Till.objects.get_or_create(
            store=store, code="H1", defaults={"key_id": "hyp-till", "secret_encrypted": "-"}
        )[0]
        self.actor = ledger.Actor(till=till)
        self.member = Member.objects.create(home_store=store)

    def key(self) -> str:
        return f"hyp-{next(_ids)}"

    @rule(points=st.integers(1, 300))
    def earn(self, points):
        receipt = self.key()
        outcome = ledger.points_earn(
            member=self.member, points=points, receipt_ref=receipt, actor=self.actor, idempotency_key=receipt
        )
        assert outcome.status_code == 201, outcome.body
        lot = PointsLot.objects.get(source__operation_id=outcome.body["operation_id"])
        self.model.lots[lot.pk] = [lot.expires_on, points]
        self.model.purchases[receipt] = {"lot": lot.pk, "earned": points, "returned": 0}

    def spend(self, operation, points, id_field):
        """Redeem or hold ``points``: refused when more than available, else taken from the
        lots in the model's order. Returns the new operation's id, or None when refused."""
        outcome = operation(member=self.member, points=points, actor=self.actor, idempotency_key=self.key())
        if points > self.model.available:
            assert outcome.error_code == "insufficient_points"
            return None
        assert outcome.status_code == 201, outcome.body
        self.model.consume(outcome.body[id_field], points)
        return outcome.body[id_field]

    @rule(points=st.integers(1, 400))
    def redeem(self, points):
        operation_id = self.spend(ledger.points_redeem, points, "operation_id")
        if operation_id is not None:
            self.redemptions.append((operation_id, points))

    @rule(points=st.integers(1, 400))
    def hold(self, points):
        hold_id = self.spend(ledger.points_hold, points, "hold_id")
        if hold_id is not None:
            self.model.pending += points
            self.holds.append((hold_id, points))

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def settle(self, data):
        hold_id, held = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        if data.draw(st.booleans()):
            captured = data.draw(st.integers(1, held))
            outcome = ledger.points_capture(
                hold_id=hold_id, points=captured, actor=self.actor, idempotency_key=self.key()
            )
            assert outcome.status_code == 201, outcome.body
            self.model.restore(hold_id, held - captured)
            self.model.takes[outcome.body["operation_id"]] = list(self.model.takes[hold_id])
            self.redemptions.append((outcome.body["operation_id"], captured))
        else:
            outcome = ledger.points_void(hold_id=hold_id, actor=self.actor, idempotency_key=self.key())
            assert outcome.status_code == 201, outcome.body
            self.model.restore(hold_id, held)
        self.model.pending -= held

    @precondition(lambda self: self.redemptions)
    @rule(data=st.data())
    def refund(self, data):
        index = data.draw(st.integers(0, len(self.redemptions) - 1))
        op_id, refundable = self.redemptions[index]
        points = data.draw(st.integers(1, refundable + 1))
        outcome = ledger.points_redeem_reverse(
            redemption_id=op_id, points=points, actor=self.actor, idempotency_key=self.key()
        )
        if points > refundable:
            assert outcome.error_code == "refund_exceeds_redemption"
            return
        assert outcome.status_code == 201, outcome.body
        self.model.restore(op_id, points)
        self.redemptions[index] = (op_id, refundable - points)

    @precondition(lambda self: self.model.purchases)
    @rule(data=st.data())
    def return_purchase(self, data):
        receipt = data.draw(st.sampled_from(sorted(self.model.purchases)))
        purchase = self.model.purchases[receipt]
        left = purchase["earned"] - purchase["returned"]
        points = data.draw(st.integers(1, left + 1))
        outcome = ledger.points_earn_reverse(
            member=self.member, receipt_ref=receipt, points=points, actor=self.actor, idempotency_key=self.key()
        )
        if points > left:
            assert outcome.error_code == "return_exceeds_purchase"
            return
        assert outcome.status_code == 201, outcome.body
        covered = min(points, self.model.available)
        assert (outcome.body["reversed"], outcome.body["shortfall"]) == (covered, points - covered)
        if covered:
            self.model.consume(outcome.body["operation_id"], covered, first=purchase["lot"])
        purchase["returned"] += points

    @rule(days=st.sampled_from([1, 30, 200, 400]))
    def advance_clock_and_expire(self, days):
        self.coordinates.shift(timedelta(days=days))
        # Open holds lapse long before a day passes: the sweeper voids them.
        ledger.points_holds_lapse()
        for hold_id, held in self.holds:
            self.model.restore(hold_id, held)
            self.model.pending -= held
        self.holds.clear()
        today = timezone.localdate()
        expected = sum(r for exp, r in self.model.lots.values() if exp <= today)
        # Other examples' members may have due lots too: count only this member's.
        before = self.available()
        ledger.points_expire_due(as_of=today)
        assert before - self.available() == expected
        for lot in self.model.lots.values():
            if lot[0] <= today:
                lot[1] = 0

    def available(self) -> int:
        balance = MemberBalance.objects.filter(account__member=self.member).first()
        return balance.available if balance else 0

    @invariant()
    def database_agrees_with_the_model(self):
        if not hasattr(self, "member"):
            return
        balance = MemberBalance.objects.filter(account__member=self.member).first()
        available = balance.available if balance else 0
        pending = balance.debits_pending if balance else 0
        assert (available, pending) == (self.model.available, self.model.pending)
        lots = dict(PointsLot.objects.filter(account__member=self.member).values_list("pk", "remaining"))
        assert lots == {key: remaining for key, (_, remaining) in self.model.lots.items()}

    @invariant()
    def every_invariant_holds(self):
        report = ledger_verify()
        assert report.ok, report.problems

    def teardown(self):
        self.clock.stop()


@pytest.mark.slow
def test_random_operation_sequences_match_the_reference_model():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=int(os.environ.get("LEDGER_MODEL_EXAMPLES", "20")),
            stateful_step_count=25,
            derandomize=True,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
