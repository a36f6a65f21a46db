"""The compliance dashboard (``/admin/compliance/dashboard/``; compliance.dashboard and
compliance.admin.dashboard): sections per role, requests by deadline with the overdue
ones marked, complaints near their deadline at the user's stores, retention runs with
their evidence, chain status per stream, standing holds; names, never bare ids; and the
landing page's link."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance import requests as dsr
from compliance.consumer import complaint_file
from compliance.dashboard import compliance_dashboard, dashboard_sections, days_left
from compliance.models import ChainHead, ChainQueue, LegalHold, RetentionRun
from members.models import Member
from staffauth.models import SecurityEvent
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db

URL = "/admin/compliance/dashboard/"
KL = ZoneInfo("Asia/Kuala_Lumpur")

# role -> the sections shown (None: 403, the role may see none of them).
SECTIONS: dict[str, set[str] | None] = {
    "cashier": None,
    "store_manager": {"complaints"},
    "program_admin": {"requests", "complaints", "runs", "holds"},
    "system_admin": {"chains", "runs", "holds"},
    "fraud_analyst": None,
}


def shown_sections(html: str) -> set[str]:
    return set(re.findall(r'<section class="compliance-section" id="compliance-(\w+)"', html))


def table(html: str, dom_id: str) -> str:
    return re.search(rf'id="{dom_id}".*?</table>', html, re.S).group(0)


def rows(html: str, dom_id: str) -> list[str]:
    return re.findall(r"<tr class=\"[^\"]*\">.*?</tr>", table(html, dom_id), re.S)


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def item(html: str, dom_id: str) -> str:
    return text(re.search(rf'<li[^>]*id="{dom_id}".*?</li>', html, re.S).group(0))


def page(client: Client) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def world(staff_by_role, seeded_members, store_a):
    """Three open requests (one overdue, one due in 3 days, one fresh), a closed one,
    a retention run, a chain head, a standing and a released hold, an overdue complaint."""
    admin_user = staff_by_role["program_admin"]
    now = timezone.now()
    first, second, third = seeded_members
    fresh, _ = dsr.request_submit_by_staff(staff=admin_user, member=first, kind="access", identity_check="callback")
    late, _ = dsr.request_submit_by_staff(
        staff=admin_user, member=second, kind="erasure", identity_check="callback", now=now - timedelta(days=30)
    )
    soon, _ = dsr.request_submit_by_staff(
        staff=admin_user, member=third, kind="correction", identity_check="callback", now=now - timedelta(days=18)
    )
    closed, _ = dsr.request_submit_by_staff(
        staff=admin_user, member=third, kind="access", identity_check="callback", now=now - timedelta(days=40)
    )
    dsr.request_cancel(request_id=closed.pk, staff=admin_user, reason="asked twice")
    run = RetentionRun.objects.create(
        dry_run=False, started_by="schedule", policy={}, state="done", finished_at=now,
        dry_counts={"access": {"compliance_accessevent": 7}}, counts={"access": {"compliance_accessevent": 5}},
        held={"compliance_accessevent": 2},
    )  # fmt: skip
    ChainHead.objects.update_or_create(
        stream="audit", defaults={"seq": 1234, "last_verified_at": now, "last_verified_ok": False}
    )
    ChainHead.objects.update_or_create(
        stream="security", defaults={"seq": 56, "last_verified_at": now, "last_verified_ok": True}
    )
    queued = ChainQueue.objects.create(stream="ledger", ref="op-1")
    ChainQueue.objects.filter(pk=queued.pk).update(queued_at=now - timedelta(minutes=30))
    ChainQueue.objects.create(stream="ledger", ref="op-2")
    standing = LegalHold.objects.create(
        scope="member", member=second, reason="Litigation: case 7", placed_by=staff_by_role["system_admin"]
    )
    released = LegalHold.objects.create(
        scope="member", member=first, reason="Old matter", placed_by=staff_by_role["system_admin"],
        released_at=now, released_by=staff_by_role["system_admin"], release_reason="settled",
    )  # fmt: skip
    with time_machine.travel(now - timedelta(days=12)):
        overdue_complaint = complaint_file(
            member=first, kind="service", subject="Rude", body="-", store_id=store_a.pk, actor=admin_user
        )
    return {
        "late": late, "soon": soon, "fresh": fresh, "closed": closed, "run": run, "standing": standing,
        "released": released, "complaint": overdue_complaint,
    }  # fmt: skip


@pytest.mark.parametrize("role", SECTIONS)
def test_each_role_sees_the_sections_it_may_view(role, staff_by_role, world):
    client = login_verified(Client(), staff_by_role[role])

    response = client.get(URL)

    expected = SECTIONS[role]
    if expected is None:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    assert shown_sections(response.content.decode()) == expected


def test_a_user_without_a_role_gets_403(make_staff):
    client = login_verified(Client(), make_staff("nobody"))

    assert client.get(URL).status_code == 403


def test_the_page_is_read_only(staff_by_role):
    client = login_verified(Client(), staff_by_role["program_admin"])

    assert client.post(URL, {}).status_code in (403, 405)


def test_open_requests_are_listed_by_deadline_and_the_overdue_one_is_red(staff_by_role, world):
    html = page(login_verified(Client(), staff_by_role["program_admin"]))

    lines = rows(html, "requests-table")
    references = [re.search(r"DSR-\d+", line).group(0) for line in lines]
    assert references == [world["late"].reference, world["soon"].reference, world["fresh"].reference]
    assert world["closed"].reference not in html
    assert 'class="deadline overdue"' in lines[0] and "overdue" in text(lines[0])
    assert 'class="deadline due-soon"' in lines[1] and "3 days left" in text(lines[1])
    assert 'class="deadline due-later"' in lines[2] and "21 days left" in text(lines[2])
    assert item(html, "requests-overdue") == "1 overdue"
    assert item(html, "requests-due-soon") == "1 due within 7 days"


def test_the_due_date_is_shown_in_the_programme_time_zone(staff_by_role, world):
    html = page(login_verified(Client(), staff_by_role["program_admin"]))

    due = timezone.localtime(world["fresh"].due_at)
    assert str(due.tzinfo) == "Asia/Kuala_Lumpur"
    assert f"{due:%Y-%m-%d %H:%M}" in rows(html, "requests-table")[2]


def test_days_left_counts_programme_days():
    # 23:30 UTC on the 1st is 07:30 on the 2nd in Kuala Lumpur: a deadline at the end of
    # the 2nd there is due today, not tomorrow.
    now = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    end_of_the_2nd = datetime(2026, 3, 2, 23, 59, 59, tzinfo=KL)

    assert days_left(end_of_the_2nd, now) == 0
    assert days_left(end_of_the_2nd + timedelta(days=3), now) == 3
    assert days_left(end_of_the_2nd - timedelta(days=2), now) == -2


def test_members_are_named_never_a_bare_id(staff_by_role, world):
    html = page(login_verified(Client(), staff_by_role["program_admin"]))

    late = world["late"]
    member = late.member
    number = " ".join(member.loyalty_number[i : i + 4] for i in range(0, 16, 4))
    line = rows(html, "requests-table")[0]
    assert number in text(line) and "Tan Ah Kowloon Zhiwei" not in html  # masked name, grouped number
    assert f'href="/admin/members/member/{member.pk}/change/"' in line
    assert str(member.member_id) not in html
    cells = re.findall(r"<td[^>]*>(.*?)</td>", line, re.S)
    assert all(text(cell) != str(member.pk) for cell in cells)
    holds = text(table(html, "holds-table"))
    assert number in holds and "Litigation: case 7" in holds and "system_admin" in holds


def test_complaints_past_their_deadline_are_marked_at_the_users_stores(staff_by_role, world, make_staff, store_b):
    manager_b = make_staff("manager_b", "store_manager", stores=[store_b])

    html = page(login_verified(Client(), staff_by_role["store_manager"]))
    other = page(login_verified(Client(), manager_b))

    line = rows(html, "complaints-table")[0]
    assert f"C-{world['complaint'].pk}" in line and 'class="deadline overdue"' in line
    assert "first response" in text(line)
    assert f"C-{world['complaint'].pk}" not in other
    assert item(other, "complaints-overdue") == "0 overdue"


def test_retention_runs_link_their_evidence(staff_by_role, world):
    client = login_verified(Client(), staff_by_role["system_admin"])
    html = page(client)

    line = rows(html, "runs-table")[0]
    cells = [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", line, re.S)]
    assert cells[1:3] == ["Purge", "Done"] and cells[5:8] == ["7", "5", "2"]
    evidence = reverse("admin:compliance_retentionrun_evidence", args=[world["run"].pk])
    assert f'href="{evidence}"' in line
    assert client.get(evidence).status_code == 200


def test_chain_status_per_stream_broken_in_red_and_unsealed_counted(staff_by_role, world):
    html = page(login_verified(Client(), staff_by_role["system_admin"]))

    by_stream = {re.search(r"<td>(?:<a [^>]*>)?([\w-]+)", line).group(1): line for line in rows(html, "chains-table")}
    assert {"security", "audit", "ledger", "access", "consent"} <= set(by_stream)
    assert 'class="chain-broken"' in by_stream["audit"] and "BROKEN" in by_stream["audit"]
    assert "1,234" in by_stream["audit"]
    assert 'class="chain-ok"' in by_stream["security"] and "Intact" in by_stream["security"]
    assert "2 (1 waiting over 5 min)" in text(by_stream["ledger"])
    assert "Not yet verified" in by_stream["ledger"]
    headline = text(re.search(r'<ul[^>]*id="compliance-headline".*?</ul>', html, re.S).group(0))
    assert headline == "1 broken chains"


def test_only_standing_holds_are_listed(staff_by_role, world):
    html = page(login_verified(Client(), staff_by_role["program_admin"]))

    holds = table(html, "holds-table")
    assert "Litigation: case 7" in holds and "Old matter" not in holds
    assert "1 standing" in html


def test_a_record_hold_names_its_record(staff_by_role):
    event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="x")
    LegalHold.objects.create(
        scope="record", table_name=SecurityEvent._meta.db_table, record_pk=event.pk,
        reason="Dispute", placed_by=staff_by_role["program_admin"],
    )  # fmt: skip
    LegalHold.objects.create(
        scope="record", table_name="staffauth_securityevent", record_pk=99_999_999,
        reason="Gone", placed_by=staff_by_role["program_admin"],
    )  # fmt: skip

    holds = text(table(page(login_verified(Client(), staff_by_role["program_admin"])), "holds-table"))

    assert f"Security event: {event}" in holds
    assert "Security event (no longer stored)" in holds and "99999999" not in holds


def test_the_selector_gives_no_section_without_its_permission(staff_by_role, world):
    board = compliance_dashboard(staff_by_role["system_admin"])

    assert dashboard_sections(staff_by_role["system_admin"]) == ["retention", "chains", "holds"]
    assert board.requests is None and board.complaints is None
    assert board.chains is not None and board.runs is not None and board.holds is not None


# --- the landing page's way in -----------------------------------------------------------------

LANDING_LINK = {"cashier": False, "store_manager": True, "program_admin": True, "system_admin": True,
                "fraud_analyst": False}  # fmt: skip


@pytest.mark.parametrize("role", LANDING_LINK)
def test_the_landing_page_links_the_dashboard_for_those_who_may_open_it(role, staff_by_role, world):
    client = login_verified(Client(), staff_by_role[role])

    html = client.get("/admin/").content.decode()

    link = re.search(r'<a href="([^"]+)" id="compliance-dashboard-link">', html)
    assert (link is not None) is LANDING_LINK[role]
    if link:
        assert link.group(1) == URL and client.get(link.group(1)).status_code == 200


def test_the_landing_headline_counts_what_is_overdue(staff_by_role, world):
    html = login_verified(Client(), staff_by_role["program_admin"]).get("/admin/").content.decode()

    block = text(re.search(r'<section[^>]*id="workplace-compliance".*?</section>', html, re.S).group(0))
    assert "1 overdue requests" in block and "1 overdue complaints" in block
    assert "broken chains" not in block  # programme administrators do not see the chains


def test_a_member_with_no_request_is_not_listed(staff_by_role, world):
    stranger = Member.objects.create()

    html = page(login_verified(Client(), staff_by_role["program_admin"]))

    assert " ".join(stranger.loyalty_number[i : i + 4] for i in range(0, 16, 4)) not in html


def test_the_page_costs_the_same_queries_however_many_rows(staff_by_role, world, store_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login_verified(Client(), staff_by_role["program_admin"])
    page(client)  # warm: sessions, permissions
    with CaptureQueriesContext(connection) as few:
        page(client)
    for n in range(5):
        member = Member.objects.create(home_store=store_a)
        dsr.request_submit_by_staff(
            staff=staff_by_role["program_admin"], member=member, kind="access", identity_check="callback"
        )
        LegalHold.objects.create(scope="member", member=member, reason=f"r{n}", placed_by=staff_by_role["system_admin"])
    with CaptureQueriesContext(connection) as many:
        html = page(client)

    assert len(rows(html, "requests-table")) == 8
    assert len(many.captured_queries) == len(few.captured_queries)
