"""Rows 2-3: earn_above_baseline (micro-batch) and velocity_cap_streak (nightly), and the
member-day figures they read."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fraud.detectors import REGISTRY
from fraud.detectors.earning import member_day_stats_refresh
from fraud.models import DetectorRun, MemberDayStats
from fraud.tasks import detectors_micro_batch_task, detectors_nightly_task
from tests.fraud.detector_data import AS_OF, alerts, day_stats, member, ops, refusal

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate(AS_OF)
EARN_ABOVE = REGISTRY["earn_above_baseline"]
CAP_STREAK = REGISTRY["velocity_cap_streak"]


def _with_baseline(points_per_day: int, days: int = 5, **kw):
    who = member(**kw)
    for n in range(1, days + 1):
        day_stats(who, TODAY - timedelta(days=n * 3), points=points_per_day)
    return who


# --- member-day figures ---------------------------------------------------------------------


def test_day_figures_are_upserted_per_member_and_local_day():
    # given earns, a return and a redemption over two local days
    who = member()
    ops("earn", who, 100, AS_OF - timedelta(days=1), n=2)
    ops("reverse_earn", who, 30, AS_OF - timedelta(days=1))
    ops("earn", who, 70, AS_OF - timedelta(hours=1))
    ops("redeem", who, 50, AS_OF - timedelta(hours=1))
    # when refreshed twice (the second after one more earn)
    member_day_stats_refresh(first_day=TODAY - timedelta(days=1), last_day=TODAY)
    ops("earn", who, 5, AS_OF - timedelta(minutes=30))
    member_day_stats_refresh(first_day=TODAY - timedelta(days=1), last_day=TODAY)
    # then one row per day, the second refresh's figures
    rows = {s.day: s for s in MemberDayStats.objects.filter(member=who)}
    assert set(rows) == {TODAY - timedelta(days=1), TODAY}
    yesterday, today = rows[TODAY - timedelta(days=1)], rows[TODAY]
    assert (yesterday.earns, yesterday.points, yesterday.returns, yesterday.redemptions) == (2, 200, 1, 0)
    assert (today.earns, today.points, today.redemptions, today.redeemed_points) == (2, 75, 1, 50)


# --- row 2: earn_above_baseline -------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "today", "alerted"),
    [
        (1000, 1500, False),  # exactly 1.5 x B: not above
        (1000, 1501, True),  # above 1.5 x B and >= 500 over
        (500, 999, False),  # above 1.5 x B but 499 over
        (500, 1000, True),  # exactly 500 over: at the threshold
    ],
)
def test_earn_above_baseline_thresholds(baseline, today, alerted):
    who = _with_baseline(baseline)
    ops("earn", who, today, AS_OF - timedelta(hours=1))

    EARN_ABOVE(AS_OF)

    found = alerts("earn_above_baseline").filter(member_id=who.pk)
    assert found.exists() is alerted
    if alerted:
        assert found.get().detail == {"today": today, "baseline": baseline, "days": 5, "basis": "own", "tier": 1}


def test_a_tier_upgrade_is_not_a_spike_standard_points_are_compared():
    # given a member of 1,000 standard points a day, now Gold (150 %): 1,501 points today
    # for purchases worth 1,001 standard points, and one who really bought 1,501 worth
    upgraded, spender = _with_baseline(1000), _with_baseline(1000)
    ops("earn", upgraded, 1501, AS_OF - timedelta(hours=1), amount_minor=100_100)
    ops("earn", spender, 1501, AS_OF - timedelta(hours=1), amount_minor=150_100)
    # when
    EARN_ABOVE(AS_OF)
    # then only the spender is above their pattern; the day's figures hold both points
    assert list(alerts("earn_above_baseline").values_list("member_id", flat=True)) == [spender.pk]
    today = MemberDayStats.objects.get(member=upgraded, day=TODAY)
    assert (today.points, today.base_points) == (1501, 1001)


def test_earn_above_baseline_falls_back_to_the_tier_median_for_a_new_member():
    # given a member of 10 days (own history too short) and tier peers earning 1,000 a day
    _with_baseline(1000)
    _with_baseline(1000)
    newcomer = member(joined=AS_OF - timedelta(days=10))
    ops("earn", newcomer, 1501, AS_OF - timedelta(hours=1))
    # when
    EARN_ABOVE(AS_OF)
    # then judged against the tier's median day
    alert = alerts("earn_above_baseline").get(member_id=newcomer.pk)
    assert alert.detail["basis"] == "tier_median" and alert.detail["baseline"] == 1000


def test_earn_above_baseline_rerun_is_idempotent_and_opens_one_case():
    who = _with_baseline(1000)
    ops("earn", who, 3000, AS_OF - timedelta(hours=1))

    EARN_ABOVE(AS_OF)
    EARN_ABOVE(AS_OF + timedelta(minutes=5))

    alert = alerts("earn_above_baseline").get()
    assert alert.case is not None and alert.signals.count() == 1


def test_micro_batch_task_runs_end_to_end_and_moves_the_watermark():
    who = _with_baseline(1000)
    ops("earn", who, 3000, AS_OF - timedelta(hours=1))

    counts = detectors_micro_batch_task(as_of=AS_OF.isoformat())

    assert counts["earn_above_baseline"]["alerts"] == 1
    assert alerts("earn_above_baseline").filter(member_id=who.pk).count() == 1
    run = DetectorRun.objects.get(detector="earn_above_baseline")
    assert run.watermark == AS_OF - timedelta(minutes=5)


# --- row 3: velocity_cap_streak -------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_ago", "alerted"),
    [
        ([1, 2], False),  # two in a row
        ([1, 3, 5], False),  # three in 7, none in a row
        ([1, 2, 3], True),  # three in a row: the threshold
        ([1, 3, 5, 7], True),  # four in 7
    ],
)
def test_velocity_cap_streak_thresholds(days_ago, alerted):
    who = member()
    for n in days_ago:
        day_stats(who, TODAY - timedelta(days=n), earns=3, points=300)  # at the 3-earns-a-day cap

    CAP_STREAK(AS_OF)

    assert alerts("velocity_cap_streak").filter(member_id=who.pk).exists() is alerted


def test_velocity_cap_streak_counts_refused_earns_and_is_idempotent():
    who = member()
    for n in (1, 2, 3):
        refusal(who, "daily_earn_points_exceeded", AS_OF - timedelta(days=n))
    refusal(member(), "daily_earn_points_exceeded", AS_OF - timedelta(days=1))

    CAP_STREAK(AS_OF)
    CAP_STREAK(AS_OF)

    alert = alerts("velocity_cap_streak").get()
    assert alert.member_id == who.pk and alert.detail["streak"] == 3


def test_a_streak_that_goes_on_keeps_its_first_alert():
    # given a member at the cap every day for a week
    who = member()
    for n in range(1, 8):
        day_stats(who, TODAY - timedelta(days=n), earns=3, points=300)
    # when the nightly run sees the streak tonight and, one more day at the cap, tomorrow
    CAP_STREAK(AS_OF)
    day_stats(who, TODAY, earns=3, points=300)
    CAP_STREAK(AS_OF + timedelta(days=1))
    # then one incident, one alert; a week after it, the streak still going is alerted again
    assert alerts("velocity_cap_streak").filter(member_id=who.pk).count() == 1
    for n in range(1, 8):
        day_stats(who, TODAY + timedelta(days=n), earns=3, points=300)
    CAP_STREAK(AS_OF + timedelta(days=8))
    assert alerts("velocity_cap_streak").filter(member_id=who.pk).count() == 2


def test_nightly_task_refreshes_day_figures_and_runs_the_streak():
    # given earns at the cap on the last two days (refreshed tonight) and three days ago
    # (refreshed by an earlier night)
    who = member()
    for n in (1, 2):
        ops("earn", who, 100, AS_OF - timedelta(days=n), n=3)
    day_stats(who, TODAY - timedelta(days=3), earns=3, points=300)

    detectors_nightly_task(as_of=AS_OF.isoformat())

    assert MemberDayStats.objects.filter(member=who, day=TODAY - timedelta(days=1), earns=3).exists()
    assert alerts("velocity_cap_streak").filter(member_id=who.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_run_outside_a_transaction_reads_one_repeatable_read_snapshot(monkeypatch):
    # given a run that starts on its own (as the worker runs it, no outer transaction)
    from django.db import connection

    from fraud.detectors import runs

    seen = []

    def body(start, end):
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            seen.append(cursor.fetchone()[0])
        return {"ok": 1}

    # when
    counts = runs.micro_batch("test_detector", AS_OF, body)
    # then the body ran in REPEATABLE READ and the watermark committed with it
    assert seen == ["repeatable read"] and counts == {"ok": 1}
    assert DetectorRun.objects.get(detector="test_detector").watermark == AS_OF - runs.LAG
