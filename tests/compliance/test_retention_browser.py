"""Retention in real Chromium: a system administrator places a legal hold on a record
(with a reason), opens a retention run's page (counts, progress) and downloads its JSON
evidence report, then releases the hold with a reason. Zero CSP violations and console
errors; screenshots in test-artifacts/compliance/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from compliance.models import LegalHold
from compliance.purge import retention_purge
from tests.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("owner_role")]

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "compliance"


def test_a_system_administrator_holds_reads_a_run_downloads_its_evidence_and_releases(
    new_page, csp_violations, make_staff
):
    admin_user = make_staff("sysadmin", "system_admin")
    run = retention_purge(dry_run=True, started_by="browser", category="access")
    page = new_page()
    log_in(page, admin_user)

    page.goto("/admin/compliance/legalhold/add/")
    page.select_option("#id_scope", "record")
    page.fill("#id_table_name", "staffauth_securityevent")
    page.fill("#id_record_pk", "42")
    page.fill("#id_reason", "Litigation hold")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("added successfully")
    hold = LegalHold.objects.get()
    assert hold.placed_by == admin_user and hold.released_at is None
    # a member hold names the member by loyalty number (a system administrator may not browse members)
    from members.models import Member

    member = Member.objects.create()
    page.goto("/admin/compliance/legalhold/add/")
    expect(page.locator("#content a[href*='/admin/members/member/']")).to_have_count(0)
    page.select_option("#id_scope", "member")
    page.fill("#id_loyalty_number", member.loyalty_number)
    page.fill("#id_reason", "Regulator's inquiry")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("added successfully")
    assert LegalHold.objects.get(scope="member").member == member

    page.goto(f"/admin/compliance/retentionrun/{run.pk}/change/")
    expect(page.locator(".field-dry_counts")).to_contain_text("auditlog_logentry")
    with page.expect_download() as download:
        page.click("text=Download the evidence report (JSON)")
    report = json.loads(Path(download.value.path()).read_text())
    assert report["run"] == run.pk and report["started_by"] == "browser"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "retention-run.png", full_page=True)

    page.goto(f"/admin/compliance/legalhold/{hold.pk}/change/")
    page.fill("#id_release_reason", "Case settled")
    page.click("input[name=_save]")
    hold.refresh_from_db()
    assert hold.released_at is not None and hold.released_by == admin_user
    assert csp_violations == []
