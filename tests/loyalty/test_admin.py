"""The ledger in the admin: read-only journal scoped to stores, member page, tills."""

import pytest
from django.urls import reverse

from loyalty.kernel.models import Till
from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.operations import Actor, points_earn, points_hold
from members.models import Member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]


@pytest.fixture
def two_stores_of_activity(store_a, store_b):
    tills = {
        s: Till.objects.create(store=s, code="T1", key_id=f"k-{s.code}", secret_encrypted="-")
        for s in (store_a, store_b)
    }
    member = Member.objects.create(home_store=store_a)
    for store, till in tills.items():
        points_earn(
            member=member,
            points=100,
            receipt_ref=f"{store.code}-1",
            actor=Actor(till=till),
            idempotency_key=f"e-{store.code}",
        )
    points_hold(member=member, points=30, actor=Actor(till=tills[store_a]), idempotency_key="h")
    return member, tills


def test_store_manager_sees_only_their_stores_operations(
    verified_client, make_staff, store_a, store_b, two_stores_of_activity
):
    manager = make_staff("manager.a", "store_manager", stores=[store_a])
    client = verified_client(manager)
    listed = client.get(reverse("admin:loyalty_ledgeroperation_changelist")).context_data["cl"].result_list
    assert {op.store for op in listed} == {store_a} and len(listed) == 2
    other = LedgerOperation.objects.get(store=store_b)
    assert client.get(reverse("admin:loyalty_ledgeroperation_change", args=[other.pk])).status_code == 404


def test_journal_is_read_only_even_for_hq(verified_client, make_staff, two_stores_of_activity):
    client = verified_client(make_staff("hq", "program_admin"))
    op = LedgerOperation.objects.first()
    response = client.get(reverse("admin:loyalty_ledgeroperation_change", args=[op.pk]))
    assert response.status_code == 200 and not response.context_data["has_change_permission"]
    assert (
        client.post(reverse("admin:loyalty_ledgeroperation_delete", args=[op.pk]), {"post": "yes"}).status_code == 403
    )


def test_member_page_shows_balance_lots_and_history(verified_client, make_staff, two_stores_of_activity):
    member, _ = two_stores_of_activity
    response = verified_client(make_staff("hq", "program_admin")).get(
        reverse("admin:members_member_change", args=[member.pk])
    )
    page = response.content.decode()
    assert "<strong>170</strong> available, 30 held for redemptions" in page
    assert page.count("Redemption hold") == 1 and page.count(">Earn<") == 2


def test_sysadmin_switches_a_till_off_and_sets_its_allow_list(
    verified_client, staff_by_role, store_a, two_stores_of_activity
):
    _, tills = two_stores_of_activity
    till = tills[store_a]
    client = verified_client(staff_by_role["system_admin"])
    url = reverse("admin:loyalty_till_change", args=[till.pk])
    bad = client.post(url, {"allowed_ips": '["not an address"]'})
    assert bad.status_code == 200 and "Not an address" in bad.content.decode()
    ok = client.post(url, {"allowed_ips": '["203.0.113.7", "198.51.100.0/24"]'})
    assert ok.status_code == 302
    till.refresh_from_db()
    assert not till.active and till.allowed_ips == ["203.0.113.7/32", "198.51.100.0/24"]
