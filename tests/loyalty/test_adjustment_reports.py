"""The daily adjustment report (spec, "Adjustment Monitoring"): its rows and totals, the
staff flag, the CSV and its formula guard, the nightly task and its mail to headquarters,
the admin pages with store scoping, the outbox admin, and the shipped schedules."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import expect, sync_playwright

from loyalty.adjustments.models import AdjustmentReason, AdjustmentReport
from loyalty.adjustments.reports import COLUMNS, adjustment_report_build, adjustment_report_csv
from loyalty.adjustments.services import adjustment_approve, adjustment_reject, adjustment_request
from loyalty.adjustments.tasks import adjustment_report_task
from loyalty.kernel.models import OutboundMessage
from loyalty.notifications import messages_deliver_queued, notify_address, notify_member
from staffauth.admin import SCHEDULABLE_TASK_PREFIXES
from tests.browser import ARTIFACTS, CHROMIUM_ARGS, CSP_LISTENER, log_in
from tests.conftest import current_totp, login_verified
from tests.loyalty.conftest import evidence
from tests.services import chromium_path
from tests.subprocess_env import PRODUCTION_ENV, child_env, run_python

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]

KL = ZoneInfo("Asia/Kuala_Lumpur")
DAY = date(2026, 3, 10)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KL)


@pytest.fixture(autouse=True)
def kuala_lumpur(settings):
    # The report's day is a local day; the tests pin the zone they reason in.
    settings.TIME_ZONE = "Asia/Kuala_Lumpur"


@pytest.fixture
def raise_at(member, reason):
    """Raise a request at a local time (``requested_at`` is set by the database clock)."""

    def do(when: datetime, points: int, *, by, store, reason=reason):
        with time_machine.travel(when, tick=False):
            return adjustment_request(
                actor=by, member=member, points=points, reason=reason, store=store, evidence=evidence(points)
            )

    return do


@pytest.fixture
def day_of_requests(staff, member, earn, store_a, store_b, raise_at):
    """DAY in Kuala Lumpur: 5 requests in store A by one manager, 3 in store B, 1 at
    headquarters; and one just before and one just after the local day."""
    with time_machine.travel(local(DAY - timedelta(days=1), 9), tick=False):
        earn(member, 1_000)
    raise_at(local(DAY - timedelta(days=1), 23, 59), 10, by=staff["manager_b"], store=store_b)  # the day before
    manager, manager_b = staff["store_manager"], staff["manager_b"]
    a = [
        raise_at(local(DAY, 0, 0), 100, by=manager, store=store_a),
        raise_at(local(DAY, 10, 1), 200, by=manager, store=store_a),
        raise_at(local(DAY, 10, 2), -50, by=manager, store=store_a),
        raise_at(local(DAY, 10, 3), 600, by=manager, store=store_a),
        raise_at(local(DAY, 10, 4), 700, by=manager, store=store_a),
    ]
    with time_machine.travel(local(DAY, 11), tick=False):
        adjustment_approve(actor=staff["manager_2"], request_id=a[3].pk)
        adjustment_reject(actor=staff["manager_2"], request_id=a[4].pk, reason="No receipt was shown.")
    b = [
        raise_at(local(DAY, 12, 0), 300, by=manager_b, store=store_b),
        raise_at(local(DAY, 12, 1), -20, by=manager_b, store=store_b),
        raise_at(local(DAY, 12, 2), 800, by=manager_b, store=store_b),  # stays pending
    ]
    hq = [raise_at(local(DAY, 23, 59), 150, by=staff["program_admin"], store=None)]
    # 00:10 the next local day is still DAY in UTC: it must not count.
    raise_at(local(DAY + timedelta(days=1), 0, 10), 11, by=manager_b, store=store_b)
    for request in [*a, *b, *hq]:
        request.refresh_from_db()
    return {"a": a, "b": b, "hq": hq}


def by_column(row: list) -> dict:
    return dict(zip(COLUMNS, row, strict=False))


# --- The report --------------------------------------------------------------------------------


def test_the_report_lists_every_request_of_the_local_day(day_of_requests, member, store_a):
    # when
    report = adjustment_report_build(day=DAY)
    # then: the nine requests of the day, oldest first, none from the days around it
    a, b, hq = day_of_requests["a"], day_of_requests["b"], day_of_requests["hq"]
    assert [row[0] for row in report.rows] == [r.pk for r in a + b + hq]
    first = by_column(report.rows[0])
    assert first == {
        "request_id": a[0].pk,
        "requested_at": "2026-03-10T00:00:00+08:00",
        "store": "KLA",
        "requested_by": "store_manager",
        "member": member.loyalty_number,
        "points": 100,
        "band": "direct",
        "reason": "MISSED_EARN",
        "state": "posted",
        "approved_by": "",
        "reviewed_by": "",
        "operation_id": str(a[0].operation_id),
    }
    assert report.rows[0][len(COLUMNS)] == store_a.pk  # the store's id, for scoping; not a CSV column
    approved, rejected = by_column(report.rows[3]), by_column(report.rows[4])
    assert (approved["state"], approved["approved_by"], approved["band"]) == ("posted", "manager_2", "supervisor")
    assert (rejected["state"], rejected["operation_id"]) == ("rejected", None)
    assert by_column(report.rows[7])["state"] == "pending"
    assert by_column(report.rows[8])["store"] == "HQ" and report.rows[8][len(COLUMNS)] is None


def test_totals_by_store_and_by_staff_flag_frequent_requesters(day_of_requests, store_a, store_b):
    report = adjustment_report_build(day=DAY)
    totals = report.totals
    # then: credited and debited count posted points; count is every request raised
    assert totals["all"] == {"count": 9, "posted": 7, "credited": 1_350, "debited": 70}
    assert totals["stores"] == [
        {"store": "KLA", "store_id": store_a.pk, "count": 5, "posted": 4, "credited": 900, "debited": 50},
        {"store": "PGB", "store_id": store_b.pk, "count": 3, "posted": 2, "credited": 300, "debited": 20},
        {"store": "HQ", "store_id": None, "count": 1, "posted": 1, "credited": 150, "debited": 0},
    ]
    assert totals["flag_threshold"] == 5
    assert [(s["username"], s["count"], s["flagged"]) for s in totals["staff"]] == [
        ("store_manager", 5, True),
        ("manager_b", 3, False),
        ("program_admin", 1, False),
    ]


def test_rebuilding_a_day_rewrites_its_one_report(day_of_requests, staff):
    # given: a report built while a request was pending
    first = adjustment_report_build(day=DAY)
    generated = first.generated_at
    pending = day_of_requests["b"][2]
    # when: it is decided, and the day is rebuilt
    with time_machine.travel(local(DAY, 13), tick=False):
        adjustment_reject(
            actor=staff["program_admin"], request_id=pending.pk, reason="Duplicate of an earlier request."
        )
    again = adjustment_report_build(day=DAY)
    # then: still one report for the day, with the new state
    assert AdjustmentReport.objects.filter(day=DAY).count() == 1 and again.pk == first.pk
    assert by_column(again.rows[7])["state"] == "rejected" and len(again.rows) == 9
    assert again.generated_at > generated
    assert adjustment_report_build(day=DAY).rows == again.rows


def test_the_flag_threshold_is_a_setting(day_of_requests, settings):
    settings.ADJUSTMENT_POLICY = {**settings.ADJUSTMENT_POLICY, "report_flag_requests_per_day": 3}
    flagged = [s["username"] for s in adjustment_report_build(day=DAY).totals["staff"] if s["flagged"]]
    assert flagged == ["store_manager", "manager_b"]
    settings.ADJUSTMENT_POLICY = {**settings.ADJUSTMENT_POLICY, "report_flag_requests_per_day": 6}
    assert not any(s["flagged"] for s in adjustment_report_build(day=DAY).totals["staff"])


def test_a_day_without_requests_has_an_empty_report():
    report = adjustment_report_build(day=DAY)
    assert report.rows == [] and report.totals["all"]["count"] == 0 and report.totals["staff"] == []


# --- CSV ---------------------------------------------------------------------------------------


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_has_a_header_and_a_line_per_request(day_of_requests, member):
    report = adjustment_report_build(day=DAY)
    lines = parse(adjustment_report_csv(report))
    assert lines[0] == COLUMNS
    assert len(lines) == 10 and all(len(line) == len(COLUMNS) for line in lines)
    debit = dict(zip(COLUMNS, lines[3], strict=True))
    # numbers stay numbers (no quote before a negative one); an empty cell for "none"
    assert (debit["points"], debit["member"], debit["approved_by"]) == ("-50", member.loyalty_number, "")
    assert dict(zip(COLUMNS, lines[5], strict=True))["operation_id"] == ""


def test_the_csv_defuses_cells_a_spreadsheet_would_run(make_staff, store_a, member, earn, raise_at):
    # given: text fields that start like formulas
    with time_machine.travel(local(DAY, 8), tick=False):
        earn(member, 100)
    sneaky = make_staff("=cmd|'/c calc'!a0", "store_manager", stores=[store_a])
    reason = AdjustmentReason.objects.create(code='+HYPERLINK("x")', label="x")
    at = local(DAY, 9)
    raise_at(at, -5, by=sneaky, store=store_a, reason=reason)
    other = make_staff("@sum", "store_manager", stores=[store_a])
    raise_at(at + timedelta(minutes=1), 7, by=other, store=store_a)
    # when
    lines = parse(adjustment_report_csv(adjustment_report_build(day=DAY)))
    rows = [dict(zip(COLUMNS, line, strict=True)) for line in lines[1:]]
    # then: a leading quote on text, none on the negative number
    assert rows[0]["requested_by"] == "'=cmd|'/c calc'!a0"
    assert rows[0]["reason"] == '\'+HYPERLINK("x")'
    assert rows[0]["points"] == "-5"
    assert rows[1]["requested_by"] == "'@sum"


# --- The nightly task --------------------------------------------------------------------------


def test_the_task_reports_yesterday_and_mails_headquarters_once(day_of_requests, member, mailoutbox):
    # given: the schedule's time, 01:00 UTC the next day
    with time_machine.travel(local(DAY + timedelta(days=1), 9), tick=False):
        # when
        report_id = adjustment_report_task()
        again = adjustment_report_task()
    # then: yesterday's report, and one summary for headquarters in the outbox
    report = AdjustmentReport.objects.get(pk=report_id)
    assert report.day == DAY and again == report_id and len(report.rows) == 9
    message = OutboundMessage.objects.get(topic="adjustment_report")
    hq = settings.ADJUSTMENT_POLICY["hq_email"]
    assert (message.to, message.member, message.status) == (hq, None, "queued")
    assert message.subject == "Daily adjustment report for 2026-03-10"
    assert "9, of which 7 posted" in message.body and "KLA: 5 requests" in message.body
    assert "store_manager (5)" in message.body
    assert member.loyalty_number not in message.body
    # and the outbox delivers it by email
    messages_deliver_queued()
    sent = [m for m in mailoutbox if m.subject == message.subject]
    assert len(sent) == 1 and sent[0].to == [hq] and sent[0].body == message.body
    message.refresh_from_db()
    assert message.status == "sent"


def test_the_task_takes_a_day(day_of_requests):
    report = AdjustmentReport.objects.get(pk=adjustment_report_task(day="2026-03-10"))
    assert report.day == DAY and report.totals["all"]["count"] == 9


# --- The report's admin ------------------------------------------------------------------------


def change_url(report) -> str:
    return reverse("admin:loyalty_adjustmentreport_change", args=[report.pk])


def csv_url(report_or_pk) -> str:
    return reverse("admin:loyalty_adjustmentreport_csv", args=[getattr(report_or_pk, "pk", report_or_pk)])


def test_headquarters_see_the_whole_report_with_a_chart(client, staff, day_of_requests):
    report = adjustment_report_build(day=DAY)
    login_verified(client, staff["program_admin"])
    response = client.get(change_url(report))
    assert response.status_code == 200 and not response.context_data["has_change_permission"]
    page = response.content.decode()
    for request in day_of_requests["a"] + day_of_requests["b"] + day_of_requests["hq"]:
        assert f">#{request.pk}</a></td>" in page
    assert '<tr class="flagged"><td>store_manager</td>' in page
    # the chart: two bars per store, inline SVG without script or inline style (CSP)
    start = page.index('<svg class="report-chart"')
    chart = page[start : page.index("</svg>", start)]
    assert chart.count('<rect class="bar bar-credit"') == 3 and chart.count('<rect class="bar bar-debit"') == 3
    assert "style=" not in chart and "<script" not in chart
    assert f'href="{csv_url(report)}"' in page
    assert "loyalty/reports.css" in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server reads what the test wrote
def test_the_report_page_draws_its_chart_under_the_csp(live_server, staff, day_of_requests):
    # given: a report, and Chromium recording every CSP violation
    report = adjustment_report_build(day=DAY)
    # The code is read here: an ORM query inside Playwright's loop would open a
    # connection of its own that nobody closes (and the test database could not be dropped).
    token = current_totp(staff["program_admin"])
    violations = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=live_server.url)
            context.expose_binding("__cspReport", lambda source, v: violations.append(v))
            context.add_init_script(CSP_LISTENER)
            page = context.new_page()
            log_in(page, staff["program_admin"], token)
            # when
            page.goto(change_url(report))
            # then: the bars are drawn, coloured by the stylesheet, and nothing was refused
            bars = page.locator("svg.report-chart rect.bar-credit")
            expect(bars).to_have_count(3)
            assert bars.first.bounding_box()["width"] > 0
            assert bars.first.evaluate("e => getComputedStyle(e).fill") == "rgb(58, 138, 79)"
            expect(page.locator("#report-staff tr.flagged")).to_have_count(1)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "adjustment-report.png", full_page=True)
        finally:
            browser.close()
    assert violations == []


def test_a_store_manager_sees_only_their_stores_rows(client, staff, day_of_requests):
    report = adjustment_report_build(day=DAY)
    login_verified(client, staff["manager_b"])
    page = client.get(change_url(report)).content.decode()
    # store B's three requests; nothing of store A or headquarters, in rows or totals
    for request in day_of_requests["b"]:
        assert f">#{request.pk}</a></td>" in page
    for request in day_of_requests["a"] + day_of_requests["hq"]:
        assert f">#{request.pk}</a></td>" not in page
    assert ">KLA<" not in page and ">HQ<" not in page and "program_admin" not in page
    assert "<td>store_manager</td>" not in page


def test_the_report_list_shows_each_user_their_own_totals(client, staff, day_of_requests):
    adjustment_report_build(day=DAY)
    login_verified(client, staff["program_admin"])
    assert '<td class="field-count">9</td>' in client.get(reverse("admin:loyalty_adjustmentreport_changelist")).text
    login_verified(client, staff["store_manager"])
    page = client.get(reverse("admin:loyalty_adjustmentreport_changelist")).text
    assert '<td class="field-count">5</td>' in page and '<td class="field-flagged">store_manager</td>' in page


def test_the_csv_download_is_scoped_like_the_page(client, staff, day_of_requests):
    report = adjustment_report_build(day=DAY)
    login_verified(client, staff["program_admin"])
    response = client.get(csv_url(report))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="adjustments-2026-03-10.csv"'
    assert len(parse(response.content.decode())) == 10
    # a store manager of store A: the header and store A's five requests only
    login_verified(client, staff["store_manager"])
    lines = parse(client.get(csv_url(report)).content.decode())
    assert lines[0] == COLUMNS
    assert [int(line[0]) for line in lines[1:]] == [r.pk for r in day_of_requests["a"]]
    assert {line[2] for line in lines[1:]} == {"KLA"}


def test_the_csv_needs_the_view_permission_and_an_existing_report(client, staff, day_of_requests):
    report = adjustment_report_build(day=DAY)
    assert client.get(csv_url(report)).status_code == 302  # anonymous: to the login
    login_verified(client, staff["cashier"])
    assert client.get(csv_url(report)).status_code == 403
    login_verified(client, staff["fraud_analyst"])
    assert client.get(csv_url(report.pk + 1000)).status_code == 404
    assert client.get(csv_url("not-a-number")).status_code == 404
    assert client.get(csv_url(report)).status_code == 200


# --- The outbox's admin ------------------------------------------------------------------------


@pytest.fixture
def messages(member):
    return [
        notify_member(member=member, channel="email", subject="Your points balance was adjusted", body="-", topic="a"),
        notify_address(to="loyalty-hq@example.com", subject="Daily adjustment report", body="-", topic="report"),
    ]


def test_the_outbox_lists_messages_by_loyalty_number_or_address(client, staff, messages, member):
    login_verified(client, staff["system_admin"])
    response = client.get(reverse("admin:loyalty_outboundmessage_changelist"))
    assert response.status_code == 200
    page = response.text
    assert f"member {member.loyalty_number}" in page and "loyalty-hq@example.com" in page
    cl = response.context_data["cl"]
    assert {spec.title for spec in cl.filter_specs} == {"channel", "status", "topic", "created at"}
    assert response.context_data["action_form"] is None or not [
        name for name, _ in response.context_data["action_form"].fields["action"].choices if name
    ]
    searched = client.get(reverse("admin:loyalty_outboundmessage_changelist"), {"q": "daily adjustment"})
    assert list(searched.context_data["cl"].result_list) == [messages[1]]


def test_the_outbox_cannot_be_added_to_changed_or_deleted(client, staff, messages):
    login_verified(client, staff["program_admin"])
    message = messages[0]
    assert client.get(reverse("admin:loyalty_outboundmessage_add")).status_code == 403
    change = client.get(reverse("admin:loyalty_outboundmessage_change", args=[message.pk]))
    assert change.status_code == 200 and not change.context_data["has_change_permission"]
    assert client.post(reverse("admin:loyalty_outboundmessage_change", args=[message.pk]), {}).status_code == 403
    assert client.get(reverse("admin:loyalty_outboundmessage_delete", args=[message.pk])).status_code == 403
    assert client.post(reverse("admin:loyalty_outboundmessage_delete", args=[message.pk])).status_code == 403
    assert OutboundMessage.objects.count() == 2


def test_store_staff_do_not_read_the_outbox(client, staff, messages):
    login_verified(client, staff["store_manager"])
    assert client.get(reverse("admin:loyalty_outboundmessage_changelist")).status_code == 403


# --- Schedules ---------------------------------------------------------------------------------

SHIPPED = {
    "loyalty.tasks.adjustment_report_task": ("0", "1"),
    "loyalty.tasks.adjustments_expire_task": ("40", "*"),
    "loyalty.tasks.messages_deliver_task": ("*", "*"),
}


def test_the_migrations_ship_the_schedules():
    for task, (minute, hour) in SHIPPED.items():
        schedule = PeriodicTask.objects.select_related("crontab").get(task=task)
        crontab = schedule.crontab
        assert schedule.enabled and (crontab.minute, crontab.hour, str(crontab.timezone)) == (minute, hour, "UTC")


def test_every_shipped_schedule_names_a_schedulable_task():
    names = set(PeriodicTask.objects.values_list("task", flat=True))
    assert set(SHIPPED) <= names
    assert all(name.startswith(SCHEDULABLE_TASK_PREFIXES) for name in names)


def test_a_worker_registers_every_shipped_task():
    # As a worker starts: Django set up, then Celery's autodiscovery of the apps' tasks.py.
    code = (
        "import django; django.setup()\n"
        "from loyalty.celery import app\n"
        "app.loader.import_default_modules()\n"
        f"missing = {sorted(SHIPPED)!r}\n"
        "print(' '.join(name for name in missing if name not in app.tasks))\n"
    )
    env = child_env(**PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="loyalty.settings")
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# --- Reports on demand (issue 13) --------------------------------------------------------------------

BUILD = reverse("admin:loyalty_adjustmentreport_build")


def test_a_manager_builds_a_chosen_days_report_and_sees_their_stores_part(client, staff, day_of_requests):
    login_verified(client, staff["store_manager"])
    assert AdjustmentReport.objects.count() == 0

    # the list links to the form, which offers yesterday (local) by default
    assert BUILD in client.get(reverse("admin:loyalty_adjustmentreport_changelist")).content.decode()
    with time_machine.travel(local(DAY + timedelta(days=5), 1), tick=False):
        form = login_verified(Client(), staff["store_manager"]).get(BUILD)
    assert form.status_code == 200 and form.context["form"].initial["day"] == DAY + timedelta(days=4)

    response = client.post(BUILD, {"day": DAY.isoformat()}, follow=True)

    report = AdjustmentReport.objects.get(day=DAY)
    assert response.redirect_chain[-1][0] == reverse("admin:loyalty_adjustmentreport_change", args=[report.pk])
    assert "Report for 2026-03-10 built: 5 request(s)." in [str(m) for m in response.context["messages"]]
    assert {row["store"] for row in response.context["report_rows"]} == {"KLA"}
    assert 'class="report-chart"' in response.content.decode()


def test_an_empty_day_says_so(client, staff):
    login_verified(client, staff["program_admin"])

    response = client.post(BUILD, {"day": DAY.isoformat()}, follow=True)

    assert "No adjustment requests were raised on 2026-03-10: the report is empty." in [
        str(m) for m in response.context["messages"]
    ]
    assert 'id="report-empty"' in response.content.decode()


def test_a_future_day_is_refused(client, staff):
    login_verified(client, staff["program_admin"])
    tomorrow = (datetime.now(KL) + timedelta(days=1)).date()

    response = client.post(BUILD, {"day": tomorrow.isoformat()})

    assert response.status_code == 200
    assert "That day has not happened yet" in str(response.context["form"].errors["day"])
    assert not AdjustmentReport.objects.exists()
