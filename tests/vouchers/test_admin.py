"""The reward catalogue and vouchers in the admin: who sees and does what, the masked
code, revoking with a reason, goodwill within the role's limit."""

# ruff: noqa: F811  (the fixtures imported from test_issuing are parameters here)
from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from members.models import Member
from tests.conftest import login_verified
from tests.vouchers.issuing_helpers import buy
from vouchers.models import Reward, Voucher
from vouchers.services.codes import code_format

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limits_off", "sms_outbox")]


@pytest.fixture
def member(member_with_phone):
    """This module's member has a name and a phone on file, like the issuing tests'."""
    return member_with_phone


REWARDS = reverse("admin:vouchers_reward_changelist")
VOUCHERS = reverse("admin:vouchers_voucher_changelist")
SEARCH = reverse("admin:vouchers_voucher_search")
GOODWILL = reverse("admin:vouchers_voucher_add")


def as_role(staff_by_role, role) -> Client:
    return login_verified(Client(), staff_by_role[role])


@pytest.fixture
def voucher(member, give, reward):
    give(member, 1000)
    return buy(member, reward, key="admin").voucher


def change_url(voucher) -> str:
    return reverse("admin:vouchers_voucher_change", args=[voucher.pk])


# --- rewards -------------------------------------------------------------------------------------


def test_program_administrators_manage_the_catalogue(staff_by_role, make_reward):
    make_reward(name="Limited mug", stock_remaining=1234)
    make_reward(name="Endless coffee")
    client = as_role(staff_by_role, "program_admin")

    page = client.get(REWARDS, {"kind__exact": "fixed_value", "active__exact": "1", "min_tier": "1", "q": "mug"})

    assert page.status_code == 200
    assert "Limited mug" in page.content.decode() and "1,234" in page.content.decode()
    assert "Endless coffee" not in page.content.decode()
    assert "unlimited" in client.get(REWARDS).content.decode()
    response = client.post(
        reverse("admin:vouchers_reward_add"),
        {
            "name": "RM10 off", "description": "", "active": "on", "kind": "fixed_value", "value_minor": "1000",
            "percent": "", "item": "", "valid_days": "30", "points_price": "1000", "min_tier": "1",
            "per_member_limit": "", "stock_remaining": "50", "available_from_0": "", "available_from_1": "",
            "available_until_0": "", "available_until_1": "",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content
    assert Reward.objects.get(name="RM10 off").stock_remaining == 50


def test_rewards_are_never_deleted(staff_by_role, reward):
    client = as_role(staff_by_role, "program_admin")
    assert client.get(reverse("admin:vouchers_reward_delete", args=[reward.pk])).status_code == 403


@pytest.mark.parametrize("role", ["cashier", "store_manager", "fraud_analyst", "system_admin"])
def test_other_roles_do_not_see_the_catalogue_admin(staff_by_role, role):
    assert as_role(staff_by_role, role).get(REWARDS).status_code == 403


# --- vouchers: seeing them -----------------------------------------------------------------------


def test_the_code_is_never_shown_only_its_last_four(staff_by_role, voucher):
    client = as_role(staff_by_role, "program_admin")
    listing = client.get(VOUCHERS).content.decode()
    detail = client.get(change_url(voucher)).content.decode()
    for page in (listing, detail):
        assert voucher.code not in page and code_format(voucher.code) not in page
        assert voucher.code[:12] not in page
        assert f"••••-••••-••••-{voucher.code[-4:]}" in page


def search(client, term: str):
    """The voucher search as the search box does it: POST the term, follow the redirect."""
    return client.post(SEARCH, {"q": term}, follow=True)


def test_search_by_voucher_id_or_loyalty_number(staff_by_role, voucher, member):
    client = as_role(staff_by_role, "program_admin")
    short = str(voucher.pk)[:8]
    assert short in search(client, str(voucher.pk)).content.decode()
    assert short in search(client, member.loyalty_number).content.decode()
    for other in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = search(client, other)
        assert response.status_code == 200 and short not in response.content.decode()


def grouped(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def test_search_by_the_whole_code_in_any_form_or_the_members_number_as_printed(staff_by_role, voucher, member):
    client = as_role(staff_by_role, "program_admin")
    formatted = code_format(voucher.code)
    for term in (
        voucher.code,
        formatted,
        formatted.lower(),
        formatted.replace("-", " "),
        grouped(member.loyalty_number),
    ):
        found = search(client, term).context_data["cl"].result_list
        assert [v.pk for v in found] == [voucher.pk], term


def test_a_code_never_goes_into_a_url(staff_by_role, voucher):
    # given: a programme administrator searching by the whole code
    client = as_role(staff_by_role, "program_admin")
    formatted = code_format(voucher.code)

    # when: the search box posts it
    response = client.post(SEARCH, {"q": formatted})

    # then: the redirect names a token, not the code; the page says "the code ••••-...-K7QX"
    assert response.status_code == 302
    location = response["Location"]
    assert "s=" in location and voucher.code[:4] not in location and "q=" not in location
    page = client.get(location).content.decode()
    assert f"for the code ••••-••••-••••-{voucher.code[-4:]}" in page and formatted not in page

    # and a search in the address is refused, the term dropped
    refused = client.get(VOUCHERS, {"q": formatted})
    assert refused.status_code == 302 and voucher.code[:4] not in refused["Location"]


def test_a_store_managers_search_finds_only_their_stores_vouchers(make_staff, store_a, store_b, voucher, member):
    # given: the voucher's member shops at store A; one manager at A, one at B
    assert member.home_store == store_a
    here = login_verified(Client(), make_staff("manager.a", "store_manager", stores=[store_a]))
    elsewhere = login_verified(Client(), make_staff("manager.b", "store_manager", stores=[store_b]))

    # when: both search by the whole code, then: only A's manager finds it
    code = code_format(voucher.code)
    assert [v.pk for v in search(here, code).context_data["cl"].result_list] == [voucher.pk]
    assert not search(elsewhere, code).context_data["cl"].result_list


def test_a_mistyped_code_says_so_instead_of_finding_nothing(staff_by_role, voucher):
    client = as_role(staff_by_role, "program_admin")
    wrong = next(c for c in "ABCDEFGH" if c != voucher.code[-1])  # one symbol mistyped
    typed = code_format(voucher.code)[:-1] + wrong.lower()

    response = search(client, typed)

    body = response.content.decode()
    assert response.status_code == 200 and not response.context_data["cl"].result_list
    assert "typing error (its check character does not match)" in body
    assert "not in the expected form" in search(client, "ABCD-EFGH").content.decode()


def test_a_voucher_is_listed_by_reward_and_masked_code_with_its_member_named(staff_by_role, voucher, member):
    body = as_role(staff_by_role, "program_admin").get(VOUCHERS).content.decode()
    member_url = reverse("admin:members_member_change", args=[member.pk])

    assert f"{voucher.reward.name} ••••-••••-••••-{voucher.code[-4:]}" in body
    assert f'<a href="{member_url}" class="member-ref">N••• A••• · {grouped(member.loyalty_number)}</a>' in body
    assert f'<td class="field-member_number">{member.loyalty_number}</td>' not in body


def test_the_filters_answer(staff_by_role, voucher, reward):
    client = as_role(staff_by_role, "program_admin")
    short = str(voucher.pk)[:8]
    for query, shown in [
        ({"status__exact": "active"}, True),
        ({"status__exact": "revoked"}, False),
        ({"source__exact": "purchase"}, True),
        ({"reward__id__exact": str(reward.pk)}, True),
        ({"expiry": "later"}, True),
        ({"expiry": "expired"}, False),
    ]:
        response = client.get(VOUCHERS, query)
        assert response.status_code == 200
        assert (short in response.content.decode()) is shown, query


def test_cashiers_see_no_vouchers(staff_by_role, voucher):
    client = as_role(staff_by_role, "cashier")
    assert client.get(VOUCHERS).status_code == 403
    assert client.get(change_url(voucher)).status_code in (403, 404)


def test_a_store_manager_sees_the_vouchers_of_their_stores_members(staff_by_role, voucher, give, reward, store_b):
    elsewhere = Member.objects.create(home_store=store_b)
    give(elsewhere, 1000)
    theirs = buy(elsewhere, reward, key="b").voucher
    client = as_role(staff_by_role, "store_manager")

    page = client.get(VOUCHERS).content.decode()

    assert str(voucher.pk)[:8] in page and str(theirs.pk)[:8] not in page
    assert client.get(change_url(voucher)).status_code == 200
    assert client.get(change_url(theirs)).status_code == 404


def test_vouchers_are_read_only(staff_by_role, voucher):
    client = as_role(staff_by_role, "program_admin")
    response = client.post(change_url(voucher), {"status": "redeemed"})
    assert response.status_code == 403
    assert client.get(reverse("admin:vouchers_voucher_delete", args=[voucher.pk])).status_code == 403
    voucher.refresh_from_db()
    assert voucher.status == "active"


# --- revoking ------------------------------------------------------------------------------------


def revoke(client, voucher, reason):
    return client.post(
        VOUCHERS, {"action": "revoke_selected", "_selected_action": [str(voucher.pk)], "reason": reason}, follow=True
    )


def test_program_administrators_revoke_with_a_reason(staff_by_role, voucher):
    client = as_role(staff_by_role, "program_admin")

    refused = revoke(client, voucher, "")
    voucher.refresh_from_db()
    assert voucher.status == "active" and "Give a reason" in refused.content.decode()

    done = revoke(client, voucher, "Card fraud case 77")
    voucher.refresh_from_db()
    assert voucher.status == "revoked" and voucher.revoke_reason == "Card fraud case 77"
    assert voucher.revoked_by == staff_by_role["program_admin"]
    assert "Revoked 1 voucher(s)." in done.content.decode()

    again = revoke(client, voucher, "again")
    assert "Not revoked" in again.content.decode()


@pytest.mark.parametrize("role", ["store_manager", "fraud_analyst"])
def test_roles_without_the_permission_have_no_revoke_action(staff_by_role, voucher, role):
    client = as_role(staff_by_role, role)
    action_form = client.get(VOUCHERS).context_data["action_form"]
    assert action_form is None or "revoke_selected" not in dict(action_form.fields["action"].choices)
    revoke(client, voucher, "x")
    voucher.refresh_from_db()
    assert voucher.status == "active"


# --- goodwill ------------------------------------------------------------------------------------


def test_a_store_manager_gives_goodwill_within_the_limit(staff_by_role, member, make_reward):
    within = make_reward(name="Within", points_price=1000)
    above = make_reward(name="Above", points_price=1001)
    client = as_role(staff_by_role, "store_manager")

    form = client.get(GOODWILL)
    assert form.status_code == 200
    rewards = form.context_data["adminform"].form.fields["reward"].queryset
    assert list(rewards) == [within]

    refused = client.post(
        GOODWILL,
        {"submission": uuid.uuid4().hex, "loyalty_number": member.loyalty_number, "reward": above.pk, "reason": "x"},
    )
    assert refused.status_code == 200 and not Voucher.objects.exists()

    response = client.post(
        GOODWILL,
        {
            "submission": uuid.uuid4().hex,
            "loyalty_number": member.loyalty_number,
            "reward": within.pk,
            "reason": "Broken item",
        },
    )
    voucher = Voucher.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(voucher)
    assert (voucher.source, voucher.issued_by, voucher.issue_reason) == (
        "goodwill",
        staff_by_role["store_manager"],
        "Broken item",
    )


def test_goodwill_to_ones_own_member_account_is_refused_on_the_form(staff_by_role, member, reward):
    manager = staff_by_role["store_manager"]
    manager.member_account = member
    manager.save(update_fields=["member_account"])
    response = as_role(staff_by_role, "store_manager").post(
        GOODWILL,
        {
            "submission": uuid.uuid4().hex,
            "loyalty_number": member.loyalty_number,
            "reward": reward.pk,
            "reason": "For me",
        },
    )
    assert response.status_code == 200 and "own member account" in response.content.decode()
    assert not Voucher.objects.exists()


def test_goodwill_needs_a_known_member_and_a_reason(staff_by_role, member, reward):
    client = as_role(staff_by_role, "program_admin")
    unknown = client.post(
        GOODWILL,
        {"submission": uuid.uuid4().hex, "loyalty_number": "0000000000000000", "reward": reward.pk, "reason": "x"},
    )
    assert "No member has that loyalty number." in unknown.content.decode()
    blank = client.post(
        GOODWILL,
        {"submission": uuid.uuid4().hex, "loyalty_number": member.loyalty_number, "reward": reward.pk, "reason": "  "},
    )
    assert blank.status_code == 200 and not Voucher.objects.exists()


@pytest.mark.parametrize("role", ["cashier", "fraud_analyst", "system_admin"])
def test_other_roles_cannot_give_goodwill(staff_by_role, role):
    assert as_role(staff_by_role, role).get(GOODWILL).status_code == 403


def test_the_goodwill_form_sent_twice_issues_one_voucher(staff_by_role, member, make_reward):
    reward = make_reward(name="Twice", points_price=500, stock_remaining=5)
    client = as_role(staff_by_role, "store_manager")
    submission = client.get(GOODWILL).context_data["adminform"].form.initial["submission"]
    body = {"submission": submission, "loyalty_number": member.loyalty_number, "reward": reward.pk, "reason": "Late"}

    first, second = client.post(GOODWILL, body), client.post(GOODWILL, body)

    voucher = Voucher.objects.get()
    assert first["Location"] == second["Location"] == change_url(voucher)
    reward.refresh_from_db()
    assert reward.stock_remaining == 4
    # A new form (a new submission id) is a new voucher.
    client.post(
        GOODWILL, {**body, "submission": client.get(GOODWILL).context_data["adminform"].form.initial["submission"]}
    )
    assert Voucher.objects.count() == 2


def test_the_goodwill_form_needs_its_submission_id(staff_by_role, member, reward):
    client = as_role(staff_by_role, "program_admin")
    response = client.post(GOODWILL, {"loyalty_number": member.loyalty_number, "reward": reward.pk, "reason": "x"})
    assert response.status_code == 200 and not Voucher.objects.exists()


def test_the_goodwill_form_fills_in_the_member_from_the_member_page(staff_by_role, member, store_b):
    client = as_role(staff_by_role, "store_manager")

    form = client.get(GOODWILL, {"member": member.pk}).context_data["adminform"].form

    assert form.initial["loyalty_number"] == member.loyalty_number
    assert form.fields["loyalty_number"].help_text.endswith(grouped(member.loyalty_number))
    elsewhere = Member.objects.create(home_store=store_b)  # not one of the manager's stores
    for value in (str(elsewhere.pk), "999999", "abc", ""):
        response = client.get(GOODWILL, {"member": value})
        assert response.status_code == 200 and "loyalty_number" not in response.context_data["adminform"].form.initial
    headquarters = as_role(staff_by_role, "program_admin")
    form = headquarters.get(GOODWILL, {"member": elsewhere.pk}).context_data["adminform"].form
    assert form.initial["loyalty_number"] == elsewhere.loyalty_number
