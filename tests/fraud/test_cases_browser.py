"""A fraud analyst's day with a case, in headless Chromium (Playwright): the fraud dashboard
on their landing page, the case queue, the case page (explained score, timeline) and an
action (a note, then closing the case) — every page under the strict CSP, with no CSP
violation and no console error. Screenshots go to test-artifacts/fraud/.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from fraud.models import CaseEvent, FraudCase
from fraud.services import Subject, alert_raise
from members.models import Member
from tests.browser import log_in, open_page

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "fraud"


@pytest.fixture
def console_errors() -> list:
    return []


@pytest.fixture
def new_page(browser, live_server, csp_violations, console_errors):
    """A page in a fresh browser context, recording CSP violations and console errors."""
    contexts = []

    def make() -> Page:
        context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": 1600, "height": 900})
        page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()


def no_csp_violations(page: Page, csp_violations: list, console_errors: list) -> None:
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []
    assert console_errors == []


@pytest.fixture
def analyst(make_staff):
    return make_staff("analyst", "fraud_analyst")


@pytest.fixture
def case(store_a, analyst):
    member = Member.objects.create(home_store=store_a)
    raised = alert_raise(
        detector="devices_rapid_change", subjects=[Subject.member(member.pk)], facts={"devices": 4},
        occurred_at=timezone.now() - timedelta(days=2), dedupe_key="browser-case", severity="high",
        member_id=member.pk,
    )  # fmt: skip
    case = raised.cases[0]
    FraudCase.objects.filter(pk=case.pk).update(assigned_to=analyst)
    return case


def test_an_analyst_goes_from_the_dashboard_to_a_case_and_closes_it(
    new_page, csp_violations, console_errors, analyst, case
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # given: the analyst signed in; the landing page is the fraud dashboard
    page = new_page()
    log_in(page, analyst)
    dashboard = page.locator("#workplace-fraud")
    expect(dashboard).to_contain_text("My cases")
    expect(page.locator("#fraud-my-cases")).to_contain_text(case.reference)
    expect(page.locator("#fraud-detectors svg title").first).to_contain_text("Fraud alerts by detector")
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
    no_csp_violations(page, csp_violations, console_errors)

    # when: they open the queue, then the case from it
    page.click("#fraud-queue-link")
    expect(page).to_have_url(re.compile(r"/admin/fraud/fraudcase/\?due=open"))
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(case.reference)
    expect(row).to_contain_text("High")
    page.screenshot(path=ARTIFACTS / "queue.png", full_page=True)
    row.locator(f"a:text-is('{case.reference}')").click()

    # then: the case page explains the score and shows the timeline
    expect(page).to_have_url(re.compile(rf"/admin/fraud/fraudcase/{case.pk}/change/"))
    expect(page.locator("#case-header")).to_contain_text(case.reference)
    expect(page.locator("#case-score")).to_contain_text(
        re.compile(r"devices_rapid_change \d+ → \d+ \(2 d old, half-life \d+\)")
    )
    expect(page.locator("#case-timeline")).to_contain_text("Case opened on a signal")
    page.screenshot(path=ARTIFACTS / "case.png", full_page=True)
    no_csp_violations(page, csp_violations, console_errors)

    # when: they start, note and close the case
    page.click("#action-start button")
    expect(page.locator(".messagelist")).to_contain_text("investigation started")
    page.fill("#note-text", "Four new devices in a day; the member confirmed a new phone.")
    page.click("#action-note button")
    expect(page.locator(".messagelist")).to_contain_text("Note added.")
    expect(page.locator("#case-notes")).to_contain_text("the member confirmed a new phone")
    page.select_option("#close-outcome", "not_fraud")
    page.select_option("#close-resolution", "benign")
    page.fill("#close-reason", "New phone, confirmed by the member in store.")
    page.click("#action-close button")

    # then: closed, recorded, and the page now offers a reopen instead
    expect(page.locator(".messagelist")).to_contain_text(f"{case.reference} closed.")
    expect(page.locator("#case-closed")).to_contain_text("Not fraud")
    expect(page.locator("#action-reopen")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "closed.png", full_page=True)
    case.refresh_from_db()
    assert (case.status, case.outcome, case.resolution_reason) == ("closed", "not_fraud", "benign")
    assert CaseEvent.objects.filter(case=case, kind="closed", actor=analyst).count() == 1
    no_csp_violations(page, csp_violations, console_errors)


def test_an_analyst_goes_from_the_dashboard_to_a_case_and_freezes_the_members_spending(
    new_page, csp_violations, console_errors, analyst, case
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # given: the analyst on their landing page
    page = new_page()
    log_in(page, analyst)
    expect(page.locator("#fraud-my-cases")).to_contain_text(case.reference)

    # when: they open the case from the queue and freeze the member's spending
    page.click("#fraud-queue-link")
    page.locator("#result_list tbody tr").locator(f"a:text-is('{case.reference}')").click()
    expect(page.locator("#case-header")).to_contain_text(case.reference)
    page.fill("#freeze-reason", "Four new devices in a day and a redemption attempt.")
    page.click("#action-freeze button")

    # then: the member cannot spend (earning continues), the case is contained, recorded
    expect(page.locator(".messagelist")).to_contain_text("Spending frozen (it lapses unless confirmed).")
    expect(page.locator("#case-timeline")).to_contain_text("Spending frozen")
    page.screenshot(path=ARTIFACTS / "frozen.png", full_page=True)
    no_csp_violations(page, csp_violations, console_errors)
    member = Member.objects.get(pk=case.member_id)
    assert member.spend_frozen_until is not None and member.spend_frozen_until > timezone.now()
    case.refresh_from_db()
    assert case.contained_at is not None
    assert CaseEvent.objects.filter(case=case, actor=analyst, kind="spend_frozen").count() == 1
