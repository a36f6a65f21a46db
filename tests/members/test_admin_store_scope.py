"""The member page for store-scoped staff (issue 11, D3): members are programme-wide,
the rows behind them are not. A store A cashier or manager opening a member with
activity at store B and at headquarters sees the balance as a figure and store A's
rows only; headquarters roles see everything.
"""

import pytest
from django.test import Client

from members.models import ConsentRecord
from tests.conftest import login_verified
from tests.members.cross_store import (
    AVAILABLE,
    CHANGES,
    LOTS,
    OPERATIONS,
    cross_store_member_make,
    history_url,
    origins_shown,
    page_url,
    panel,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def cross(store_a, store_b, make_staff, staff_by_role):
    return cross_store_member_make(
        store_a=store_a, store_b=store_b, make_staff=make_staff, program_admin=staff_by_role["program_admin"]
    )


def page_as(staff, url) -> str:
    """The admin page at ``url`` as ``staff`` see it (it must answer 200)."""
    response = login_verified(Client(), staff).get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("role", ["cashier", "store_manager"])
def test_store_staff_see_only_their_stores_rows_on_the_member_page(staff_by_role, cross, role):
    body = page_as(staff_by_role[role], page_url(cross.member))

    history, lots = panel(body, "history"), panel(body, "lots")
    assert origins_shown(history, OPERATIONS) == {"A"}
    assert origins_shown(lots, LOTS) == {"A"}
    assert "Store B" not in history + lots and "Adjustment" not in history and "Redemption hold" not in history
    balance = panel(body, "balance")
    assert f"<dt>Available</dt><dd><strong>{AVAILABLE:,}</strong>" in balance
    assert "<dt>Held</dt><dd><strong>1,234</strong>" in balance
    assert "Only your stores" in history
    # The consent history (when staff somewhere acted for the member) is not theirs;
    # the current choices are member information.
    assert 'id="member-consent-history"' not in body and "Staff, on the member" not in body
    assert 'id="member-consents"' in body
    # No other store's voucher or adjustment request either.
    assert cross.voucher_code[-4:] not in body and f"#{cross.adjustment_b_id}" not in body


@pytest.mark.parametrize("role", ["cashier", "store_manager"])
def test_store_staff_see_only_their_stores_entries_in_the_change_history(staff_by_role, cross, role):
    body = page_as(staff_by_role[role], history_url(cross.member))

    assert CHANGES["A"] in body
    assert CHANGES["B"] not in body and CHANGES["HQ"] not in body and "cross.manager.b" not in body


def test_another_stores_home_store_is_named_not_linked(staff_by_role, cross, store_b):
    body = login_verified(Client(), staff_by_role["cashier"]).get(page_url(cross.member)).content.decode()
    home = panel(body, "header").split("<dt>Home store</dt>")[1].split("</dd>")[0]
    assert "PGB Store B" in home and "<a " not in home


@pytest.mark.parametrize("role", ["program_admin", "fraud_analyst"])
def test_headquarters_roles_see_every_row(staff_by_role, cross, role):
    client = login_verified(Client(), staff_by_role[role])

    body = client.get(page_url(cross.member)).content.decode()
    changes = client.get(history_url(cross.member)).content.decode()

    assert origins_shown(panel(body, "history"), OPERATIONS) == {"A", "B", "HQ"}
    assert origins_shown(panel(body, "lots"), LOTS) == {"A", "B", "HQ"}
    assert "Only your stores" not in body
    assert panel(body, "consent_history").count("<tr>") == 1 + ConsentRecord.objects.count()
    assert all(message in changes for message in CHANGES.values())
    home = panel(body, "header").split("<dt>Home store</dt>")[1].split("</dd>")[0]
    assert 'href="/admin/loyalty/store/' in home


def test_history_rows_link_to_their_journal_entries(staff_by_role, cross):
    body = login_verified(Client(), staff_by_role["cashier"]).get(page_url(cross.member)).content.decode()
    link = panel(body, "history").split('href="')[1].split('"')[0]
    assert login_verified(Client(), staff_by_role["cashier"]).get(link).status_code == 200


def test_home_store_filter_lists_only_the_viewers_stores(staff_by_role, cross, store_a):
    from django.urls import reverse

    from members.models import Member

    Member.objects.create(home_store=store_a)
    url = reverse("admin:members_member_changelist")
    cashier = login_verified(Client(), staff_by_role["cashier"]).get(url).content.decode()
    hq = login_verified(Client(), staff_by_role["program_admin"]).get(url).content.decode()
    assert "By home store" in cashier and "Store A" in cashier.split('id="changelist-filter"')[1]
    assert "Store B" not in cashier.split('id="changelist-filter"')[1]
    assert "Store B" in hq.split('id="changelist-filter"')[1]
