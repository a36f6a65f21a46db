"""Rows 4-5: redemption_deviation (with its ATO variant) and redemption_spike."""

from datetime import timedelta

import pytest

from fraud.detectors import REGISTRY
from fraud.models import DetectorRun, RiskSignal
from fraud.tasks import detectors_micro_batch_task
from members.models import MemberDevice
from tests.fraud.detector_data import AS_OF, alerts, at, member, ops, security_event

pytestmark = pytest.mark.django_db
DEVIATION = REGISTRY["redemption_deviation"]
SPIKE = REGISTRY["redemption_spike"]
IN_WINDOW = AS_OF - timedelta(minutes=30)


# --- row 4: redemption_deviation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "alerted"),
    [(2999, False), (3000, False), (3001, True)],  # 3 x the largest (1,000), above 2,000
)
def test_redemption_deviation_above_history(points, alerted):
    who = member()
    ops("redeem", who, 1000, AS_OF - timedelta(days=10))
    ops("redeem", who, points, IN_WINDOW)

    DEVIATION(AS_OF)

    found = alerts("redemption_deviation").filter(member_id=who.pk)
    assert found.exists() is alerted
    if alerted:
        assert found.get().detail | {"op": None} == {
            "op": None, "points": points, "max": 1000, "hours": None, "rule": "above_history"
        }  # fmt: skip


@pytest.mark.parametrize(("points", "alerted"), [(1999, False), (2000, False), (2001, True)])
def test_redemption_deviation_floor_of_2000_for_small_histories(points, alerted):
    who = member()
    ops("redeem", who, 100, AS_OF - timedelta(days=10))
    ops("redeem", who, points, IN_WINDOW)

    DEVIATION(AS_OF)

    assert alerts("redemption_deviation").filter(member_id=who.pk).exists() is alerted


@pytest.mark.parametrize(("points", "alerted"), [(4999, False), (5000, True), (5001, True)])
def test_redemption_deviation_first_ever(points, alerted):
    who = member()
    ops("hold", who, points, IN_WINDOW)

    DEVIATION(AS_OF)

    found = alerts("redemption_deviation").filter(member_id=who.pk)
    assert found.exists() is alerted
    if alerted:
        assert found.get().detail["rule"] == "first_ever"


@pytest.mark.parametrize(("hours_before", "alerted"), [(25, False), (24, False), (23, True)])
def test_redemption_deviation_after_a_contact_change_is_ato(hours_before, alerted):
    # given a small redemption, hours after the member's contact details changed
    who = member()
    ops("redeem", who, 100, AS_OF - timedelta(days=30))
    security_event(who, "contact_changed", IN_WINDOW - timedelta(hours=hours_before))
    ops("redeem", who, 100, IN_WINDOW)
    # when
    DEVIATION(AS_OF)
    # then the ATO variant: high severity, weight 40
    found = alerts("redemption_deviation").filter(member_id=who.pk)
    assert found.exists() is alerted
    if alerted:
        alert = found.get()
        assert alert.severity == "high" and alert.detail["rule"] == "after_change"
        assert alert.detail["hours"] == 23.0
        assert RiskSignal.objects.get(alert=alert).weight == 40


def test_redemption_deviation_after_a_new_device():
    who = member()
    with at(IN_WINDOW - timedelta(hours=2)):
        MemberDevice.objects.create(member=who, fingerprint_hash="f" * 64)
    ops("redeem", who, 100, IN_WINDOW)

    DEVIATION(AS_OF)

    assert alerts("redemption_deviation").get(member_id=who.pk).detail["rule"] == "after_change"


def test_redemption_deviation_reads_each_window_once_and_is_idempotent():
    who = member()
    ops("redeem", who, 6000, IN_WINDOW)

    DEVIATION(AS_OF)
    DEVIATION(AS_OF)  # an empty window: the watermark moved
    DEVIATION(AS_OF + timedelta(minutes=5))

    assert alerts("redemption_deviation").count() == 1


# --- row 5: redemption_spike ----------------------------------------------------------------

SPIKE_AT = AS_OF - timedelta(minutes=40)  # 11:20 local: the 11:15-11:30 bucket


@pytest.mark.parametrize(("count", "alerted"), [(49, False), (50, True), (51, True)])
def test_redemption_spike_needs_at_least_50(count, alerted, store_a):
    ops("redeem", member(), 10, SPIKE_AT, n=count, store=store_a)

    SPIKE(AS_OF)

    assert alerts("redemption_spike").filter(store_id=store_a.pk).exists() is alerted
    # the programme-wide count is the same here
    assert alerts("redemption_spike").filter(store_id__isnull=True).exists() is alerted


def test_redemption_spike_against_the_weekday_hour_baseline(store_a, store_b):
    # given store A's baseline: 40 in one bucket a week ago (mean 2.5, sigma 9.68: limit 41.2)
    # and store B's: 200 in two buckets (mean 25, sigma 66.1: limit 289.6)
    who = member()
    ops("redeem", who, 10, SPIKE_AT - timedelta(days=7), n=40, store=store_a)
    ops("redeem", who, 10, SPIKE_AT - timedelta(days=7), n=200, store=store_b)
    ops("redeem", who, 10, SPIKE_AT - timedelta(days=14), n=200, store=store_b)
    # and a different hour, not in the baseline
    ops("redeem", who, 10, SPIKE_AT - timedelta(days=7, hours=1), n=300, store=store_a)
    ops("redeem", who, 10, SPIKE_AT, n=50, store=store_a)
    ops("redeem", who, 10, SPIKE_AT, n=60, store=store_b)
    # when
    SPIKE(AS_OF)
    # then store A spiked (facts: count, mean, sigma), store B did not
    alert = alerts("redemption_spike").get(store_id=store_a.pk)
    assert alert.detail["count"] == 50 and alert.detail["mean"] == 2.5 and alert.detail["sigma"] == 9.68
    assert not alerts("redemption_spike").filter(store_id=store_b.pk).exists()
    assert RiskSignal.objects.get(alert=alert).subject_key == f"store:{store_a.pk}"


def test_redemption_spike_task_end_to_end_is_idempotent(store_a):
    ops("redeem", member(), 10, SPIKE_AT, n=55, store=store_a)

    detectors_micro_batch_task(as_of=AS_OF.isoformat())
    DetectorRun.objects.all().delete()  # forget the watermark: the same window is read again
    detectors_micro_batch_task(as_of=AS_OF.isoformat())

    assert alerts("redemption_spike").count() == 2  # the store's and the programme's
