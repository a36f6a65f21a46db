"""Till data and refusal records at the ledger's level (issue 14): refusal records are
written after the ledger's transaction, in their own; the earn path writes the till data
with no extra query; races are unaffected; the fraud detectors' selectors are one query each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.ledger import operations as ops
from loyalty.ledger import selectors
from loyalty.ledger.models import IdempotencyKey, LedgerOperation, LedgerRefusalEvent
from loyalty.ledger.services import core
from loyalty.ledger.tilldata import sku_hash, tender_hash, till_data
from tests.concurrency import race
from tests.loyalty.conftest import assert_ledger_verified

ITEMS = [{"sku": "SKU-1", "qty": 2, "amount_minor": 4000}, {"sku": "SKU-2", "qty": 1, "amount_minor": 1000}]
PAID = till_data(items=ITEMS, tender_ref="tok-A")


def buy(member, actor, receipt, *, till=PAID, amount=5000):
    outcome = ops.points_earn_purchase(
        member=member,
        amount_minor=amount,
        receipt_ref=receipt,
        actor=actor,
        idempotency_key=f"buy-{receipt}",
        till=till,
    )
    assert outcome.status_code == 201, outcome.body
    return outcome


def give_back(member, actor, receipt, key, *, tender="tok-A", points=5, **extra):
    return ops.points_earn_reverse(
        member=member, receipt_ref=receipt, points=points, actor=actor, idempotency_key=key,
        till=till_data(tender_ref=tender, **extra),
    )  # fmt: skip


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_recorded_after_the_ledger_transaction_ended_in_its_own(member, till_actor):
    seen = {}

    def before_commit():
        # Inside the ledger's transaction: the refusal is being saved, nothing recorded yet.
        seen["inside"] = LedgerRefusalEvent.objects.count()

    def after_commit():
        # The ledger's transaction has ended: its saved refusal is committed, the record not yet written.
        seen["after"] = (connection.in_atomic_block, LedgerRefusalEvent.objects.count())

    core.FAULT_HOOKS.update(before_commit=before_commit, after_commit=after_commit)
    try:
        outcome = give_back(member, till_actor, "NO-SUCH", "k1")
    finally:
        core.FAULT_HOOKS.clear()
    assert outcome.error_code == "purchase_not_found"
    assert seen == {"inside": 0, "after": (False, 0)}
    refusal = LedgerRefusalEvent.objects.get()  # committed: this test's transactions are real
    assert refusal.code == "purchase_not_found" and refusal.member_id == member.pk
    assert refusal.created_at >= IdempotencyKey.objects.get().created_at


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_record_stands_when_the_ledger_work_rolls_back(member, till_actor, settings):
    """A refusal raised after a journal write is a bug: the ledger's whole transaction
    rolls back (key included) and the caller gets the error. The refusals that reach the
    till commit; the record, written after, never depends on the ledger's transaction."""
    settings.LOYALTY_VELOCITY = {**settings.LOYALTY_VELOCITY, "earn_transactions_per_day": 1}
    buy(member, till_actor, "P1")
    refused = ops.points_earn_purchase(
        member=member, amount_minor=5000, receipt_ref="P2", actor=till_actor, idempotency_key="buy-P2", till=PAID
    )
    assert refused.error_code == "daily_earn_transactions_exceeded"
    assert not LedgerOperation.objects.filter(receipt_ref="P2").exists()
    assert LedgerRefusalEvent.objects.filter(code="daily_earn_transactions_exceeded", kind="earn").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_refused_returns_record_once_per_key(member, till_actor, velocity_off):
    buy(member, till_actor, "P")
    # Eight different keys on another tender: eight refusals, eight records, no points moved.
    outcomes = race(*[(lambda n=n: give_back(member, till_actor, "P", f"r{n}", tender="tok-B")) for n in range(8)])
    assert {o.error_code for o in outcomes} == {"refund_tender_mismatch"}
    # Eight requests under one key: one refusal, seven replays, one record.
    same = race(*[(lambda: give_back(member, till_actor, "P", "same", tender="tok-B")) for _ in range(8)])
    assert sum(not o.replayed for o in same) == 1
    assert LedgerRefusalEvent.objects.filter(code="refund_tender_mismatch").count() == 9
    assert not LedgerOperation.objects.filter(kind="reverse_earn").exists()
    # The right tender, eight at once for 5 points each of a 50-point purchase: all taken.
    taken = race(*[(lambda n=n: give_back(member, till_actor, "P", f"ok{n}")) for n in range(8)])
    assert all(o.status_code == 201 for o in taken)
    assert_ledger_verified()


@pytest.mark.django_db
def test_the_earn_path_writes_till_data_with_no_extra_query(member, till_actor, velocity_off):
    def queries(receipt, till):
        with CaptureQueriesContext(connection) as captured:
            buy(member, till_actor, receipt, till=till)
        return len(captured.captured_queries)

    queries("warm-up", till_data())  # opens the member's account
    assert queries("with", PAID) == queries("without", till_data())


@pytest.mark.django_db
def test_the_return_compares_tenders_with_no_extra_query(member, till_actor, velocity_off):
    buy(member, till_actor, "P")
    counts = []
    for n, tender in enumerate(["tok-A", None]):
        with CaptureQueriesContext(connection) as captured:
            assert give_back(member, till_actor, "P", f"k{n}", tender=tender).status_code == 201
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_the_selectors_read_purchases_returns_lines_and_refusals_in_one_query_each(
    member, till_actor, till, velocity_off, settings, django_assert_num_queries
):
    settings.LOYALTY_RETURN_TENDER_MISMATCH = "allow_and_flag"
    buy(member, till_actor, "P1")
    buy(member, till_actor, "P2", till=till_data())
    assert give_back(member, till_actor, "P1", "r1", tender="tok-B", receipt_presented=False,
                     items=ITEMS[1:]).status_code == 201  # fmt: skip
    assert give_back(member, till_actor, "P1", "r2", tender="tok-A", receipt_presented=True).status_code == 201
    give_back(member, till_actor, "NOPE", "r3")
    start, end = timezone.now() - timedelta(hours=1), timezone.now() + timedelta(hours=1)

    with django_assert_num_queries(1):
        purchases = list(selectors.purchases_with_till_data(start=start, end=end))
    assert [p["tender_hash"] for p in purchases] == [tender_hash("tok-A"), ""]
    assert purchases[0]["item_lines"][0] == {"sku_hash": sku_hash("SKU-1"), "qty": 2, "amount_minor": 4000}

    with django_assert_num_queries(1):
        returns = list(selectors.returns_with_till_data(start=start, end=end))
    assert [(r["tender_mismatch"], r["receipt_presented"], r["needs_review"]) for r in returns] == [
        (True, False, True), (False, True, False),
    ]  # fmt: skip
    assert {r["purchase_id"] for r in returns} == {purchases[0]["id"]}
    assert returns[0]["purchase_store_id"] == till.store_id

    with django_assert_num_queries(1):
        lines = list(selectors.item_lines_in_window(start=start, end=end))
    assert sorted((line.kind, line.sku_hash, line.qty) for line in lines) == sorted([
        ("earn", sku_hash("SKU-1"), 2), ("earn", sku_hash("SKU-2"), 1), ("reverse_earn", sku_hash("SKU-2"), 1),
    ])  # fmt: skip

    with django_assert_num_queries(1):
        by_till = list(selectors.refusal_counts_by_till_day(start=start, end=end, codes=["purchase_not_found"]))
    assert by_till == [
        {"actor_till_id": till.pk, "store_id": till.store_id, "day": timezone.localdate(),
         "code": "purchase_not_found", "refusals": 1}
    ]  # fmt: skip
    with django_assert_num_queries(1):
        by_member = list(selectors.refusal_counts_by_member_day(start=start, end=end))
    assert [(r["member_id"], r["code"], r["refusals"]) for r in by_member] == [(member.pk, "purchase_not_found", 1)]
    assert selectors.refusals_in_window(start=start, end=end, kind="earn").count() == 0
    assert selectors.refusals_in_window(start=end, end=end + timedelta(hours=1)).count() == 0
    assert_ledger_verified()
