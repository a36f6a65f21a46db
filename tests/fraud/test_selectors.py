"""Which alerts a user sees (``fraud.selectors``): the store scope of ``loyalty.kernel.scoping``."""

from __future__ import annotations

import pytest

from fraud.selectors import fraud_alerts_visible_to

pytestmark = pytest.mark.django_db


def test_headquarters_roles_see_every_alert_and_store_roles_their_stores_only(
    staff_by_role, make_alert, store_a, store_b
):
    here, there = make_alert(store_a), make_alert(store_b)

    assert set(fraud_alerts_visible_to(user=staff_by_role["fraud_analyst"])) == {here, there}
    assert set(fraud_alerts_visible_to(user=staff_by_role["store_manager"])) == {here}


def test_an_inactive_user_sees_none(staff_by_role, make_alert):
    make_alert()
    analyst = staff_by_role["fraud_analyst"]
    analyst.is_active = False
    analyst.save(update_fields=["is_active"])

    assert not fraud_alerts_visible_to(user=analyst).exists()
