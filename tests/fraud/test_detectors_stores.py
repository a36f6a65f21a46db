"""Row 6: store_issue_cap (micro-batch): a signal at T, an alert and a case at 1.2 T."""

from datetime import timedelta

import pytest

from fraud.detectors import REGISTRY
from fraud.detectors.stores import percentile
from fraud.models import FraudCase
from fraud.tasks import detectors_micro_batch_task
from loyalty.kernel.models import Till
from tests.fraud.detector_data import AS_OF, alerts, member, ops, signals

pytestmark = pytest.mark.django_db
ISSUE_CAP = REGISTRY["store_issue_cap"]
TODAY_EARN = AS_OF - timedelta(hours=2)


@pytest.mark.parametrize(
    ("issued", "signalled", "alerted"),
    [
        (49_999, False, False),
        (50_000, True, False),  # T (the floor: no history)
        (59_999, True, False),
        (60_000, False, True),  # 1.2 T: alert (its own signal) and case
        (70_000, False, True),
    ],
)
def test_store_issue_cap_thresholds(issued, signalled, alerted, store_a):
    till = Till.objects.create(store=store_a, code="T1", key_id="till-k1", secret_encrypted="-")
    ops("earn", member(), issued, TODAY_EARN, store=store_a, till=till)

    ISSUE_CAP(AS_OF)

    assert signals("store_issue_cap").filter(alert__isnull=True).exists() is signalled
    found = alerts("store_issue_cap").filter(store_id=store_a.pk)
    assert found.exists() is alerted
    if alerted:
        alert = found.get()
        assert alert.detail == {"issued": issued, "cap": 50_000, "tills": [[till.pk, issued]], "staff": []}
        assert alert.severity == "high" and alert.signals.get().weight == 40
        assert FraudCase.objects.filter(store=store_a).count() == 1


def test_store_issue_cap_learns_from_the_stores_28_day_p95(store_a):
    # given 28 days of 100,000 a day: T = 1.25 x 100,000
    who = member()
    for n in range(1, 29):
        ops("earn", who, 100_000, TODAY_EARN - timedelta(days=n), store=store_a)
    ops("earn", who, 124_999, TODAY_EARN, store=store_a)
    # when
    ISSUE_CAP(AS_OF)
    # then below T
    assert not signals("store_issue_cap").exists()
    # and at T, one signal
    ops("earn", who, 1, TODAY_EARN, store=store_a)
    ISSUE_CAP(AS_OF + timedelta(minutes=5))
    assert signals("store_issue_cap").get().facts["cap"] == 125_000


def test_store_issue_cap_configured_per_store_code(settings, store_a, store_b):
    settings.FRAUD = {**settings.FRAUD, "store_issue_caps": {store_a.code: 1000}}
    ops("earn", member(), 1200, TODAY_EARN, store=store_a)
    ops("earn", member(), 1200, TODAY_EARN, store=store_b)

    ISSUE_CAP(AS_OF)

    assert alerts("store_issue_cap").get().store_id == store_a.pk


def test_store_issue_cap_task_rerun_is_idempotent(store_a):
    ops("earn", member(), 55_000, TODAY_EARN, store=store_a)

    detectors_micro_batch_task(as_of=AS_OF.isoformat())
    detectors_micro_batch_task(as_of=(AS_OF + timedelta(minutes=5)).isoformat())

    assert signals("store_issue_cap").count() == 1 and not alerts("store_issue_cap").exists()


def test_percentile_interpolates_like_postgres():
    assert percentile([0] * 26 + [100, 100], 95) == pytest.approx(65.0)
    assert percentile([], 95) == 0.0
