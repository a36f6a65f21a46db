"""A data-subject request in real Chromium: a Program Administrator takes an access
request on a member's behalf, verifies the identity (call-back), starts it; the worker
builds the export; the page shows it completed with the export waiting. Zero CSP
violations and console errors; screenshots in test-artifacts/compliance/."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from compliance.models import DataSubjectRequest
from compliance.tasks import dsr_export_build_task
from tests.browser import log_in, open_page

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "compliance"


@pytest.fixture
def page(browser, live_server, csp_violations):
    context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": 1400, "height": 900})
    page.on("console", lambda msg: csp_violations.append(f"console error: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: csp_violations.append(f"page error: {exc}"))
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_an_access_request_from_intake_to_export(page, csp_violations, seeded_members, staff_by_role):
    member = seeded_members[0]
    log_in(page, staff_by_role["program_admin"])
    page.goto("/admin/compliance/datasubjectrequest/")
    page.click("#dsr-intake-link")
    page.fill("#id_loyalty_number", member.loyalty_number)
    page.select_option("#id_kind", "access")
    page.select_option("#id_identity_check", "callback")
    shot(page, "1-intake")
    page.click("#dsr-intake button[type=submit]")
    expect(page.locator("#dsr-state")).to_have_text("Identity pending")
    page.select_option("#verify-check", "callback")
    page.fill("#verify-reason", "Called back the registered phone")
    page.click("#action-verify button")
    expect(page.locator("#dsr-state")).to_have_text("Verified")
    page.fill("#start-reason", "Member asked at the counter")
    page.click("#action-start button")
    expect(page.locator("#dsr-state")).to_have_text("In progress")
    shot(page, "2-in-progress")
    request = DataSubjectRequest.objects.get(member=member)
    dsr_export_build_task.run(request.pk)  # what the worker does after the commit
    page.reload()
    expect(page.locator("#dsr-state")).to_have_text("Completed")
    expect(page.locator(".dsr-export")).to_contain_text("waiting for the member")
    expect(page.locator("#dsr-history")).to_contain_text("export_built")
    shot(page, "3-completed")
    page.goto("/admin/compliance/datasubjectrequest/")
    expect(page.locator("#result_list")).to_contain_text(request.reference)
    shot(page, "4-queue")
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []
