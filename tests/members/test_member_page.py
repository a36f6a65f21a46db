"""The member page tells the whole story (issue 13): each panel's content for a member
with history at two stores and at headquarters, per role; signed points from the
member's point of view; the tier by name; a bounded number of queries; ending the
member's sessions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fraud.services import fraud_alert_raise
from loyalty.adjustments.models import AdjustmentReason
from loyalty.adjustments.services import adjustment_request
from loyalty.kernel.models import Till
from loyalty.ledger.models import LedgerOperation, Transfer
from loyalty.ledger.operations import (
    Actor,
    points_capture,
    points_earn,
    points_expire_account,
    points_hold,
    points_redeem,
    points_void,
)
from members.models import Member, MemberSecurityEvent, MemberSession
from members.services.sessions import member_sessions, session_start
from tests.conftest import login_verified
from tests.members.cross_store import page_url, panel
from vouchers.models import Reward, Voucher
from vouchers.services.issuing import voucher_goodwill_issue

pytestmark = pytest.mark.django_db

MINUS = "\u2212"


def cells(html: str) -> list[list[str]]:
    """The body rows of the first table in ``html``, each cell as its text."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return [
        [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def page_as(user, member) -> str:
    response = login_verified(Client(), user).get(page_url(member))
    assert response.status_code == 200
    return response.content.decode()


def ok(outcome):
    """The ledger's outcome, which must be a success (a refusal would leave a story untold)."""
    assert outcome.status_code < 300, outcome.body
    return outcome


@pytest.fixture
def story(settings, store_a, store_b, make_staff, staff_by_role):
    """A Gold member of store B with: at store A an earn of 500 (a till) and an expired
    earn of 90, a debit adjustment of 30 by store A's manager, a goodwill voucher from
    them; at store B an earn of 300, a hold of 40 captured for 25, a hold of 60 voided,
    a goodwill voucher; from the member's app a redemption of 70; at headquarters a
    credit of 222; a fraud alert at store B; two app sessions."""
    # More of everything in a day than the velocity limits allow a real member.
    settings.LOYALTY_VELOCITY = {
        **settings.LOYALTY_VELOCITY,
        "earn_transactions_per_day": 99,
        "redemptions_per_day": 99,
    }
    manager_a = staff_by_role["store_manager"]
    manager_b = make_staff("story.manager.b", "store_manager", stores=[store_b])
    admin = staff_by_role["program_admin"]
    member = Member.objects.create(home_store=store_b, tier=3)
    till_a = Till.objects.create(store=store_a, code="TA", key_id="story-till-a", secret_encrypted="-")
    till_b = Till.objects.create(store=store_b, code="TB", key_id="story-till-b", secret_encrypted="-")
    at_a, at_b = Actor(till=till_a), Actor(till=till_b)
    long_ago = timezone.now() - timedelta(days=3 * 365)
    ok(
        points_earn(
            member=member, points=90, receipt_ref="A-0", actor=at_a, idempotency_key="a-0", effective_at=long_ago
        )
    )
    ok(points_expire_account(account_id=member.points_account.pk, as_of=timezone.localdate()))
    ok(points_earn(member=member, points=500, receipt_ref="A-1", actor=at_a, idempotency_key="a-1"))
    ok(points_earn(member=member, points=300, receipt_ref="B-1", actor=at_b, idempotency_key="b-1"))
    hold = ok(points_hold(member=member, points=40, actor=at_b, idempotency_key="b-hold-1"))
    ok(points_capture(hold_id=hold.body["hold_id"], points=25, actor=at_b, idempotency_key="b-capture-1"))
    hold = ok(points_hold(member=member, points=60, actor=at_b, idempotency_key="b-hold-2"))
    ok(points_void(hold_id=hold.body["hold_id"], actor=at_b, idempotency_key="b-void-2"))
    ok(points_redeem(member=member, points=70, actor=Actor(member=True), idempotency_key="app-redeem"))
    reason = AdjustmentReason.objects.get_or_create(code="MISSED_EARN", defaults={"label": "Purchase not credited"})[0]
    adjustment_request(actor=manager_a, member=member, points=-30, reason=reason, store=store_a)
    adjustment_request(actor=admin, member=member, points=222, reason=reason, store=None)
    reward = Reward.objects.create(name="Story mug", kind="free_item", item="Mug", points_price=100)
    voucher_a = voucher_goodwill_issue(staff=manager_a, member=member, reward=reward, reason="Sorry (A)")
    voucher_b = voucher_goodwill_issue(staff=manager_b, member=member, reward=reward, reason="Sorry (B)")
    fraud_alert_raise(
        kind="voucher_rescan", dedupe_key="story", severity="high", member=member, store=store_b, detail={"scans": 2}
    )
    for n in (1, 2):
        session_start(member=member, channel="app", device_fingerprint=f"fp-{n}", device_label=f"Pixel {n}")
    # The earns made them Member again (tiers follow points): Gold from here on.
    Member.objects.filter(pk=member.pk).update(tier=3)
    member.refresh_from_db()
    return {"member": member, "voucher_a": voucher_a, "voucher_b": voucher_b}


# --- header and balance -----------------------------------------------------------------------


def test_the_header_names_the_tier_and_links_the_home_store_for_headquarters(staff_by_role, story):
    header = panel(page_as(staff_by_role["program_admin"], story["member"]), "header")
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", header, re.S))
    assert facts["Tier"] == "Gold"
    assert facts["Status"] == "Active"
    assert facts["Loyalty number"] == story["member"].loyalty_number
    assert 'href="/admin/loyalty/store/' in facts["Home store"] and "PGB Store B" in facts["Home store"]
    assert "<time" in facts["Member since"]


def test_a_tier_the_settings_do_not_name_reads_tier_n(settings, staff_by_role, story):
    settings.LOYALTY_TIERS = [{"tier": 1, "name": "Member", "threshold": 0}]
    header = panel(page_as(staff_by_role["program_admin"], story["member"]), "header")
    assert "<dt>Tier</dt><dd>Tier 3</dd>" in header


def test_the_balance_shows_available_pending_and_held_apart(settings, staff_by_role, story, store_a):
    member = story["member"]
    till = Till.objects.get(code="TA")
    ok(points_hold(member=member, points=11, actor=Actor(till=till), idempotency_key="open-hold"))
    settings.LOYALTY_PENDING_DAYS = 14
    ok(points_earn(member=member, points=77, receipt_ref="A-pending", actor=Actor(till=till), idempotency_key="a-p"))

    body = page_as(staff_by_role["store_manager"], member)

    figures = dict(re.findall(r"<dt>(\w+)</dt><dd><strong>([\d,]+)</strong>", panel(body, "balance")))
    # 90 expired; 500 + 300 − 25 (captured) − 70 (redeemed) − 30 + 222 − 11 (held now)
    assert figures == {"Available": f"{500 + 300 - 25 - 70 - 30 + 222 - 11:,}", "Pending": "77", "Held": "11"}
    history = cells(panel(body, "history"))
    assert history[0][1:3] == ["Earn", "+77 pending"]  # the pending earn, newest first


# --- history: signs, links, scope -------------------------------------------------------------


def test_history_signs_points_from_the_members_point_of_view(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    rows = {(row[1], row[2]) for row in cells(panel(body, "history"))}
    assert rows == {
        ("Earn", "+90"),
        ("Expiry", f"{MINUS}90"),
        ("Earn", "+500"),
        ("Earn", "+300"),
        ("Redemption hold", f"{MINUS}40"),
        ("Redemption capture", "+15"),  # 40 held, 25 taken: 15 come back
        ("Redemption hold", f"{MINUS}60"),
        ("Redemption void", "+60"),
        ("Redeem", f"{MINUS}70"),
        ("Adjustment", f"{MINUS}30"),
        ("Adjustment", "+222"),
    }


def test_history_names_store_and_actor_and_links_each_row_to_its_journal_entry(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    history = panel(body, "history")
    by_kind = {row[1]: row for row in cells(history)}
    assert by_kind["Redeem"][3:] == ["—", "The member"]
    assert by_kind["Redemption void"][3:] == ["PGB Store B", "till TB at PGB"]
    adjustment_rows = [row for row in cells(history) if row[1] == "Adjustment"]
    assert {row[4] for row in adjustment_rows} == {"store_manager", "program_admin"}
    links = re.findall(r'<a href="(/admin/loyalty/ledgeroperation/[^"]+/change/)" class="operation-ref">', history)
    assert len(links) == LedgerOperation.objects.filter(member=story["member"]).count()
    assert 'href="/admin/loyalty/ledgeroperation/?member__exact=' in history


def test_store_staff_see_only_their_stores_rows_in_every_scoped_panel(staff_by_role, story):
    body = page_as(staff_by_role["store_manager"], story["member"])

    history = cells(panel(body, "history"))
    assert {row[3] for row in history} == {"KLA Store A"}
    # The expiry is the nightly job's (no store): headquarters' row, not store A's.
    assert sorted(row[2] for row in history) == sorted(["+90", "+500", f"{MINUS}30"])
    assert {row[3] for row in cells(panel(body, "lots"))} == {"KLA Store A"}
    vouchers = panel(body, "vouchers")
    assert story["voucher_a"].code[-4:] in vouchers and story["voucher_b"].code[-4:] not in body
    adjustments = cells(panel(body, "adjustments"))
    assert [row[2] for row in adjustments] == [f"{MINUS}30"]
    assert panel(body, "alerts") == ""  # no permission to see alerts: no panel
    assert panel(body, "consent_history") == ""
    assert "Only your stores" in panel(body, "history")


def test_headquarters_see_every_row(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    assert {row[3] for row in cells(panel(body, "history"))} == {"KLA Store A", "PGB Store B", "—"}
    assert len(cells(panel(body, "vouchers"))) == 2
    assert sorted(row[2] for row in cells(panel(body, "adjustments"))) == sorted([f"{MINUS}30", "+222"])
    assert "Only your stores" not in body


def test_lots_list_what_expires_next_first(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    lots = panel(body, "lots")
    dates = [row[0] for row in cells(lots)]
    assert dates == sorted(dates) and len(dates) >= 2
    assert "Next to expire:" in lots


# --- vouchers, adjustments, alerts, sessions, consents ----------------------------------------


def test_vouchers_show_reward_masked_code_state_and_expiry(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    voucher = story["voucher_a"]
    row = next(r for r in cells(panel(body, "vouchers")) if voucher.code[-4:] in r[0])
    assert row[0] == f"Story mug ••••-••••-••••-{voucher.code[-4:]}"
    assert row[1:3] == ["Active", "Goodwill (staff)"]
    text = re.sub(r'href="[^"]*"', "", body)
    assert voucher.code not in text and str(voucher.pk) not in text


def test_adjustment_requests_show_state_signed_points_and_who(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    rows = {row[2]: row for row in cells(panel(body, "adjustments"))}
    assert rows[f"{MINUS}30"][1] == "Posted" and rows[f"{MINUS}30"][4:6] == ["KLA Store A", "store_manager"]
    assert rows["+222"][4:6] == ["Headquarters", "program_admin"]


def test_fraud_analysts_see_the_alerts_about_the_member(staff_by_role, story):
    body = page_as(staff_by_role["fraud_analyst"], story["member"])
    rows = cells(panel(body, "alerts"))
    assert len(rows) == 1 and rows[0][0].startswith("Voucher rescan, ") and rows[0][1:3] == ["High", "Open"]
    assert "action-alerts" in body


def test_devices_and_sessions_show_channel_device_and_times_never_a_token(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    sessions = cells(panel(body, "sessions"))
    assert {(row[0], row[1]) for row in sessions} == {("Mobile app", "Pixel 1"), ("Mobile app", "Pixel 2")}
    assert {row[0] for row in cells(panel(body, "devices"))} == {"Pixel 1", "Pixel 2"}
    for session in MemberSession.objects.all():
        assert str(session.pk) not in body
    assert "token" not in panel(body, "sessions").lower()


def test_essential_consent_without_a_record_reads_as_a_condition_of_membership(staff_by_role, story):
    body = page_as(staff_by_role["cashier"], story["member"])
    rows = {row[0]: row[1] for row in cells(panel(body, "consents"))}
    assert rows["Essential processing (running the membership)"].startswith("In force")
    assert rows["Marketing by SMS"] == "Not granted (never recorded)"


def test_no_bare_ids_on_the_page(staff_by_role, story):
    body = page_as(staff_by_role["program_admin"], story["member"])
    text = re.sub(r'(href|formaction)="[^"]*"', "", body)
    ids = {str(pk) for pk in LedgerOperation.objects.values_list("pk", flat=True)}
    ids |= {str(pk) for pk in Transfer.objects.values_list("pk", flat=True)}
    ids |= {str(pk) for pk in Voucher.objects.values_list("pk", flat=True)}
    assert not [i for i in ids if i in text]
    uuids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))
    assert uuids <= {str(story["member"].member_id)}


# --- actions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("cashier", set()),
        ("store_manager", {"action-adjust", "action-goodwill"}),
        ("program_admin", {"action-adjust", "action-goodwill", "action-end-sessions", "action-reveal"}),
        ("fraud_analyst", {"action-end-sessions", "action-alerts"}),
    ],
)
def test_each_role_sees_the_actions_it_may_take(staff_by_role, story, role, expected):
    actions = panel(page_as(staff_by_role[role], story["member"]), "actions")
    assert set(re.findall(r'id="(action-[\w-]+)"', actions)) == expected


def test_the_adjust_and_goodwill_actions_name_the_member(staff_by_role, story):
    actions = panel(page_as(staff_by_role["store_manager"], story["member"]), "actions")
    pk = story["member"].pk
    assert f'href="{reverse("admin:loyalty_adjustmentrequest_add")}?member={pk}"' in actions
    assert f'href="{reverse("admin:vouchers_voucher_add")}?member={pk}"' in actions


def _end_sessions(user, member):
    return login_verified(Client(), user).post(reverse("admin:members_member_end_sessions", args=[member.pk]))


@pytest.mark.parametrize("role", ["program_admin", "fraud_analyst"])
def test_ending_the_members_sessions_ends_them_and_is_recorded(staff_by_role, story, role):
    member = story["member"]
    response = _end_sessions(staff_by_role[role], member)

    assert response.status_code == 302 and response["Location"] == page_url(member)
    assert not member_sessions(member).exists()
    assert MemberSession.objects.filter(member=member, ended_at__isnull=False).count() == 2
    event = MemberSecurityEvent.objects.get(member=member, kind="sessions_ended")
    assert event.detail == {"reason": "ended_by_staff", "count": 2}
    entry = LogEntry.objects.get(object_id=str(member.pk), user=staff_by_role[role])
    assert entry.get_change_message() == "Ended the member's sessions (2)."


@pytest.mark.parametrize("role", ["cashier", "store_manager", "system_admin"])
def test_ending_sessions_is_refused_without_the_permission(staff_by_role, story, role):
    member = story["member"]
    assert _end_sessions(staff_by_role[role], member).status_code == 403
    assert member_sessions(member).count() == 2
    assert not MemberSecurityEvent.objects.filter(kind="sessions_ended").exists()


def test_ending_sessions_is_post_only(staff_by_role, story):
    url = reverse("admin:members_member_end_sessions", args=[story["member"].pk])
    assert login_verified(Client(), staff_by_role["program_admin"]).get(url).status_code == 405
    assert member_sessions(story["member"]).count() == 2


# --- speed ----------------------------------------------------------------------------------

# The whole page for a programme administrator (sessions, permissions, every panel).
QUERY_BOUND = 30  # 25 today


def test_the_page_runs_a_bounded_number_of_queries_whatever_the_history(
    staff_by_role, story, django_assert_max_num_queries
):
    member = story["member"]
    client = login_verified(Client(), staff_by_role["program_admin"])
    client.get(page_url(member))  # warm: content types, permissions cache of the session

    with django_assert_max_num_queries(QUERY_BOUND) as before:
        assert client.get(page_url(member)).status_code == 200
    till = Till.objects.get(code="TA")
    for n in range(15):
        ok(
            points_earn(
                member=member, points=10 + n, receipt_ref=f"m-{n}", actor=Actor(till=till), idempotency_key=f"m{n}"
            )
        )
    with django_assert_max_num_queries(QUERY_BOUND) as after:
        assert client.get(page_url(member)).status_code == 200

    assert len(after.captured_queries) == len(before.captured_queries), "a query per row"  # no N+1
