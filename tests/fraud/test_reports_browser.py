"""The fraud report in real Chromium: a fraud analyst builds today's report from the list,
reads it (trend charts drawn on the server, subjects by name) and finds the CSV link; a
store manager opens the same report and sees their stores' part only. Zero CSP
violations and zero console errors; screenshots in test-artifacts/fraud/."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from fraud.models import FraudReport
from fraud.services import Subject, alert_raise
from members.models import Member
from tests.browser import log_in

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "fraud"


def no_errors(page: Page, csp_violations: list) -> None:
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []


def test_an_analyst_builds_and_reads_todays_report_and_a_manager_sees_their_part(
    new_page, csp_violations, make_staff, store_a, store_b
):
    analyst = make_staff("analyst", "fraud_analyst")
    manager = make_staff("manager", "store_manager", stores=[store_a])
    now = timezone.now()
    for i, store in enumerate((store_a, store_a, store_b)):
        member = Member.objects.create(home_store=store)
        alert_raise(
            detector="devices_rapid_change", subjects=[Subject.member(member.pk)], facts={"devices": 3},
            occurred_at=now, dedupe_key=f"browser:{i}", store_id=store.pk, member_id=member.pk,
        )  # fmt: skip

    page = new_page()
    log_in(page, analyst)
    page.goto("/admin/fraud/fraudreport/")
    page.click("#report-build-link")
    page.select_option("#id_period", "daily")
    page.fill("#id_day", timezone.localdate().isoformat())
    page.click("#report-build")

    expect(page.locator(".messagelist")).to_contain_text("3 alert(s)")
    expect(page.locator("#report-provisional")).to_be_visible()
    expect(page.locator("#report-targets")).to_contain_text("Data-access violations")
    expect(page.locator("#report-trends svg.chart-bars").first).to_be_visible()
    expect(page.locator("#report-detectors")).to_contain_text("Devices rapid change")
    expect(page.locator("#report-stores")).to_contain_text("KLA Store A")
    expect(page.locator("#report-subjects .member-ref").first).to_be_visible()
    expect(page.locator(".report-csv-link")).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-analyst.png", full_page=True)
    no_errors(page, csp_violations)

    report = FraudReport.objects.get()
    scoped = new_page()
    log_in(scoped, manager)
    scoped.goto("/admin/fraud/fraudreport/")
    expect(scoped.locator("#result_list")).to_be_visible()
    expect(scoped.locator("#report-build-link")).to_have_count(0)  # building is for those who see every store
    scoped.goto(f"/admin/fraud/fraudreport/{report.pk}/change/")
    expect(scoped.locator("#report-stores")).to_contain_text("KLA Store A")
    expect(scoped.locator("#report-stores")).not_to_contain_text("PGB")
    expect(scoped.locator("#report-subjects")).to_have_count(0)
    expect(scoped.locator("#report-staff")).to_have_count(0)
    scoped.screenshot(path=ARTIFACTS / "report-store-manager.png", full_page=True)
    no_errors(scoped, csp_violations)
