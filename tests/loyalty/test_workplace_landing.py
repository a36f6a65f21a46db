"""The landing page per role (``/admin/``, ``loyalty.workplace.dashboards``): what awaits
the person's decision (counts, oldest age, filtered links), their figures at their
stores only, shortcuts, their own recent activity, and job status for system
administrators only."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from celery import shared_task
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fraud.models import FraudAlert
from loyalty.kernel.models import Till
from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.operations import Actor, points_earn, points_redeem
from loyalty.workplace.dashboards import age_text, workplace
from members.models import Member
from tests.conftest import login_verified
from vouchers.models import PendingRedemption, RedemptionAudit

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


class ReportStoreFull(Exception):
    pass


@shared_task(name="tests.workplace.failing_task")
def report_failing_task() -> None:
    # An exception's message may carry anything (a path, a record's data): the landing page
    # names only its class. (Celery logs the message, so the test's carries no personal data.)
    raise ReportStoreFull("disk full writing /srv/reports/liability-2026-11.csv")


@pytest.fixture
def as_user(staff):
    def client_for(who: str) -> Client:
        return login_verified(Client(), staff[who])

    return client_for


@pytest.fixture
def world(staff, store_a, store_b, till, member, raise_request, velocity_off):
    """Work at two stores: points issued and redeemed, an adjustment request, offline
    redemptions, a sampled redemption, fraud alerts and a lock-out."""
    till_b = Till.objects.create(store=store_b, code="T1", key_id="till-test-b", secret_encrypted="-")
    member_b = Member.objects.create(home_store=store_b)
    cashier = Actor(staff=staff["cashier"], store=store_a)
    assert points_earn(member=member, points=123, receipt_ref="A-1", actor=cashier, idempotency_key="a-1").ok
    assert points_earn(member=member, points=900, receipt_ref="A-2", actor=cashier, idempotency_key="a-2").ok
    assert points_earn(member=member_b, points=4567, receipt_ref="B-1", actor=Actor(till=till_b), idempotency_key="b-1").ok  # fmt: skip
    assert points_redeem(member=member, points=45, actor=cashier, idempotency_key="a-r").ok
    request = raise_request(1_200)  # by the store manager of store A: a supervisor's approval
    now = timezone.now()
    for where, who, key in ((till, member, "offline-a"), (till_b, member_b, "offline-b")):
        PendingRedemption.objects.create(
            till=where, store=where.store, member=who, points=10, idempotency_key=key, attempted_at=now
        )
    RedemptionAudit.objects.create(
        store=store_a, cashier=staff["cashier"], points=45, sampled_at=now,
        ledger_operation=LedgerOperation.objects.get(kind=LedgerOperation.Kind.REDEEM),
    )  # fmt: skip
    FraudAlert.objects.create(kind="voucher_rescan", store=store_a, member=member)
    FraudAlert.objects.create(kind="voucher_rescan", store=store_b, member=member_b)
    AccessAttempt.objects.create(
        username="locked", ip_address="10.0.0.1", user_agent="", http_accept="", path_info="/admin/login/",
        get_data="", post_data="", failures_since_start=5,
    )  # fmt: skip
    return {"request": request, "member_b": member_b}


def page(client) -> str:
    response = client.get(INDEX)
    assert response.status_code == 200
    return response.content.decode()


def queues(html: str) -> dict[str, str]:
    """Each queue's key and its text as shown (empty queues say "No ...")."""
    found = re.findall(r'<li class="queue [^"]*"[^>]*data-queue="(\w+)">\s*<a href="[^"]*">([^<]*)</a>', html)
    return dict(found)


def figure(html: str, key: str) -> tuple[int, int]:
    row = re.search(rf'id="figure-{key}">(.*?)</tr>', html, re.S).group(1)
    week = re.search(r'class="figure-week">([\d,]+)<', row).group(1)
    month = re.search(r'class="figure-month">([\d,]+)<', row).group(1)
    return int(week.replace(",", "")), int(month.replace(",", ""))


def sections(html: str) -> set[str]:
    return set(re.findall(r'id="workplace-(queues|figures|shortcuts|jobs)"', html))


def h1(html: str) -> str:
    return re.search(r"<h1>([^<]*)</h1>", html).group(1)


# --- the authorization table of the landing's sections -----------------------------------------

# role -> (queues shown, figures shown, job status shown)
SECTIONS = {
    "cashier": (set(), {"issued", "redeemed"}, False),
    "store_manager": ({"adjustments", "offline", "audits"}, {"issued", "redeemed", "adjustments"}, False),
    "program_admin": ({"adjustments", "offline"}, {"issued", "redeemed", "adjustments"}, False),
    "system_admin": ({"lockouts", "jobs"}, set(), True),
    "fraud_analyst": ({"adjustments", "alerts"}, {"issued", "redeemed", "adjustments", "alerts"}, False),
}


@pytest.mark.parametrize("role", SECTIONS)
def test_each_role_sees_the_sections_it_may_act_on(as_user, world, role):
    html = page(as_user(role))
    want_queues, want_figures, want_jobs = SECTIONS[role]

    assert set(queues(html)) == want_queues
    assert set(re.findall(r'id="figure-(\w+)"', html)) == want_figures
    assert ("jobs" in sections(html)) is want_jobs
    assert ("queues" in sections(html)) is bool(want_queues)
    assert "shortcuts" in sections(html)
    assert 'id="all-records"' in html  # the model list stays below the workplace


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        ("cashier", {"Look up a member", "Ledger operations"}, {"Raise an adjustment", "Schedules", "Staff accounts"}),
        ("store_manager", {"Raise an adjustment", "Till shifts", "Adjustment reports"}, {"Schedules", "Fraud alerts"}),
        ("program_admin", {"Raise an adjustment", "Reward catalogue", "Stores"}, {"Schedules", "Till shifts"}),
        ("system_admin", {"Schedules", "Staff accounts", "Lock-outs"}, {"Raise an adjustment", "Look up a member"}),
        ("fraud_analyst", {"Fraud alerts", "Till shifts", "Ledger operations"}, {"Raise an adjustment", "Schedules"}),
    ],
)
def test_shortcuts_are_the_roles_daily_tasks_only(as_user, world, role, shown, hidden):
    html = page(as_user(role))
    block = re.search(r'id="workplace-shortcuts".*?</section>', html, re.S).group(0)
    labels = set(re.findall(r'<a href="[^"]+">([^<]+)</a>', block))
    assert shown <= labels and not (hidden & labels)


def test_every_shortcut_opens_for_its_role(as_user, world):
    for role in SECTIONS:
        client = as_user(role)
        block = re.search(r'id="workplace-shortcuts".*?</section>', page(client), re.S).group(0)
        for url in re.findall(r'<a href="([^"]+)">', block):
            assert client.get(url).status_code == 200, (role, url)


# --- needs you now -----------------------------------------------------------------------------


def test_queues_count_what_awaits_this_person_at_their_stores(as_user, world):
    manager_a, manager_b = queues(page(as_user("manager_2"))), queues(page(as_user("manager_b")))

    assert manager_a == {
        "adjustments": "1 adjustment request awaits your decision",
        "offline": "1 offline redemption awaits approval",
        "audits": "1 sampled redemption awaits your review",
    }
    assert manager_b == {
        "adjustments": "No adjustment requests await your decision",
        "offline": "1 offline redemption awaits approval",
        "audits": "No sampled redemptions await your review",
    }
    assert queues(page(as_user("program_admin")))["offline"] == "2 offline redemptions await approval"
    assert queues(page(as_user("fraud_analyst")))["alerts"] == "2 fraud alerts are open"
    assert queues(page(as_user("system_admin")))["lockouts"] == "1 locked-out sign-in awaits release"


def test_a_queue_links_to_its_filtered_list(as_user, world):
    html = page(as_user("manager_2"))
    for url in (
        reverse("admin:loyalty_adjustmentrequest_changelist") + "?awaiting=me",
        reverse("admin:vouchers_pendingredemption_changelist") + "?status__exact=pending",
        reverse("admin:vouchers_redemptionaudit_changelist") + "?outcome__exact=pending",
    ):
        assert f'href="{url}"' in html
        assert as_user("manager_2").get(url).status_code == 200


def test_a_queue_says_how_old_its_oldest_item_is(staff, world):
    later = timezone.now() + timedelta(hours=3, minutes=5)

    place = workplace(staff["manager_2"], now=later)

    ages = {queue.key: age for queue, age in place.queue_ages()}
    assert ages == {"adjustments": "3 h", "offline": "3 h", "audits": "3 h"}


def test_ages_read_in_minutes_hours_then_days():
    assert [age_text(timedelta(minutes=m)) for m in (0, 59, 60, 47 * 60 + 59, 48 * 60, 10 * 24 * 60)] == [
        "0 min", "59 min", "1 h", "47 h", "2 d", "10 d",
    ]  # fmt: skip


def test_waiting_work_is_not_shown_in_the_green_success_style(as_user, world):
    html = page(as_user("manager_2"))

    line = re.search(r'<li class="([^"]*)" id="adjustments-awaiting"', html)
    assert line and "queue-waiting" in line.group(1).split()
    assert "messagelist" not in html and 'class="success"' not in html


# --- your figures ------------------------------------------------------------------------------


def test_a_store_manager_sees_only_their_stores_figures(as_user, world):
    html_a = page(as_user("manager_2"))
    html_b = page(as_user("manager_b"))
    html_hq = page(as_user("program_admin"))

    assert figure(html_a, "issued") == (1023, 1023) and figure(html_a, "redeemed") == (45, 45)
    assert figure(html_b, "issued") == (4567, 4567) and figure(html_b, "redeemed") == (0, 0)
    assert figure(html_hq, "issued") == (5590, 5590)
    assert "4567" not in html_a and "4,567" not in html_a
    assert figure(html_a, "adjustments") == (1, 1) and figure(html_b, "adjustments") == (0, 0)


def test_the_fraud_analyst_counts_every_stores_alerts(as_user, world):
    assert figure(page(as_user("fraud_analyst")), "alerts") == (2, 2)


def test_figures_older_than_30_days_are_left_out(staff, world):
    place = workplace(staff["program_admin"], now=timezone.now() + timedelta(days=31))
    assert {f.key: (f.week, f.month) for f in place.figures}["issued"] == (0, 0)


def test_the_figures_charts_are_svg_in_the_page(as_user, world):
    html = page(as_user("manager_2"))
    row = re.search(r'id="figure-issued">(.*?)</tr>', html, re.S).group(1)
    assert row.count("<svg ") == 2 and "<title" in row and "style=" not in row
    assert "Points issued per day" in row and "total 1,023" in row


# --- heading, activity, time zone --------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "title"),
    [
        ("cashier", "Cashier · KLA Store A"),
        ("store_manager", "Store manager · KLA Store A"),
        ("program_admin", "Programme administrator · all stores"),
        ("system_admin", "System administrator · all stores"),
        ("fraud_analyst", "Fraud analyst · all stores"),
    ],
)
def test_the_heading_names_the_role_and_its_stores(as_user, staff, role, title):
    assert h1(page(as_user(role))) == title


def test_recent_activity_is_the_persons_own_work_with_names_and_links(as_user, world, staff, member):
    cashier_html = page(as_user("cashier"))
    activity = re.search(r'id="recent-actions-module">(.*?)</div>', cashier_html, re.S).group(1)
    assert "Earn of 123 points" in activity and "Redeem of 45 points" in activity
    visible = re.sub(r"<[^>]+>", "", activity)
    operation = LedgerOperation.objects.get(receipt_ref="A-1")
    assert member.loyalty_number[-4:] in visible and str(operation.pk) not in visible
    assert f'href="{reverse("admin:members_member_change", args=[member.pk])}"' in activity
    assert "None available" not in cashier_html

    manager_html = page(as_user("store_manager"))
    request = world["request"]
    url = reverse("admin:loyalty_adjustmentrequest_change", args=[request.pk])
    assert f'<a href="{url}">#{request.pk}</a>' in manager_html and re.search(
        r"Adjustment request <a[^>]*>#\d+</a>.*?: requested", manager_html
    )


def test_times_are_shown_in_the_programmes_time_zone(as_user, world, settings):
    html = page(as_user("cashier"))
    stamp = re.search(r'<time datetime="([^"]+)"', html).group(1)
    assert stamp.endswith("+08:00") and settings.TIME_ZONE == "Asia/Kuala_Lumpur"


# --- job status (system administrators only) ---------------------------------------------------


def test_the_system_administrator_sees_each_schedules_last_run_and_failures(as_user, world):
    from staffauth.tasks import lockouts_expire_task

    lockouts_expire_task.apply(headers={"periodic_task_name": "Expire lockout records"})
    report_failing_task.apply()

    html = page(as_user("system_admin"))

    schedules = re.search(r'id="job-schedules">(.*?)</table>', html, re.S).group(1)
    row = re.search(r"Expire lockout records</a></th>(.*?)</tr>", schedules, re.S).group(1)
    assert "Succeeded" in row and "<time" in row
    failures = re.search(r'id="job-failures">(.*?)</table>', html, re.S).group(1)
    assert "tests.workplace.failing_task" in failures and "ReportStoreFull" in failures
    assert "disk full" not in html and "liability-2026-11" not in html
    assert queues(html)["jobs"] == "1 job failed on its last run"
    assert re.search(r'id="service-health">.*Database: <strong>ok</strong>', html, re.S)


def test_a_later_success_clears_a_failed_job(world, staff):
    from loyalty.kernel.models import JobRun

    report_failing_task.apply()
    assert {q.key: q.count for q in workplace(staff["system_admin"]).queues}["jobs"] == 1
    later = timezone.now() + timedelta(minutes=1)
    JobRun.objects.create(
        task_name="tests.workplace.failing_task", started_at=later, finished_at=later, state="success"
    )
    assert {q.key: q.count for q in workplace(staff["system_admin"]).queues}["jobs"] == 0


@pytest.mark.parametrize("role", ["cashier", "store_manager", "program_admin", "fraud_analyst"])
def test_no_other_role_sees_job_status(as_user, world, role):
    report_failing_task.apply()
    html = page(as_user(role))
    assert 'id="workplace-jobs"' not in html and "failing_task" not in html and "service-health" not in html


# --- cost --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", SECTIONS)
def test_the_landing_page_is_a_few_set_based_queries(as_user, world, role, django_assert_max_num_queries):
    client = as_user(role)
    page(client)  # warm: permissions cached on the user per request anyway
    started = time.perf_counter()
    with django_assert_max_num_queries(40):
        page(client)
    elapsed = time.perf_counter() - started
    print(f"landing {role}: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0
