"""An exact retry gets the saved answer even when the first attempt changed what the
points would be (issue 11, D4).

The till's request is fingerprinted as received; the points are computed by the ledger
under the member's lock. A purchase that moves the member up a tier, retried with the
same Idempotency-Key and body, must be answered from the key (not 422
``idempotency_key_reused``), sequentially and in a storm of concurrent retries.
"""

from __future__ import annotations

import pytest
from django.test import Client

from loyalty.ledger.models import IdempotencyKey, LedgerOperation
from loyalty.ledger.operations import Actor, points_earn
from members.models import Member
from tests.concurrency import race
from tests.loyalty.api.conftest import TillClient
from tests.loyalty.conftest import assert_ledger_verified, available

# 5,000 points at tier 1 (100 %): exactly the tier-2 threshold, where an earn is worth 125 %.
AMOUNT_TO_TIER_2 = 500_000


def purchase(member, receipt="R-TIER", amount=AMOUNT_TO_TIER_2) -> dict:
    return {"loyalty_number": member.loyalty_number, "receipt_number": receipt, "amount_minor": amount}


@pytest.mark.django_db
def test_a_purchase_that_changes_the_tier_retried_gets_the_saved_answer(pos, member):
    first = pos.post("purchases", purchase(member), key="tier-up-1")
    assert first.status_code == 201, first.json()
    assert (first.json()["points"], first.json()["tier"]) == (5000, 2)
    assert Member.objects.get(pk=member.pk).tier == 2

    for _ in range(3):
        again = pos.post("purchases", purchase(member), key="tier-up-1")
        assert (again.status_code, again.content) == (first.status_code, first.content)
        assert again["Idempotency-Replayed"] == "true"

    assert LedgerOperation.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    assert available(member) == 5000
    assert_ledger_verified()


@pytest.mark.django_db
def test_a_return_by_amount_that_changes_the_tier_retried_gets_the_saved_answer(pos, member, till):
    """A purchase recorded without its amount is returned at the member's rate (the tier
    read under the lock); the return takes the member back down a tier, and its retry is
    still the same request."""
    earned = points_earn(
        member=member,
        points=5000,
        receipt_ref=f"{till.store.code}/{till.code}/R-OLD",
        actor=Actor(till=till),
        idempotency_key="old-earn",
    )
    assert earned.ok and Member.objects.get(pk=member.pk).tier == 2
    body = {"loyalty_number": member.loyalty_number, "receipt_number": "R-OLD", "amount_minor": 100_000}

    first = pos.post("returns", body, key="return-1")
    assert first.status_code == 201, first.json()
    assert (first.json()["reversed"], first.json()["tier"]) == (1250, 1)  # 1,000 units at 125 %

    again = pos.post("returns", body, key="return-1")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again["Idempotency-Replayed"] == "true"
    assert LedgerOperation.objects.filter(kind="reverse_earn").count() == 1
    assert available(member) == 3750
    assert_ledger_verified()


@pytest.mark.django_db
def test_the_points_are_priced_at_the_tier_read_under_the_lock(member, till):
    """The service prices the purchase at the member's tier as locked, not as the caller
    loaded it: a stale object (tier 1) of a member now at tier 3 earns at 150 %."""
    from loyalty.ledger.operations import points_earn_purchase  # here: the other tests run without it

    Member.objects.filter(pk=member.pk).update(tier=3)
    outcome = points_earn_purchase(
        member=member, amount_minor=10_000, receipt_ref="K/T/1", actor=Actor(till=till), idempotency_key="p1"
    )
    assert (outcome.status_code, outcome.body["points"]) == (201, 150)
    nothing = points_earn_purchase(
        member=member, amount_minor=99, receipt_ref="K/T/2", actor=Actor(till=till), idempotency_key="p2"
    )
    assert (nothing.status_code, nothing.body["points"], nothing.replayed) == (200, 0, False)
    assert nothing.body["balance"] == {"available": 150, "held": 0, "pending": 0}
    assert not IdempotencyKey.objects.filter(key="p2").exists() and LedgerOperation.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_storm_of_concurrent_retries_of_a_tier_changing_purchase_gets_one_answer(till, member):
    """Eight tills' connections send the same purchase under the same key, three times
    each: the first attempts race for the key, the later ones arrive after the tier
    changed. Every answer is the one success; one operation; credited once."""
    threads, attempts = 8, 3

    def send():
        client = TillClient(Client(), till, till.plain_secret)
        return [client.post("purchases", purchase(member), key="storm-tier") for _ in range(attempts)]

    answers = [response for responses in race(*[send] * threads) for response in responses]

    statuses = [response.status_code for response in answers]
    assert statuses == [201] * threads * attempts, sorted(set(statuses))
    assert len({response.content for response in answers}) == 1
    assert sum("Idempotency-Replayed" not in response for response in answers) == 1
    assert LedgerOperation.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    assert available(member) == 5000 and Member.objects.get(pk=member.pk).tier == 2
    assert_ledger_verified()
