"""Rows 7-10: store_adjust_rate, staff_adjust_frequency, adjust_salami (nightly and after
a posting) and the monthly rationale audit sample."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fraud.detectors import REGISTRY
from fraud.detectors.adjustments import draw_hash
from fraud.models import AuditSample, RiskSignal
from fraud.tasks import adjust_salami_posted_task, detectors_monthly_task, detectors_nightly_task
from tests.fraud.detector_data import AS_OF, adjustment, alerts, member, ops

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate(AS_OF)
YESTERDAY_NOON = AS_OF - timedelta(days=1)


@pytest.fixture
def clerk(make_staff, store_a):
    return make_staff("clerk", "store_manager", stores=[store_a])


# --- row 7: store_adjust_rate ----------------------------------------------------------------


def _store_with(store, *, earns: int, adjusted: int, by):
    who = member()
    ops("earn", who, 10, AS_OF - timedelta(days=3), n=earns, store=store)
    for _ in range(adjusted):
        adjustment(by, who, 100, AS_OF - timedelta(days=2), store=store)


@pytest.mark.parametrize(("earns", "alerted"), [(101, False), (100, True), (50, True)])
def test_store_adjust_rate_needs_10_per_thousand(earns, alerted, make_store, store_a, clerk):
    # given one adjustment at store A (earns: 9.9, 10 or 20 per 1,000), none at the other two
    _store_with(store_a, earns=earns, adjusted=1, by=clerk)
    for _ in range(2):
        _store_with(make_store(), earns=100, adjusted=0, by=clerk)

    REGISTRY["store_adjust_rate"](AS_OF)

    assert alerts("store_adjust_rate").filter(store_id=store_a.pk).exists() is alerted


@pytest.mark.parametrize(("adjusted", "alerted"), [(2, False), (3, False), (4, True)])
def test_store_adjust_rate_above_three_times_the_median(adjusted, alerted, make_store, store_a, clerk):
    # given two stores at 10 per 1,000 (the median) and store A at 20, 30 or 40
    _store_with(store_a, earns=100, adjusted=adjusted, by=clerk)
    for _ in range(2):
        _store_with(make_store(), earns=100, adjusted=1, by=clerk)

    REGISTRY["store_adjust_rate"](AS_OF)
    REGISTRY["store_adjust_rate"](AS_OF)

    assert alerts("store_adjust_rate").filter(store_id=store_a.pk).count() == int(alerted)
    if alerted:
        detail = alerts("store_adjust_rate").get().detail
        assert (detail["adjustments"], detail["earns"], detail["per_thousand"]) == (4, 100, 40.0)


# --- row 8: staff_adjust_frequency -----------------------------------------------------------


@pytest.mark.parametrize(("requests", "alerted"), [(4, False), (5, True), (6, True)])
def test_staff_adjust_frequency_reuses_the_report_flag(requests, alerted, clerk):
    who = member()
    for _ in range(requests):
        adjustment(clerk, who, 100, YESTERDAY_NOON, posted=False)
    adjustment(clerk, who, 100, AS_OF - timedelta(days=2), posted=False)  # another day

    REGISTRY["staff_adjust_frequency"](AS_OF)
    REGISTRY["staff_adjust_frequency"](AS_OF)

    found = alerts("staff_adjust_frequency").filter(staff_id=clerk.pk)
    assert found.count() == int(alerted)
    if alerted:
        assert found.get().detail["count"] == requests


def test_staff_adjust_frequency_follows_the_setting(settings, clerk):
    settings.ADJUSTMENT_POLICY = {**settings.ADJUSTMENT_POLICY, "report_flag_requests_per_day": 2}
    who = member()
    for _ in range(2):
        adjustment(clerk, who, 100, YESTERDAY_NOON, posted=False)

    REGISTRY["staff_adjust_frequency"](AS_OF)

    assert alerts("staff_adjust_frequency").filter(staff_id=clerk.pk).exists()


# --- row 9: adjust_salami --------------------------------------------------------------------


@pytest.mark.parametrize(("second", "alerted"), [(249, False), (250, True), (400, True)])
def test_adjust_salami_a_one_member_twice_in_a_week(second, alerted, clerk):
    who = member()
    adjustment(clerk, who, 250, AS_OF - timedelta(days=6))
    adjustment(clerk, who, second, AS_OF - timedelta(days=1))
    adjustment(clerk, member(), 499, AS_OF - timedelta(days=1))  # another member

    REGISTRY["adjust_salami"](AS_OF)

    found = alerts("adjust_salami").filter(staff_id=clerk.pk, member_id=who.pk)
    assert found.exists() is alerted
    if alerted:
        assert found.get().detail["pattern"] == "a" and found.get().detail["sum"] == 250 + second


def test_adjust_salami_a_ignores_credits_older_than_a_week(clerk):
    who = member()
    adjustment(clerk, who, 250, AS_OF - timedelta(days=8))
    adjustment(clerk, who, 250, AS_OF - timedelta(days=1))

    REGISTRY["adjust_salami"](AS_OF)

    assert not alerts("adjust_salami").exists()


@pytest.mark.parametrize(("small", "alerted"), [(10, False), (11, True)])
def test_adjust_salami_b_many_small_credits(small, alerted, clerk):
    # given 20 credits to different members: `small` of 100, the rest of 449 (sums 5,490
    # and 5,141; the median is 100 only when 11 or more are small)
    for n in range(20):
        adjustment(clerk, member(), 100 if n < small else 449, AS_OF - timedelta(days=1 + n))

    REGISTRY["adjust_salami"](AS_OF)

    assert alerts("adjust_salami").filter(staff_id=clerk.pk, detail__pattern="b").exists() is alerted


@pytest.mark.parametrize(("edge", "alerted"), [(2, False), (3, True), (5, True)])
def test_adjust_salami_c_just_under_the_threshold(edge, alerted, clerk):
    for n in range(5):
        adjustment(clerk, member(), 470 if n < edge else 200, AS_OF - timedelta(days=1 + n))

    REGISTRY["adjust_salami"](AS_OF)

    found = alerts("adjust_salami").filter(staff_id=clerk.pk, detail__pattern="c")
    assert found.exists() is alerted


def test_adjust_salami_after_a_posting_and_nightly_is_one_alert(clerk, make_staff, store_a):
    other = make_staff("other", "store_manager", stores=[store_a])
    who = member()
    adjustment(clerk, who, 300, AS_OF - timedelta(days=2))
    adjustment(clerk, who, 300, AS_OF - timedelta(hours=1))
    adjustment(other, member(), 300, AS_OF - timedelta(hours=1))

    adjust_salami_posted_task(clerk.pk, as_of=AS_OF.isoformat())
    detectors_nightly_task(as_of=AS_OF.isoformat())

    assert alerts("adjust_salami").count() == 1
    assert set(RiskSignal.objects.filter(detector="adjust_salami").values_list("subject_key", flat=True)) == {
        f"staff:{clerk.pk}", f"member:{who.pk}",
    }  # fmt: skip


def test_adjust_salami_that_goes_on_is_one_alert_until_new_adjustments_stand_alone(clerk):
    # given one member credited twice this week, seen tonight
    who = member()
    first = adjustment(clerk, who, 480, AS_OF - timedelta(days=3))
    adjustment(clerk, who, 490, AS_OF - timedelta(days=1))
    REGISTRY["adjust_salami"](AS_OF)
    # when a third credit comes the next day (the window now holds the second and third)
    adjustment(clerk, who, 470, AS_OF + timedelta(hours=12))
    REGISTRY["adjust_salami"](AS_OF + timedelta(days=1))
    # then it is the same incident: one alert, naming the first adjustments
    found = alerts("adjust_salami").filter(staff_id=clerk.pk, member_id=who.pk)
    assert found.count() == 1 and first.pk in found.get().detail["ids"]
    # and a pair of credits ten days later, sharing none of them, is a new incident
    adjustment(clerk, who, 480, AS_OF + timedelta(days=10))
    adjustment(clerk, who, 490, AS_OF + timedelta(days=11))
    REGISTRY["adjust_salami"](AS_OF + timedelta(days=12))
    assert found.count() == 2


def test_store_adjust_rate_alerts_once_per_window(make_store, store_a, clerk):
    # given a store adjusting far above the others, seen on two nights in a row
    _store_with(store_a, earns=100, adjusted=4, by=clerk)
    for _ in range(2):
        _store_with(make_store(), earns=100, adjusted=1, by=clerk)
    REGISTRY["store_adjust_rate"](AS_OF)
    REGISTRY["store_adjust_rate"](AS_OF + timedelta(days=1))
    # then one alert: the second night's finding is the first's
    assert alerts("store_adjust_rate").filter(store_id=store_a.pk).count() == 1


# --- row 10: adjust_rationale_audit ----------------------------------------------------------

LAST_MONTH = AS_OF - timedelta(days=30)  # 2026-10-19


def _no_minimum(settings):
    detectors = settings.FRAUD["detectors"]
    audit = {**detectors["adjust_rationale_audit"], "min_sample": 0}
    settings.FRAUD = {**settings.FRAUD, "detectors": {**detectors, "adjust_rationale_audit": audit}}


def _lowest(rows, k=1):
    month = timezone.localdate(LAST_MONTH).replace(day=1)
    return {r.pk for r in sorted(rows, key=lambda r: draw_hash(month, r.pk))[:k]}


def test_rationale_audit_draws_by_band_lowest_hash_first(settings, clerk):
    # given last month's postings: 1 headquarters, 10 supervisor, 30 direct; no minimum
    _no_minimum(settings)
    who = member()
    hq = adjustment(clerk, who, 9000, LAST_MONTH, band="headquarters")
    supervisor = [adjustment(clerk, who, 1000, LAST_MONTH, band="supervisor") for _ in range(10)]
    direct = [adjustment(clerk, who, 100, LAST_MONTH) for _ in range(30)]
    adjustment(clerk, who, 100, AS_OF - timedelta(days=1))  # this month: not yet
    # when
    detectors_monthly_task(as_of=AS_OF.isoformat())
    # then every HQ one, 5% of supervisor (rounded up: 1), 2% of direct (1), lowest hashes
    sampled = set(AuditSample.objects.values_list("adjustment_id", flat=True))
    assert sampled == {hq.pk} | _lowest(supervisor) | _lowest(direct)


def test_rationale_audit_draws_flagged_staff_at_three_times_the_rate(settings, clerk, make_staff, store_a):
    _no_minimum(settings)
    flagged = make_staff("flagged", "store_manager", stores=[store_a])
    RiskSignal.objects.create(
        detector="adjust_salami", ruleset_version=1, weight=35, occurred_at=LAST_MONTH, facts={},
        dedupe_key="t", staff_id=flagged.pk, subject_key=f"staff:{flagged.pk}",
    )  # fmt: skip
    who = member()
    plain = [adjustment(clerk, who, 100, LAST_MONTH) for _ in range(30)]
    theirs = [adjustment(flagged, who, 100, LAST_MONTH) for _ in range(30)]

    detectors_monthly_task(as_of=AS_OF.isoformat())

    # 2% of 30 -> 1; 6% of 30 -> 2
    sampled = set(AuditSample.objects.values_list("adjustment_id", flat=True))
    assert sampled == _lowest(plain) | _lowest(theirs, 2)
    assert AuditSample.objects.filter(flagged_staff=True).count() == 2


@pytest.mark.parametrize(("posted", "sampled"), [(19, 19), (20, 20), (40, 20)])
def test_rationale_audit_tops_up_to_20_and_is_idempotent(posted, sampled, clerk):
    who = member()
    direct = [adjustment(clerk, who, 100, LAST_MONTH) for _ in range(posted)]

    detectors_monthly_task(as_of=AS_OF.isoformat())
    detectors_monthly_task(as_of=AS_OF.isoformat())

    assert set(AuditSample.objects.values_list("adjustment_id", flat=True)) == _lowest(direct, sampled)


def test_a_direct_credit_posting_queues_the_salami_check_after_commit(
    clerk, store_a, monkeypatch, django_capture_on_commit_callbacks
):
    from fraud import tasks
    from loyalty.adjustments.models import AdjustmentReason
    from loyalty.adjustments.services import adjustment_request

    queued = []
    monkeypatch.setattr(tasks.adjust_salami_posted_task, "delay", lambda *a, **kw: queued.append(a))
    reason = AdjustmentReason.objects.get_or_create(code="MISSED_EARN", defaults={"label": "Missed earn"})[0]

    with django_capture_on_commit_callbacks(execute=True):
        adjustment_request(actor=clerk, member=member(store=store_a), points=300, reason=reason, store=store_a)

    assert queued == [(clerk.pk,)]


def test_a_failed_rationale_alerts_on_the_requester_once(clerk, staff_by_role):
    from fraud.detectors.adjustments import AuditRefused, audit_sample_record

    # given a drawn sample
    adjustment(clerk, member(), 100, LAST_MONTH)
    detectors_monthly_task(as_of=AS_OF.isoformat())
    sample = AuditSample.objects.get()
    analyst = staff_by_role["fraud_analyst"]
    # when the fraud team fails it
    audit_sample_record(sample_id=sample.pk, outcome="failed", actor=analyst)
    # then one alert on the requester (weight 30), and no second verdict
    alert = alerts("adjust_rationale_audit").get()
    assert alert.staff_id == clerk.pk and alert.signals.get().weight == 30
    with pytest.raises(AuditRefused) as refused:
        audit_sample_record(sample_id=sample.pk, outcome="passed", actor=analyst)
    assert refused.value.code == "already_audited"
    sample.refresh_from_db()
    assert (sample.outcome, sample.audited_by) == ("failed", analyst)


@pytest.mark.parametrize(
    ("role", "outcome", "code"),
    [("cashier", "passed", "permission_denied"), ("fraud_analyst", "maybe", "invalid_outcome")],
)
def test_audit_verdict_refusals(role, outcome, code, clerk, staff_by_role):
    from fraud.detectors.adjustments import AuditRefused, audit_sample_record

    adjustment(clerk, member(), 100, LAST_MONTH)
    detectors_monthly_task(as_of=AS_OF.isoformat())
    sample = AuditSample.objects.get()

    with pytest.raises(AuditRefused) as refused:
        audit_sample_record(sample_id=sample.pk, outcome=outcome, actor=staff_by_role[role])

    assert refused.value.code == code
    assert AuditSample.objects.get().outcome == ""
    assert not alerts("adjust_rationale_audit").exists()


def test_a_passed_rationale_raises_nothing(clerk, staff_by_role):
    from fraud.detectors.adjustments import audit_sample_record

    adjustment(clerk, member(), 100, LAST_MONTH)
    detectors_monthly_task(as_of=AS_OF.isoformat())

    audit_sample_record(sample_id=AuditSample.objects.get().pk, outcome="passed", actor=staff_by_role["fraud_analyst"])

    assert not alerts("adjust_rationale_audit").exists()
