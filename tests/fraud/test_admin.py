"""Fraud alerts in the admin (``fraud.admin``): read-only, store-scoped, closed by an
action. Who may open the page at all: tests/staffauth/test_authorization_matrix.py."""

from __future__ import annotations

import pytest
from django.urls import reverse

from fraud.services import redemption_irregular_alert_raise

pytestmark = pytest.mark.django_db


def test_the_admin_action_closes(staff_by_role, grant, verified_client, store_a):
    alert = redemption_irregular_alert_raise(
        audit_id=1,
        staff_id=staff_by_role["cashier"].pk,
        store_id=store_a.pk,
        member_id=None,
        voucher_redemption_id=None,
        ledger_operation_id=None,
        reviewed_by_id=staff_by_role["store_manager"].pk,
        points=300,
    )

    analyst = grant(staff_by_role["fraud_analyst"], "fraud.change_fraudalert")
    client = verified_client(analyst)
    page = client.get(reverse("admin:fraud_fraudalert_changelist"), {"kind": "redemption_irregular"})
    assert page.status_code == 200 and "redemption_irregular" in page.content.decode()
    client.post(
        reverse("admin:fraud_fraudalert_changelist"), {"action": "close_selected", "_selected_action": [alert.pk]}
    )
    alert.refresh_from_db()
    assert alert.status == "closed" and alert.closed_by == analyst


def test_a_store_scoped_user_sees_their_stores_alerts_only(
    make_staff, make_alert, grant, verified_client, store_a, store_b
):
    here, there = make_alert(store_a), make_alert(store_b)
    manager = grant(make_staff("manager1", "store_manager", stores=[store_a]), "fraud.view_fraudalert")
    client = verified_client(manager)

    page = client.get(reverse("admin:fraud_fraudalert_changelist"))

    assert page.status_code == 200
    assert store_b.name not in page.content.decode()  # not even in the store filter
    assert client.get(reverse("admin:fraud_fraudalert_change", args=[here.pk])).status_code == 200
    assert client.get(reverse("admin:fraud_fraudalert_change", args=[there.pk])).status_code == 404
