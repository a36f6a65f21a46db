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
    # The member page's points panel (issue 13): available and held apart, pending too.
    assert "<dt>Available</dt><dd><strong>170</strong>" in page
    assert "<dt>Held</dt><dd><strong>30</strong>" in page
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


# --- names, signs and words (issue 13) --------------------------------------------------------


def test_the_journal_shows_signed_member_points_named_members_and_no_red_cross(
    verified_client, make_staff, two_stores_of_activity
):
    member, _ = two_stores_of_activity
    client = verified_client(make_staff("hq", "program_admin"))

    body = client.get(reverse("admin:loyalty_ledgeroperation_changelist")).content.decode()

    assert "icon-no.svg" not in body and "icon-yes.svg" not in body  # a normal row says nothing
    assert body.count('<span class="points points-in">+100</span>') == 2
    assert '<span class="points points-out">\u221230</span>' in body  # the hold, from the member's side
    url = reverse("admin:members_member_change", args=[member.pk])
    assert f'<a href="{url}" class="member-ref">' in body and str(member.member_id) not in body
    assert "till T1 at KLA" in body


def test_an_operation_is_named_by_what_and_when_never_by_its_uuid(verified_client, make_staff, two_stores_of_activity):
    client = verified_client(make_staff("hq", "program_admin"))
    hold = LedgerOperation.objects.get(kind="hold")
    own_url = reverse("admin:loyalty_ledgeroperation_change", args=[hold.pk])

    for url in (reverse("admin:loyalty_transfer_changelist"), own_url):
        body = client.get(url).content.decode()
        assert "Redemption hold of 30 points, " in body, url
        shown = body.replace(f"{hold.pk}/", "").replace(f'value="{hold.pk}"', "")  # links and hidden inputs
        assert str(hold.pk) not in shown, url


def test_the_journal_is_searched_by_the_members_number_as_printed_or_member_id(
    verified_client, make_staff, two_stores_of_activity
):
    member, _ = two_stores_of_activity
    client = verified_client(make_staff("hq", "program_admin"))
    number = member.loyalty_number
    for term in (" ".join(number[i : i + 4] for i in range(0, 16, 4)), str(member.member_id), "KLA-1"):
        found = client.get(reverse("admin:loyalty_ledgeroperation_changelist"), {"q": term}).context_data["cl"]
        assert found.result_list and {op.member_id for op in found.result_list} == {member.pk}, term
    lots = client.get(reverse("admin:loyalty_pointslot_changelist"), {"q": str(member.member_id)}).context_data["cl"]
    assert len(lots.result_list) == 2


def test_a_tills_allowed_addresses_are_words_not_json(verified_client, staff_by_role, two_stores_of_activity):
    _, tills = two_stores_of_activity
    Till.objects.filter(pk=next(iter(tills.values())).pk).update(allowed_ips=["203.0.113.0/24", "198.51.100.7/32"])
    body = verified_client(staff_by_role["system_admin"]).get(reverse("admin:loyalty_till_changelist")).content.decode()

    assert "203.0.113.0/24, 198.51.100.7/32" in body and "any address" in body
    assert "[&quot;" not in body and "[]" not in body
