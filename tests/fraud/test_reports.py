"""Fraud reports (FRAUD.md section 4): the figures of a small known day, a final report
never rebuilt (and refused by the database), a provisional one replaced, weekly and monthly
windows, the scope per role (a store manager: their stores' alert counts only), the CSV and
its formula guard, the scheduled tasks with their once-only summary mail (no personal data),
the shipped schedules, and the authorization rows of the pages and actions."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from fraud.models import FraudReport
from fraud.reports import (
    COLUMNS,
    ReportRefused,
    ReportScope,
    fraud_report_build,
    fraud_report_csv,
    fraud_report_publish,
    fraud_report_visible,
    period_bounds,
    today,
)
from fraud.services import Subject, alert_raise, case_close
from fraud.tasks import fraud_report_daily_task, fraud_report_weekly_task
from loyalty.kernel.models import OutboundMessage
from loyalty.ledger.operations import Actor, points_earn
from members.models import Member
from tests.concurrency import race
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db

KL = ZoneInfo("Asia/Kuala_Lumpur")
DAY = date(2026, 3, 10)  # a Tuesday


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KL)


@pytest.fixture(autouse=True)
def kuala_lumpur(settings):
    settings.TIME_ZONE = "Asia/Kuala_Lumpur"
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)
    settings.FRAUD_REPORT_RECIPIENTS = ["fraud-team@example.com", "fraud-lead@example.com"]


def _raise(detector, subject, *, at, occurred, key, store=None, member=None, staff=None):
    with time_machine.travel(at, tick=False):
        return alert_raise(
            detector=detector, subjects=[subject], facts={"count": 1}, occurred_at=occurred, dedupe_key=key,
            store_id=store.pk if store else None, member_id=member.pk if member else None,
            staff_id=staff.pk if staff else None, now=at,
        )  # fmt: skip


@pytest.fixture
def day_world(staff_by_role, store_a, store_b):
    """DAY, local time: four earns; three alerts (an account takeover signal at store A
    detected in 30 min, an unmatched return at store B in 3 h, a cashier's adjustments at
    store A in 10 min); the first case closed confirmed (4 h after opening), the second
    not fraud (2 h), the third left open and overdue by DAY+2."""
    analyst, cashier = staff_by_role["fraud_analyst"], staff_by_role["cashier"]
    m1, m2 = Member.objects.create(home_store=store_a), Member.objects.create(home_store=store_b)
    for i in range(4):
        with time_machine.travel(local(DAY, 9, i), tick=False):
            assert points_earn(
                member=m1, points=10, receipt_ref=f"R-{i}", actor=Actor(staff=cashier, store=store_a),
                idempotency_key=f"earn-{i}",
            ).ok  # fmt: skip
    ato = _raise("devices_rapid_change", Subject.member(m1.pk), at=local(DAY, 10), occurred=local(DAY, 9, 30),
                 key="r:ato", store=store_a, member=m1)  # fmt: skip
    ret = _raise("return_unmatched", Subject.member(m2.pk), at=local(DAY, 11), occurred=local(DAY, 8),
                 key="r:ret", store=store_b, member=m2)  # fmt: skip
    staff = _raise("staff_adjust_frequency", Subject.staff(cashier.pk), at=local(DAY, 12),
                   occurred=local(DAY, 11, 50), key="r:staff", store=store_a, staff=cashier)  # fmt: skip
    case_close(case_id=ato.cases[0].pk, outcome="confirmed_fraud", resolution_reason="contained", actor=analyst,
               now=local(DAY, 14))  # fmt: skip
    case_close(case_id=ret.cases[0].pk, outcome="not_fraud", resolution_reason="false_positive", actor=analyst,
               now=local(DAY, 13))  # fmt: skip
    return {"m1": m1, "m2": m2, "cashier": cashier, "analyst": analyst, "staff_case": staff.cases[0]}


def build_final(day=DAY, period="daily"):
    return fraud_report_build(period=period, day=day, now=local(day + timedelta(days=2), 9))


def test_the_figures_of_a_known_day(day_world, store_a, store_b):
    report, built = build_final()

    totals = report.totals
    assert built and report.final and (report.start, report.end) == (DAY, DAY + timedelta(days=1))
    assert (totals["alerts"], totals["signals"], totals["operations"]) == (3, 3, 4)
    detectors = {d["detector"]: d for d in totals["detectors"]}
    assert {k: (d["alerts"], d["closed"], d["confirmed"], d["precision"]) for k, d in detectors.items()} == {
        "devices_rapid_change": (1, 1, 1, 100.0),
        "return_unmatched": (1, 1, 0, 0.0),
        "staff_adjust_frequency": (1, 0, 0, None),
    }
    assert [(s["store"], s["alerts"]) for s in totals["stores"]] == [("KLA", 2), ("PGB", 1)]
    assert [(s["username"], s["alerts"]) for s in totals["staff"]] == [("cashier", 1)]
    cases = {c["inbox"]: c for c in totals["cases"]}
    assert (cases["ato"]["opened"], cases["ato"]["closed"], cases["ato"]["confirmed"]) == (1, 1, 1)
    assert (cases["returns"]["closed"], cases["returns"]["confirmed"]) == (1, 0)
    assert (cases["insider"]["open"], cases["insider"]["overdue"]) == (1, 1)
    assert (totals["open_cases"], totals["overdue_cases"]) == (1, 1)
    assert totals["detection"] == {"count": 3, "median": 30.0, "p90": 180.0}
    assert totals["remediation"] == {"count": 2, "median": 2.0, "p90": 4.0}
    metrics = {m["code"]: (m["value"], m["met"]) for m in totals["metrics"]}
    assert metrics == {
        "fraud_incident_rate_percent": (25.0, False),  # 1 confirmed alert of 4 operations
        "ato_rate_percent": (50.0, False),  # 1 confirmed takeover of 2 active members
        "detection_p90_minutes": (180.0, False),
        "remediation_p90_hours": (4.0, True),
        "data_access_violations": (0, True),
    }
    subjects = [row for row in report.rows if row[0] == "subject"]
    assert [row[6] for row in subjects] == [
        f"member:{day_world['m1'].pk}",
        f"member:{day_world['m2'].pk}",
        f"staff:{day_world['cashier'].pk}",
    ]
    assert subjects[0][1] == f"member {day_world['m1'].loyalty_number}" and subjects[0][3] == 30
    assert totals["notes"]  # points frozen/recovered: not recorded yet, said so


def test_a_final_report_is_never_rebuilt_and_the_database_refuses_changing_it(day_world, store_a):
    report, _ = build_final()
    _raise("devices_rapid_change", Subject.member(day_world["m2"].pk), at=local(DAY, 18),
           occurred=local(DAY, 17), key="r:late", store=store_a)  # fmt: skip

    again, built = build_final()

    assert (again.pk, built, again.totals["alerts"], again.built_at) == (report.pk, False, 3, report.built_at)
    with pytest.raises(IntegrityError), transaction.atomic():
        FraudReport.objects.filter(pk=report.pk).update(rows=[])
    with pytest.raises(IntegrityError), transaction.atomic():
        FraudReport.objects.filter(pk=report.pk).delete()


def test_a_provisional_report_is_replaced_by_the_next_build(day_world, store_a):
    early, built = fraud_report_build(period="daily", day=DAY, now=local(DAY, 10, 30))
    assert built and not early.final and early.totals["alerts"] == 1

    later, built = fraud_report_build(period="daily", day=DAY, now=local(DAY, 23))

    assert built and later.pk == early.pk and not later.final and later.totals["alerts"] == 3
    assert FraudReport.objects.count() == 1


def test_weekly_and_monthly_windows_and_refusals(day_world):
    assert period_bounds("weekly", DAY) == (date(2026, 3, 9), date(2026, 3, 16))
    assert period_bounds("monthly", DAY) == (date(2026, 3, 1), date(2026, 4, 1))
    week, _ = fraud_report_build(period="weekly", day=DAY, now=local(date(2026, 3, 16), 9))
    month, _ = fraud_report_build(period="monthly", day=DAY, now=local(date(2026, 3, 20), 9))
    assert (week.final, week.totals["alerts"]) == (True, 3)
    assert (month.final, month.totals["alerts"]) == (False, 3)
    with pytest.raises(ReportRefused) as refused:
        fraud_report_build(period="daily", day=DAY, now=local(DAY - timedelta(days=1), 9))
    assert refused.value.code == "future_period"
    with pytest.raises(ReportRefused):
        fraud_report_build(period="yearly", day=DAY)


def test_a_store_manager_sees_only_their_stores_alert_counts(day_world, staff_by_role, store_a):
    report, _ = build_final()
    scope = ReportScope.for_user(staff_by_role["store_manager"])

    rows, totals = fraud_report_visible(report, scope=scope)

    assert {row[0] for row in rows} == {"store"} and {row[1] for row in rows} == {"KLA"}
    assert [(s["store"], s["alerts"]) for s in totals["stores"]] == [("KLA", 2)]
    assert not {"staff", "detectors", "metrics", "cases", "open_cases"} & set(totals)
    assert fraud_report_visible(report, scope=ReportScope.for_user(staff_by_role["program_admin"]))[0] == report.rows


def test_the_csv(day_world):
    report, _ = build_final()

    table = list(csv.reader(io.StringIO(fraud_report_csv(report))))

    assert table[0] == COLUMNS
    assert ["detector", "devices_rapid_change", "precision", "100.0", ""] in table
    assert ["store", "KLA", "staff_adjust_frequency", "1", ""] in table
    assert ["metric", "remediation_p90_hours", "value", "4.0", "24"] in table
    assert ["staff", "cashier", "staff_adjust_frequency", "1", ""] in table
    assert all(len(row) == len(COLUMNS) for row in table)  # the store id and subject key stay out
    guarded = fraud_report_csv(report, rows=[["store", "=HYPERLINK()", "-1", -1, None, 1, None]])
    assert list(csv.reader(io.StringIO(guarded)))[1] == ["store", "'=HYPERLINK()", "'-1", "-1", ""]


def test_the_daily_task_mails_a_summary_once_without_personal_data(day_world):
    with time_machine.travel(local(DAY + timedelta(days=1), 9, 30), tick=False):
        first = fraud_report_daily_task()
        second = fraud_report_daily_task()

    assert first == second == FraudReport.objects.get(period="daily", start=DAY).pk
    mails = OutboundMessage.objects.filter(topic="fraud_report").order_by("to")
    assert [m.to for m in mails] == ["fraud-lead@example.com", "fraud-team@example.com"]
    body = mails[0].body
    assert "Alerts: 3; signals: 3. Open cases: 1, of which 0 overdue." in body
    assert "devices_rapid_change: 1 alerts, 1 signals, precision 100%" in body
    assert "KLA: 2" in body
    for secret in (day_world["m1"].loyalty_number, day_world["m2"].loyalty_number, "cashier", "fraud_analyst"):
        assert secret not in body


def test_the_weekly_task_builds_last_week(day_world):
    with time_machine.travel(local(date(2026, 3, 16), 9, 45), tick=False):
        pk = fraud_report_weekly_task()
    report = FraudReport.objects.get(pk=pk)
    assert (report.period, report.start, report.final, report.totals["alerts"]) == ("weekly", date(2026, 3, 9), True, 3)


def test_the_schedules_are_shipped():
    shipped = {
        t.name: (t.task, t.crontab.minute, t.crontab.hour, t.crontab.day_of_week, t.crontab.day_of_month)
        for t in PeriodicTask.objects.filter(name__endswith="fraud report").select_related("crontab")
    }
    assert shipped == {
        "Daily fraud report": ("fraud.tasks.fraud_report_daily_task", "30", "1", "*", "*"),
        "Weekly fraud report": ("fraud.tasks.fraud_report_weekly_task", "45", "1", "1", "*"),
        "Monthly fraud report": ("fraud.tasks.fraud_report_monthly_task", "0", "2", "*", "1"),
    }


# --- The admin: pages and their authorization rows ------------------------------------------------

PRINCIPALS = ["anonymous", "cashier", "store_manager", "program_admin", "system_admin", "fraud_analyst"]
# Page -> principal -> outcome ("login": sent to log in; "built": redirected to the report).
FRAUD_REPORT_VIEWS: dict[str, dict[str, str | int]] = {
    "fraud_fraudreport_changelist": {
        "anonymous": "login", "cashier": 403, "store_manager": 200, "program_admin": 200, "system_admin": 403,
        "fraud_analyst": 200,
    },
    "fraud_fraudreport_change": {
        "anonymous": "login", "cashier": 403, "store_manager": 200, "program_admin": 200, "system_admin": 403,
        "fraud_analyst": 200,
    },
    "fraud_fraudreport_csv": {
        "anonymous": "login", "cashier": 403, "store_manager": 200, "program_admin": 200, "system_admin": 403,
        "fraud_analyst": 200,
    },
    # Building writes a programme-wide record: only those who see every store.
    "fraud_fraudreport_build": {
        "anonymous": "login", "cashier": 403, "store_manager": 403, "program_admin": "built", "system_admin": 403,
        "fraud_analyst": "built",
    },
}  # fmt: skip


def test_the_fraud_report_views_rows(staff_by_role):
    report, _ = fraud_report_build(period="daily", day=DAY, now=local(DAY + timedelta(days=1), 9))
    urls = {
        "fraud_fraudreport_changelist": ("get", reverse("admin:fraud_fraudreport_changelist"), None),
        "fraud_fraudreport_change": ("get", reverse("admin:fraud_fraudreport_change", args=[report.pk]), None),
        "fraud_fraudreport_csv": ("get", reverse("admin:fraud_fraudreport_csv", args=[report.pk]), None),
        "fraud_fraudreport_build": (
            "post", reverse("admin:fraud_fraudreport_build"), {"period": "daily", "day": today().isoformat()},
        ),
    }  # fmt: skip

    def outcome(response) -> str | int:
        if response.status_code != 302:
            return response.status_code
        if response["Location"].startswith("/admin/login/"):
            return "login"
        return "built" if "/admin/fraud/fraudreport/" in response["Location"] else response["Location"]

    mismatches = []
    for view, expected in FRAUD_REPORT_VIEWS.items():
        assert set(expected) == set(PRINCIPALS), view
        method, url, body = urls[view]
        for principal in PRINCIPALS:
            client = Client()
            if principal in staff_by_role:
                login_verified(client, staff_by_role[principal])
            FraudReport.objects.filter(start=today()).delete()  # provisional: the day is running
            got = outcome(getattr(client, method)(url, body) if body else getattr(client, method)(url))
            if got != expected[principal]:
                mismatches.append(f"{principal} {view}: expected {expected[principal]}, got {got}")
            if view == "fraud_fraudreport_build" and got in (403, "login"):
                assert not FraudReport.objects.filter(start=today()).exists(), principal
    assert not mismatches, "\n".join(mismatches)


def test_the_page_names_subjects_and_a_store_manager_sees_their_part(day_world, staff_by_role):
    report, _ = build_final()
    url = reverse("admin:fraud_fraudreport_change", args=[report.pk])

    analyst_page = login_verified(Client(), staff_by_role["fraud_analyst"]).get(url).content.decode()
    manager_page = login_verified(Client(), staff_by_role["store_manager"]).get(url).content.decode()
    manager_csv = login_verified(Client(), staff_by_role["store_manager"]).get(
        reverse("admin:fraud_fraudreport_csv", args=[report.pk])
    )

    for section in ("report-targets", "report-detectors", "report-staff", "report-subjects", "report-cases"):
        assert f'id="{section}"' in analyst_page and f'id="{section}"' not in manager_page
    assert 'id="report-stores"' in manager_page and "svg" in manager_page
    number = day_world["m1"].loyalty_number
    assert " ".join(number[i : i + 4] for i in range(0, len(number), 4)) in analyst_page  # by name, not id
    assert f"member:{day_world['m1'].pk}" not in analyst_page
    assert "PGB" not in manager_page and "cashier" not in manager_page and "field-built_by_ref" not in manager_page
    assert "field-built_by_ref" in analyst_page
    rows = list(csv.reader(io.StringIO(manager_csv.content.decode())))
    assert rows[0] == COLUMNS and {row[1] for row in rows[1:]} == {"KLA"} and {row[0] for row in rows[1:]} == {"store"}


def test_building_on_demand_reports_a_final_period_as_it_was(day_world, staff_by_role):
    build_final()
    client = login_verified(Client(), staff_by_role["fraud_analyst"])

    response = client.post(reverse("admin:fraud_fraudreport_build"), {"period": "daily", "day": DAY.isoformat()},
                           follow=True)  # fmt: skip
    future = client.post(reverse("admin:fraud_fraudreport_build"), {"period": "daily", "day": "2999-01-01"})

    assert "is final: shown as built" in response.content.decode()
    assert future.status_code == 200 and "has not happened yet" in future.content.decode()
    assert FraudReport.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_builds_and_publishes_write_one_report_and_one_summary_each(settings):
    settings.FRAUD_REPORT_RECIPIENTS = ["fraud-team@example.com"]
    when = local(DAY + timedelta(days=1), 9, 30)
    results = race(*[lambda: fraud_report_publish(period="daily", day=DAY, now=when).pk for _ in range(6)])

    assert len(set(results)) == 1 and FraudReport.objects.count() == 1
    assert OutboundMessage.objects.filter(topic="fraud_report").count() == 1
