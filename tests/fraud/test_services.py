"""Raising and closing fraud alerts (``fraud.services``). Which alerts the till's rules
raise, and when: tests/vouchers (test_redemption, test_limits, test_till_points)."""

from __future__ import annotations

import pytest

from fraud.models import FraudAlert
from fraud.services import AlertRefused, fraud_alert_close, fraud_alert_raise
from tests.concurrency import race

pytestmark = pytest.mark.django_db


def test_a_second_raise_with_the_same_key_finds_the_first(store_a):
    first, created = fraud_alert_raise(kind="test", dedupe_key="test:1", severity="low", store=store_a)
    again, created_again = fraud_alert_raise(kind="test", dedupe_key="test:1", severity="high", detail={"n": 2})

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and (again.severity, again.detail) == ("low", {})
    assert FraudAlert.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_of_one_incident_give_one_alert(store_a):
    def raise_one():
        return fraud_alert_raise(kind="test", dedupe_key="test:race", severity="medium", store_id=store_a.pk)

    results = race(*[raise_one] * 8)

    assert {alert.pk for alert, _ in results} == {FraudAlert.objects.get().pk}
    assert sum(created for _, created in results) == 1


def test_a_fraud_analyst_closes_an_alert_once(staff_by_role, make_alert, grant):
    alert = make_alert()
    analyst = grant(staff_by_role["fraud_analyst"], "fraud.change_fraudalert")

    closed = fraud_alert_close(alert_id=alert.pk, actor=analyst)

    assert (closed.status, closed.closed_by) == ("closed", analyst) and closed.closed_at
    for actor, code in [(analyst, "already_closed"), (staff_by_role["cashier"], "permission_denied")]:
        with pytest.raises(AlertRefused) as caught:
            fraud_alert_close(alert_id=alert.pk, actor=actor)
        assert caught.value.code == code


def test_closing_an_unknown_alert_is_not_found(staff_by_role):
    with pytest.raises(AlertRefused) as caught:
        fraud_alert_close(alert_id=999_999, actor=staff_by_role["fraud_analyst"])
    assert caught.value.code == "not_found"
