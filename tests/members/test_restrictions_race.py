"""A freeze and a redemption at once (FRAUD.md §6 "Check vs write"): no redemption
commits after the freeze has committed. Real threads and committed transactions; the
ledger's spend lock share-locks the member row the freeze writes under its own lock."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from loyalty.ledger import operations as ops
from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.services import core
from members.models import Member
from members.services.restrictions import member_spend_freeze
from tests.concurrency import race
from tests.points import points_giver

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("velocity_off")]


@pytest.fixture
def funded(till_actor):
    member = Member.objects.create()
    points_giver(till_actor)(member, 10_000)
    return member


@pytest.fixture
def analyst(staff_by_role):
    return staff_by_role["fraud_analyst"]


def test_a_redemption_waiting_on_a_freeze_is_refused_when_it_commits(funded, analyst, till_actor):
    """The freeze holds the member row; a redemption that started its lock query before
    the freeze committed reads the member as the freeze left it (not its stale snapshot)."""
    frozen = threading.Event()

    def freeze():
        with transaction.atomic():
            member_spend_freeze(member=funded, actor=analyst, reason="race")
            frozen.set()
            time.sleep(0.4)  # the redemption queues behind the member row meanwhile
        connection.close()

    def redeem():
        assert frozen.wait(10)
        return ops.points_redeem(member=funded, points=10, actor=till_actor, idempotency_key="late")

    _, outcome = race(freeze, redeem)
    assert (outcome.status_code, outcome.error_code) == (403, "account_restricted")
    assert not LedgerOperation.objects.filter(member=funded, kind="redeem").exists()


def test_a_freeze_waits_for_a_redemption_in_flight(funded, analyst, till_actor):
    """A redemption holding the lock commits first; the freeze, waiting on the member row,
    then sees it: the redemption committed before the freeze, never after."""
    in_flight = threading.Event()
    seen_by_freeze: list[bool] = []

    def pause():
        if threading.current_thread().name == "redeemer":
            in_flight.set()
            time.sleep(0.4)

    def redeem():
        threading.current_thread().name = "redeemer"
        return ops.points_redeem(member=funded, points=10, actor=till_actor, idempotency_key="early")

    def freeze():
        assert in_flight.wait(10)
        with transaction.atomic():
            member_spend_freeze(member=funded, actor=analyst, reason="race")
            seen_by_freeze.append(LedgerOperation.objects.filter(member=funded, kind="redeem").exists())
        connection.close()

    core.FAULT_HOOKS["after_transfer_insert"] = pause
    try:
        outcome, _ = race(redeem, freeze)
    finally:
        core.FAULT_HOOKS.pop("after_transfer_insert", None)
    assert outcome.ok
    assert seen_by_freeze == [True]


def test_storm_of_redemptions_and_one_freeze(funded, analyst, till_actor):
    def freeze():
        member_spend_freeze(member=funded, actor=analyst, reason="storm")
        connection.close()

    outcomes = race(
        freeze,
        *[
            (lambda n=n: ops.points_redeem(member=funded, points=10, actor=till_actor, idempotency_key=f"s{n}"))
            for n in range(8)
        ],
    )
    refused = {o.error_code for o in outcomes[1:] if not o.ok}
    assert refused <= {"account_restricted"}
    assert LedgerOperation.objects.filter(member=funded, kind="redeem").count() == sum(o.ok for o in outcomes[1:])
    after = ops.points_redeem(member=funded, points=10, actor=till_actor, idempotency_key="after")
    assert after.error_code == "account_restricted"
