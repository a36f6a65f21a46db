"""The till's admin pages by name (issue 13): shifts, scans, till redemptions, the
offline queue and the audit sample show members by masked name and loyalty number
(linked for who may open members), staff, tills and operations by name, codes by their
labels, times in the programme's time zone; never a bare UUID or "shift 1 of staff 1".
Who may open each page: tests/staffauth/test_authorization_matrix.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.workplace import display
from tests.vouchers import till_helpers
from vouchers.models import PendingRedemption, RedemptionAudit, StaffShift, TillRedemption, VoucherScan

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings", "sms_outbox")]


def grouped(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def member_shown(member) -> str:
    """The member as the pages link them: masked name and loyalty number in groups."""
    url = reverse("admin:members_member_change", args=[member.pk])
    return f'<a href="{url}" class="member-ref">A••• T••• · {grouped(member.loyalty_number)}</a>'


@pytest.fixture
def pending(shopper, till, cashier):
    return PendingRedemption.objects.create(
        till=till,
        store=till.store,
        staff=cashier,
        member=shopper,
        points=700,
        idempotency_key="off-1",
        attempted_at=timezone.now() - timedelta(hours=2),
    )


@pytest.fixture
def held(on_shift, shopper):
    till_helpers.hold(on_shift, shopper, 300)
    return TillRedemption.objects.select_related("hold_operation").get()


def test_a_shift_is_named_by_till_staff_and_local_start(cashier, till, settings):
    settings.TIME_ZONE = "Asia/Kuala_Lumpur"
    cashier.first_name, cashier.last_name = "Aminah", "Yusof"
    shift = StaffShift(staff=cashier, store=till.store, till=till, started_at=datetime(2026, 12, 4, 1, 0, tzinfo=UTC))

    assert str(shift) == f"KLA/{till.code} shift of Aminah Yusof (cashier1), 2026-12-04 09:00"


@pytest.mark.parametrize("page", ["pendingredemption", "tillredemption"])
def test_the_offline_queue_and_till_redemptions_name_the_member_linked(
    staff_by_role, verified_client, pending, held, shopper, page
):
    client = verified_client(staff_by_role["store_manager"])
    obj = pending if page == "pendingredemption" else held

    for url in (
        reverse(f"admin:vouchers_{page}_changelist"),
        reverse(f"admin:vouchers_{page}_change", args=[obj.pk]),
    ):
        body = client.get(url).content.decode()
        assert member_shown(shopper) in body, url
        assert str(shopper.member_id) not in body and "Aminah Till" not in body


def test_till_redemptions_show_points_out_of_the_members_account_and_the_shift_by_name(
    staff_by_role, verified_client, held
):
    client = verified_client(staff_by_role["store_manager"])
    listing = client.get(reverse("admin:vouchers_tillredemption_changelist")).content.decode()
    detail = client.get(reverse("admin:vouchers_tillredemption_change", args=[held.pk])).content.decode()

    assert '<span class="points points-out">\u2212300</span>' in listing
    assert " shift of " in detail and "of staff" not in detail
    assert str(held.hold_operation_id) not in detail.replace(
        reverse("admin:loyalty_ledgeroperation_change", args=[held.hold_operation_id]), ""
    )  # the operation by what and when, its id only in its link


def test_the_shift_list_says_open_in_words_not_a_red_cross(staff_by_role, verified_client, on_shift):
    page = verified_client(staff_by_role["store_manager"]).get(reverse("admin:vouchers_staffshift_changelist"))
    body = page.content.decode()

    assert "icon-no.svg" not in body and "icon-yes.svg" not in body
    assert "Open now" in body and f"till {on_shift.till.code} at KLA" in body


def test_scans_show_the_result_and_action_by_label(staff_by_role, verified_client, on_shift, till):
    VoucherScan.objects.create(till=till, store=till.store, action="redeem", result="voucher_already_redeemed")
    client = verified_client(staff_by_role["store_manager"])

    page = client.get(reverse("admin:vouchers_voucherscan_changelist"), {"result": "refused"})

    body = page.content.decode()
    assert len(page.context_data["cl"].result_list) == 1
    assert "Voucher already redeemed" in body and "voucher_already_redeemed</td>" not in body
    assert ">Redeem<" in body


def test_the_audit_sample_names_the_redemption(staff_by_role, verified_client, held, cashier):
    RedemptionAudit.objects.create(
        store=held.store, cashier=cashier, ledger_operation=held.hold_operation, points=300, sampled_at=timezone.now()
    )
    client = verified_client(staff_by_role["store_manager"])

    body = client.get(reverse("admin:vouchers_redemptionaudit_changelist")).content.decode()

    assert display.operation_label(held.hold_operation) in body
    assert "points operation " + str(held.hold_operation_id)[:8] not in body


def test_the_till_lists_search_by_the_members_loyalty_number_or_member_id(
    staff_by_role, verified_client, pending, shopper
):
    client = verified_client(staff_by_role["store_manager"])
    url = reverse("admin:vouchers_pendingredemption_changelist")
    for term in (grouped(shopper.loyalty_number), str(shopper.member_id)):
        assert [p.pk for p in client.get(url, {"q": term}).context_data["cl"].result_list] == [pending.pk], term
    assert not client.get(url, {"q": "9900000000000000"}).context_data["cl"].result_list


def test_the_offline_queue_makes_no_query_per_row(staff_by_role, verified_client, pending, shopper, till, cashier):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = verified_client(staff_by_role["store_manager"])
    url = reverse("admin:vouchers_pendingredemption_changelist")
    client.get(url)  # warm the session and permission caches

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    one = queries()
    for n in range(2, 6):
        PendingRedemption.objects.create(
            till=till, store=till.store, staff=cashier, member=shopper, points=100 * n,
            idempotency_key=f"off-{n}", attempted_at=timezone.now(),
        )  # fmt: skip
    assert queries() == one
