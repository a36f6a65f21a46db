"""The compliance dashboard in real Chromium: a programme administrator reaches it from the
landing page in one click and sees the requests by deadline (the overdue one in red), the
complaints near their deadline, the retention runs and the standing holds; a system
administrator sees the chains (a broken one in red), the runs (downloading a run's
evidence) and the holds. Zero CSP violations and console errors; screenshots in
test-artifacts/compliance/."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from compliance import requests as dsr
from compliance.models import ChainHead, LegalHold, RetentionRun
from tests.browser import log_in

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "compliance"
RED = "rgb(186, 33, 33)"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


@pytest.fixture
def world(staff_by_role, seeded_members):
    admin_user = staff_by_role["program_admin"]
    now = timezone.now()
    late, _ = dsr.request_submit_by_staff(
        staff=admin_user, member=seeded_members[1], kind="erasure", identity_check="callback",
        now=now - timedelta(days=25),
    )  # fmt: skip
    fresh, _ = dsr.request_submit_by_staff(
        staff=admin_user, member=seeded_members[0], kind="access", identity_check="callback"
    )
    run = RetentionRun.objects.create(
        dry_run=True, started_by="schedule", policy={}, state="done", finished_at=now,
        dry_counts={"access": {"compliance_accessevent": 12}},
    )  # fmt: skip
    ChainHead.objects.update_or_create(
        stream="audit", defaults={"seq": 42, "last_verified_at": now, "last_verified_ok": False}
    )
    ChainHead.objects.update_or_create(
        stream="security", defaults={"seq": 7, "last_verified_at": now, "last_verified_ok": True}
    )
    LegalHold.objects.create(
        scope="member", member=seeded_members[1], reason="Litigation hold", placed_by=staff_by_role["system_admin"]
    )
    return {"late": late, "fresh": fresh, "run": run}


def test_a_programme_administrator_reaches_the_dashboard_from_the_landing_page(
    new_page, csp_violations, staff_by_role, world
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = new_page()
    log_in(page, staff_by_role["program_admin"])
    expect(page.locator("#workplace-compliance")).to_contain_text("1 overdue requests")
    page.locator("#workplace-compliance").screenshot(path=ARTIFACTS / "landing-compliance.png")

    page.click("#compliance-dashboard-link")

    expect(page).to_have_url(f"{page.url.split('/admin/')[0]}/admin/compliance/dashboard/")
    expect(page.locator("#content h1")).to_have_text("Compliance dashboard")
    rows = page.locator("#requests-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(world["late"].reference)
    expect(rows.nth(0)).to_have_class("deadline overdue")
    assert rows.nth(0).locator("td.due").evaluate("e => getComputedStyle(e).color") == RED
    assert rows.nth(1).locator("td.due").evaluate("e => getComputedStyle(e).color") != RED
    expect(page.locator("#requests-overdue")).to_contain_text("1 overdue")
    expect(page.locator("#compliance-holds")).to_contain_text("Litigation hold")
    expect(page.locator("#compliance-runs")).to_contain_text("Dry run")
    expect(page.locator("#compliance-chains")).to_have_count(0)
    shot(page, "dashboard-program-admin")
    page.click("#requests-table tbody tr:first-child td:first-child a")
    expect(page.locator("#dsr-state")).to_have_text("Identity pending")
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []


def test_a_system_administrator_sees_the_chains_and_downloads_a_runs_evidence(
    new_page, csp_violations, staff_by_role, world
):
    page = new_page()
    log_in(page, staff_by_role["system_admin"])
    page.goto("/admin/compliance/dashboard/")

    broken = page.locator("#chains-table tr.chain-broken")
    expect(broken).to_contain_text("audit")
    expect(broken).to_contain_text("BROKEN")
    assert broken.locator(".chain-status").evaluate("e => getComputedStyle(e).color") == RED
    expect(page.locator("#chains-table tr.chain-ok")).to_contain_text("security")
    expect(page.locator("#compliance-requests")).to_have_count(0)
    expect(page.locator("#compliance-headline")).to_contain_text("1 broken chains")
    shot(page, "dashboard-system-admin")
    with page.expect_download() as download:
        page.click("#runs-table .evidence-link")
    report = json.loads(Path(download.value.path()).read_text())
    assert report["run"] == world["run"].pk
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []
