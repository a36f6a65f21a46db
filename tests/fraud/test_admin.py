"""Fraud alerts in the admin (``fraud.admin``): read-only, store-scoped, closed by an
action. Who may open the page at all: tests/staffauth/test_authorization_matrix.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from fraud.models import FraudAlert
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
    assert page.status_code == 200 and "Sampled redemption found irregular" in page.content.decode()
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


# --- names, links and local times (issue 13) ------------------------------------------------


@pytest.fixture
def named_member(store_a):
    from members.services.membership import member_create

    return member_create(home_store=store_a, name="Nur Aisyah", phone="+60123456701")


@pytest.fixture
def till_t1(store_a):
    from loyalty.kernel.models import Till

    return Till.objects.create(store=store_a, code="T1", key_id="k-alerts", secret_encrypted="-")


def grouped(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def test_an_alert_names_its_member_linked_never_by_uuid(staff_by_role, make_alert, named_member, verified_client):
    alert = make_alert(member_id=named_member.pk)
    client = verified_client(staff_by_role["fraud_analyst"])  # may open members
    member_url = reverse("admin:members_member_change", args=[named_member.pk])

    for url in (
        reverse("admin:fraud_fraudalert_changelist"),
        reverse("admin:fraud_fraudalert_change", args=[alert.pk]),
    ):
        page = client.get(url).content.decode()
        assert str(named_member.member_id) not in page
        assert (
            f'<a href="{member_url}" class="member-ref">N••• A••• · {grouped(named_member.loyalty_number)}</a>' in page
        )
        assert "Nur Aisyah" not in page


def test_an_alert_title_is_in_the_programmes_time_zone(settings):
    settings.TIME_ZONE = "Asia/Kuala_Lumpur"
    # Stored in UTC (as the database keeps it), shown at +08:00 like the page's "Raised".
    alert = FraudAlert(kind="voucher_rescan", severity="high", created_at=datetime(2026, 12, 4, 1, 30, tzinfo=UTC))

    assert str(alert) == "Used voucher presented again (High, 2026-12-04 09:30)"


def test_an_alerts_facts_are_a_table_of_named_records_not_json(staff_by_role, make_alert, till_t1, verified_client):
    alert = make_alert(till_id=till_t1.pk)
    client = verified_client(staff_by_role["fraud_analyst"])

    page = client.get(reverse("admin:fraud_fraudalert_change", args=[alert.pk])).content.decode()

    assert '<table class="facts">' in page
    assert "<th>Till</th>" in page and "till T1 at KLA" in page
    assert '"till_id"' not in page and "{&quot;" not in page and '{"' not in page


def test_alerts_are_listed_by_label_filtered_by_kind_and_searched_by_member(
    staff_by_role, make_alert, named_member, verified_client
):
    mine, other = make_alert(member_id=named_member.pk), make_alert()
    client = verified_client(staff_by_role["fraud_analyst"])
    changelist = reverse("admin:fraud_fraudalert_changelist")

    page = client.get(changelist, {"kind": "voucher_rescan"})
    assert "Used voucher presented again" in page.content.decode()
    assert {a.pk for a in page.context_data["cl"].result_list} == {mine.pk, other.pk}
    for term in (named_member.loyalty_number, grouped(named_member.loyalty_number), str(named_member.member_id)):
        found = client.get(changelist, {"q": term}).context_data["cl"].result_list
        assert [a.pk for a in found] == [mine.pk], term
    assert not client.get(changelist, {"q": "not a member"}).context_data["cl"].result_list
