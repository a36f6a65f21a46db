"""Return detectors (FRAUD.md rows 11-19): each at its threshold, one below, one above;
re-runs write nothing new; the ladder at 2, 3, 4 and 5 suspicious returns; facts carry
no personal data. Operations go through the real ledger services on a time-machine clock
(the ledger's rows are append-only: their times are set when written)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from fraud.detectors import REGISTRY
from fraud.detectors import returns as det
from fraud.models import DetectorRun, FraudAlert, FraudCase, ReturnLadderStep, RiskSignal
from fraud.scoring import facts_check
from loyalty.kernel.models import OutboundMessage, Till
from loyalty.ledger import operations as ops
from loyalty.ledger.models import LedgerOperation, LedgerRefusalEvent
from loyalty.ledger.services.core import Actor
from loyalty.ledger.tilldata import till_data
from members.models import Member
from tests.concurrency import race

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_keys = itertools.count(1)


def at(days: float = 0, minutes: int = 0) -> datetime:
    return T0 + timedelta(days=days, minutes=minutes)


@pytest.fixture(autouse=True)
def _no_velocity(settings):
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)
    settings.LOYALTY_PENDING_DAYS = 0


@pytest.fixture
def till_a(store_a):
    return Till.objects.create(store=store_a, code="TA", key_id="k-ret-a", secret_encrypted="-")


@pytest.fixture
def till_b(store_b):
    return Till.objects.create(store=store_b, code="TB", key_id="k-ret-b", secret_encrypted="-")


@pytest.fixture
def shop_a(till_a):
    return Actor(till=till_a)


@pytest.fixture
def shop_b(till_b):
    return Actor(till=till_b)


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


def buy(member, actor, when, *, amount=10_000, skus=(), tender="tok-A"):
    receipt = f"R{next(_keys)}"
    items = [{"sku": sku, "qty": 1, "amount_minor": amount // max(1, len(skus))} for sku in skus] or None
    with time_machine.travel(when, tick=False):
        outcome = ops.points_earn_purchase(
            member=member, amount_minor=amount, receipt_ref=receipt, actor=actor,
            idempotency_key=f"buy-{receipt}", till=till_data(items=items, tender_ref=tender),
        )  # fmt: skip
    assert outcome.status_code == 201, outcome.body
    return receipt


def give_back(member, actor, receipt, when, *, amount=None, points=None, skus=(), tender="tok-A", shown=None):
    items = [{"sku": sku, "qty": 1, "amount_minor": 100} for sku in skus] or None
    with time_machine.travel(when, tick=False):
        outcome = ops.points_earn_reverse(
            member=member, receipt_ref=receipt, actor=actor, idempotency_key=f"ret-{next(_keys)}",
            points=points if amount is None else None, amount_minor=amount,
            till=till_data(items=items, tender_ref=tender, receipt_presented=shown),
        )  # fmt: skip
    return outcome


def signals(detector, member=None):
    rows = RiskSignal.objects.filter(detector=detector)
    return rows.filter(member=member) if member is not None else rows


def detect(now, *, since=None):
    """One micro-batch run at ``now`` (the window ends 5 minutes before), from ``since``
    if given (else from the last run's watermark, or a day back on the first run)."""
    if since is not None:
        DetectorRun.objects.update_or_create(detector=det.WATERMARK, defaults={"watermark": since})
    return det.returns_detect(now=now)


# --- Row 11: return rate -------------------------------------------------------------------


@pytest.mark.parametrize(("returned", "expected"), [(9_999, 0), (10_000, 0), (10_001, 1)])
def test_return_rate_is_a_plus_one_above_20_percent_of_purchases(member, shop_a, returned, expected):
    receipts = [buy(member, shop_a, at(d)) for d in range(5)]  # 5 x 100.00 = 500.00
    give_back(member, shop_a, receipts[0], at(6), amount=5_000)
    give_back(member, shop_a, receipts[1], at(6, 1), amount=returned - 5_000)
    assert det.return_rate(at(10)) == expected
    assert signals("return_rate", member).count() == expected


def test_return_rate_needs_five_purchases(member, shop_a):
    receipts = [buy(member, shop_a, at(d)) for d in range(4)]
    give_back(member, shop_a, receipts[0], at(5), amount=10_000)  # 25 % of 4
    assert det.return_rate(at(10)) == 0
    buy(member, shop_a, at(6))  # 20 % of 5: at the rate, still not above
    give_back(member, shop_a, receipts[1], at(7), amount=1_000)  # 22 % of 5
    assert det.return_rate(at(10)) == 1
    (signal,) = signals("return_rate", member)
    assert signal.facts["purchases"] == 5 and signal.facts["rate_percent"] == 22 and signal.weight == 10


def test_return_rate_reruns_write_nothing_until_another_return(member, shop_a):
    receipts = [buy(member, shop_a, at(d)) for d in range(5)]
    give_back(member, shop_a, receipts[0], at(6), amount=20_000)
    assert det.return_rate(at(10)) == 1
    assert det.return_rate(at(11)) == 0  # the next night: the same last return
    give_back(member, shop_a, receipts[1], at(12), amount=1_000)
    assert det.return_rate(at(13)) == 1
    assert signals("return_rate", member).count() == 2


def test_return_rate_window_is_90_days(member, shop_a):
    receipts = [buy(member, shop_a, at(d)) for d in range(5)]
    give_back(member, shop_a, receipts[0], at(6), amount=20_000)
    assert det.return_rate(at(97)) == 0  # the purchases of days 0-6 have left the window


# --- Row 12: buy-return-rebuy cycles ------------------------------------------------------


def cycles(member, buy_at, rebuy_at, n, *, rebuy_days=14.0, start=0):
    for i in range(n):
        sku = f"SKU-{start + i}"
        receipt = buy(member, buy_at, at(start + i * 3), skus=[sku])
        give_back(member, buy_at, receipt, at(start + i * 3 + 1), points=100, skus=[sku])
        buy(member, rebuy_at, at(start + i * 3 + 1 + rebuy_days), skus=[sku])


@pytest.mark.parametrize(("n", "expected"), [(1, 0), (2, 1), (3, 1)])
def test_return_cycle_at_two_cycles(member, shop_a, shop_b, n, expected):
    cycles(member, shop_a, shop_b, n)
    assert det.return_cycle(at(60)) == expected
    if expected:
        (signal,) = signals("return_cycle", member)
        assert signal.facts["cycles"] == n and signal.weight == 25
        assert sorted(signal.facts["stores"]) == sorted([shop_a.till.store_id, shop_b.till.store_id])
        assert all(len(h) == 64 for h in signal.facts["sku_hashes"])


def test_return_cycle_rebuy_within_14_days_at_another_store_only(member, shop_a, shop_b):
    cycles(member, shop_a, shop_b, 2, rebuy_days=15)  # too late
    cycles(member, shop_a, shop_a, 2, start=20)  # same store
    assert det.return_cycle(at(60)) == 0
    cycles(member, shop_a, shop_b, 2, start=40, rebuy_days=14)  # exactly 14 days: counts
    assert det.return_cycle(at(80)) == 1
    assert det.return_cycle(at(80)) == 0  # re-run


# --- Row 13: returns without a recorded purchase --------------------------------------------


@pytest.mark.parametrize(("refused", "alerts"), [(4, 0), (5, 1), (6, 1)])
def test_unmatched_returns_signal_the_member_and_alert_the_till_at_five_a_day(member, shop_a, store_a, refused, alerts):
    for i in range(refused):
        outcome = give_back(member, shop_a, f"NO-SUCH-{i}", at(0, i), points=5)
        assert outcome.error_code == "purchase_not_found"
    detect(at(0, 60))
    assert signals("return_unmatched", member).count() == refused
    till_alerts = FraudAlert.objects.filter(kind="return_unmatched")
    assert till_alerts.count() == alerts
    if alerts:
        alert = till_alerts.get()
        assert alert.store == store_a and alert.detail["refusals"] == refused
        subjects = set(alert.signals.values_list("subject_key", flat=True))
        assert subjects == {f"till:{shop_a.till.pk}", f"store:{store_a.pk}"}
    detect(at(0, 120))  # nothing new
    assert det.return_unmatched(at(0, 60), since=at(-1)) == 0  # the window again
    assert FraudAlert.objects.filter(kind="return_unmatched").count() == alerts


# --- Row 14: another store -------------------------------------------------------------------


def test_return_at_another_store_is_weight_only(member, shop_a, shop_b):
    receipt = buy(member, shop_a, at(0))
    give_back(member, shop_a, receipt, at(1), points=10)  # same store: nothing
    give_back(member, shop_b, receipt, at(1, 1), points=10)
    detect(at(1, 30))
    (signal,) = signals("return_other_store", member)
    assert signal.weight == 5 and signal.facts["stores"] == [shop_a.till.store_id, shop_b.till.store_id]
    assert det.ladder_counts(as_of=at(2)) == {}  # never a +1 on its own


# --- Row 15: refund tender mismatch --------------------------------------------------------


def test_refused_tender_mismatch_is_a_plus_one(member, shop_a):
    receipt = buy(member, shop_a, at(0), tender="tok-A")
    give_back(member, shop_a, receipt, at(1), points=10, tender="tok-A")  # the same tender: nothing
    refused = give_back(member, shop_a, receipt, at(1, 1), points=10, tender="tok-B")
    assert refused.error_code == "refund_tender_mismatch"
    detect(at(1, 30))
    (signal,) = signals("return_tender_mismatch", member)
    assert signal.facts["refused"] is True and signal.weight == 25


def test_flagged_tender_mismatch_is_a_plus_one(member, shop_a, settings):
    settings.LOYALTY_RETURN_TENDER_MISMATCH = "allow_and_flag"
    receipt = buy(member, shop_a, at(0), tender="tok-A")
    assert give_back(member, shop_a, receipt, at(1), points=10, tender="tok-B").status_code == 201
    detect(at(1, 30))
    (signal,) = signals("return_tender_mismatch", member)
    assert signal.facts["refused"] is False


# --- Row 16: no receipt, high amount ---------------------------------------------------------


@pytest.mark.parametrize(("amount", "expected"), [(49_999, 0), (50_000, 1), (50_001, 1)])
def test_no_receipt_return_of_500_or_more(member, shop_a, amount, expected):
    receipt = buy(member, shop_a, at(0), amount=60_000)
    give_back(member, shop_a, receipt, at(1), amount=amount, shown=False)
    detect(at(1, 30))
    assert signals("return_no_receipt_high", member).count() == expected
    if expected:
        facts = signals("return_no_receipt_high", member).get().facts
        assert facts["action"] == "manager_override" and facts["amount_minor"] == amount


def test_receipt_shown_or_unsaid_is_no_signal(member, shop_a):
    receipt = buy(member, shop_a, at(0), amount=60_000)
    give_back(member, shop_a, receipt, at(1), amount=55_000, shown=True)
    give_back(member, shop_a, receipt, at(1, 1), amount=1_000)  # None: not said
    detect(at(1, 30))
    assert not signals("return_no_receipt_high").exists()


# --- Row 17: after a tier upgrade --------------------------------------------------------


@pytest.mark.parametrize(("days", "expected"), [(29, 1), (30, 1), (31, 0)])
def test_return_within_30_days_of_the_upgrade_the_purchase_counted_for(member, shop_a, days, expected):
    small = buy(member, shop_a, at(0), amount=10_000)  # 100 points: tier 1
    big = buy(member, shop_a, at(1), amount=500_000)  # 5,100 points: tier 2 (Silver)
    member.refresh_from_db()
    assert member.tier == 2
    give_back(member, shop_a, big, at(1) + timedelta(days=days), points=10)  # the upgrade was at(1)
    detect(at(1, 30) + timedelta(days=days))
    assert signals("return_after_tier", member).count() == expected
    if expected:
        facts = signals("return_after_tier", member).get().facts
        assert (facts["old_tier"], facts["new_tier"]) == (1, 2)
    assert small  # bought before the upgrade too, not returned


def test_return_of_a_purchase_after_the_upgrade_is_no_signal(member, shop_a):
    buy(member, shop_a, at(0), amount=500_000)  # the upgrade
    later = buy(member, shop_a, at(2))
    give_back(member, shop_a, later, at(3), points=10)
    detect(at(3, 30))
    assert not signals("return_after_tier").exists()


# --- Row 18: shortfall -----------------------------------------------------------------------


def test_return_shortfall_is_a_plus_one(member, shop_a):
    covered = buy(member, shop_a, at(0))  # 100 points
    spent = buy(member, shop_a, at(0, 1))
    give_back(member, shop_a, covered, at(1), points=50)  # covered: no shortfall
    with time_machine.travel(at(1, 2), tick=False):
        assert ops.points_redeem(member=member, points=150, actor=shop_a, idempotency_key="spend").status_code == 201
    give_back(member, shop_a, spent, at(1, 3), points=60)  # 0 left: 60 short
    detect(at(1, 30))
    (signal,) = signals("return_shortfall", member)
    assert signal.facts["shortfall"] == 60 and signal.weight == 15


# --- Row 19: the ladder ----------------------------------------------------------------------


def suspicious_return(member, actor, day):
    receipt = buy(member, actor, at(day), amount=60_000)
    give_back(member, actor, receipt, at(day, 1), amount=60_000, shown=False)


def test_return_ladder_at_2_3_4_and_5(member, shop_a):
    steps = []
    for n in range(1, 6):
        suspicious_return(member, shop_a, n)
        run = detect(at(n, 30))
        assert detect(at(n, 31)).ladder == det.LadderRun()  # a re-run takes no step again
        steps.append((n, run.ladder.warnings, run.ladder.reviews))
    assert steps == [(1, 0, 0), (2, 0, 0), (3, 1, 0), (4, 0, 0), (5, 0, 1)]
    (warning,) = OutboundMessage.objects.filter(member=member, topic=det.WARNING_TOPIC)
    assert str(member.loyalty_number) not in warning.body
    (review,) = FraudAlert.objects.filter(kind="return_ladder")
    assert review.severity == "high" and review.member == member and review.detail["suspicious_returns"] == 5
    case = FraudCase.objects.get(subject_key=f"member:{member.pk}")
    assert case.inbox == "returns" and review.case == case
    assert set(ReturnLadderStep.objects.values_list("step", "suspicious_returns")) == {("warning", 3), ("review", 5)}


def test_one_return_seen_by_two_detectors_is_one_plus_one(member, shop_a, shop_b):
    receipt = buy(member, shop_a, at(0), amount=60_000)
    give_back(member, shop_b, receipt, at(1), amount=60_000, shown=False, tender="tok-A")
    detect(at(1, 30))
    assert signals("return_no_receipt_high", member).exists() and signals("return_other_store", member).exists()
    assert det.ladder_counts(as_of=at(2)) == {member.pk: 1}


def test_ladder_counts_the_last_180_days(member, shop_a):
    for day in (0, 1, 2):
        suspicious_return(member, shop_a, day)
    detect(at(2, 30), since=at(-1))
    assert det.ladder_counts(as_of=at(3)) == {member.pk: 3}
    assert det.ladder_counts(as_of=at(181)) == {member.pk: 2}  # day 0's return has left the window
    assert det.ladder_counts(as_of=at(182)) == {member.pk: 1}


def test_confirmed_fraud_on_a_ladder_case_recommends_suspension_but_takes_no_action(member, shop_a):
    for day in range(5):
        suspicious_return(member, shop_a, day)
    detect(at(4, 30), since=at(-1))
    case = FraudCase.objects.get(subject_key=f"member:{member.pk}")
    assert det.return_ladder_actions(case=case) == []
    FraudCase.objects.filter(pk=case.pk).update(outcome="confirmed_fraud")
    case.refresh_from_db()
    assert det.return_ladder_actions(case=case) == ["member_suspend"]
    member.refresh_from_db()
    assert member.status == Member.objects.get(pk=member.pk).status  # unchanged: a human suspends


# --- Runs, schedules, facts ------------------------------------------------------------------


def test_micro_batch_moves_its_watermark_and_reads_each_window_once(member, shop_a):
    receipt = buy(member, shop_a, at(0), amount=60_000)
    give_back(member, shop_a, receipt, at(0, 10), amount=60_000, shown=False)
    first = detect(at(0, 12))  # the return is 2 minutes old: inside the lag
    assert first.signals["return_no_receipt_high"] == 0
    second = detect(at(0, 20))
    assert second.start == first.end and second.signals["return_no_receipt_high"] == 1
    assert detect(at(0, 20)).signals == {}  # nothing new to read


def test_tasks_and_schedules(member, shop_a):
    from fraud.tasks import returns_detect_task, returns_nightly_task

    assert set(PeriodicTask.objects.filter(task__startswith="fraud.tasks.returns").values_list("task", flat=True)) == {
        "fraud.tasks.returns_detect_task",
        "fraud.tasks.returns_nightly_task",
    }
    assert returns_detect_task(at(1).isoformat())["warnings"] == 0
    assert returns_nightly_task(at(1).isoformat())["signals"] == {"return_rate": 0, "return_cycle": 0}
    assert set(REGISTRY) >= {
        "return_rate", "return_cycle", "return_unmatched", "return_other_store", "return_tender_mismatch",
        "return_no_receipt_high", "return_after_tier", "return_shortfall", "return_ladder",
    }  # fmt: skip


def test_no_personal_data_in_facts(member, shop_a, shop_b, settings):
    settings.LOYALTY_RETURN_TENDER_MISMATCH = "allow_and_flag"
    receipts = [buy(member, shop_a, at(d), amount=60_000, skus=["SKU-SECRET"], tender="tok-SECRET") for d in range(5)]
    give_back(member, shop_b, receipts[0], at(5), amount=60_000, shown=False, skus=["SKU-SECRET"], tender="tok-X")
    give_back(member, shop_a, "NO-SUCH-RECEIPT", at(5, 1), points=5)
    buy(member, shop_b, at(6), skus=["SKU-SECRET"])
    detect(at(6, 30), since=at(-1))
    det.returns_nightly(as_of=at(7))
    assert LedgerRefusalEvent.objects.exists() and RiskSignal.objects.count() >= 4
    dumped = json.dumps(
        [
            list(RiskSignal.objects.values_list("facts", flat=True)),
            list(FraudAlert.objects.values_list("detail", flat=True)),
        ]
    )
    for value in ["SKU-SECRET", "tok-SECRET", "tok-X", "NO-SUCH", *receipts, str(member.loyalty_number)]:
        assert value not in dumped
    for facts in RiskSignal.objects.values_list("facts", flat=True):
        facts_check(facts)
    assert not LedgerOperation.objects.filter(receipt_ref__in=["NO-SUCH-RECEIPT"]).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_micro_batches_warn_once(member, shop_a):
    for day in (0, 1, 2):
        suspicious_return(member, shop_a, day)
    DetectorRun.objects.create(detector=det.WATERMARK, watermark=at(-1))
    runs = race(lambda: det.returns_detect(now=at(2, 30)), lambda: det.returns_detect(now=at(2, 30)))
    assert sorted(run.ladder.warnings for run in runs) == [0, 1]
    assert OutboundMessage.objects.filter(member=member, topic=det.WARNING_TOPIC).count() == 1
    assert ReturnLadderStep.objects.count() == 1
    assert signals("return_no_receipt_high", member).count() == 3
