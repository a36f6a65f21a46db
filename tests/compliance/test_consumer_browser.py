"""Complaints as staff handle them, in headless Chromium: a store manager files a
complaint on a member's behalf, finds it in the queue, responds and resolves it. Every
page runs under the strict CSP with no violation and no console error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from compliance.models import Complaint
from loyalty.models import OutboundMessage
from members.models import Member
from tests.browser import log_in, open_page

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "complaints"


def test_a_store_manager_files_responds_to_and_resolves_a_complaint(
    browser, live_server, csp_violations, make_staff, store_a
):
    member = Member.objects.create(home_store=store_a)
    manager = make_staff("manager", "store_manager", stores=[store_a])
    context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        log_in(page, manager)

        # intake on the member's behalf
        page.goto("/admin/compliance/complaint/add/")
        page.fill("#id_loyalty_number", member.loyalty_number)
        page.select_option("#id_kind", "service")
        page.select_option("#id_store", str(store_a.pk))
        page.fill("#id_subject", "Long queue at the counter")
        page.fill("#id_body", "The member waited 40 minutes to redeem a voucher.")
        page.screenshot(path=ARTIFACTS / "intake.png", full_page=True)
        page.click("input[name=_save]")
        expect(page).to_have_url(re.compile(r"/admin/compliance/complaint/\d+/change/$"))
        expect(page.locator(".messagelist")).to_contain_text("filed for the member")
        complaint = Complaint.objects.get()
        assert (complaint.channel, complaint.filed_by, complaint.store) == ("staff", manager, store_a)
        expect(page.locator("#complaint-member a")).to_have_count(1)  # the member by name, linked

        # the queue: a deadline, not overdue
        page.goto("/admin/compliance/complaint/")
        row = page.locator("#result_list tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator(".complaint-due")).to_have_count(1)
        page.screenshot(path=ARTIFACTS / "queue.png", full_page=True)
        row.locator(f"a:text-is('C-{complaint.pk}')").click()

        # respond, then resolve
        page.fill("#respond-text", "We are sorry: we are looking into staffing at that hour.")
        page.click("#action-respond button")
        expect(page.locator("#complaint-state")).to_have_text("Responded")
        page.fill("#resolve-text", "An extra cashier now works the evening shift.")
        page.click("#action-resolve button")
        expect(page.locator("#complaint-state")).to_have_text("Resolved")
        expect(page.locator("#complaint-history")).to_contain_text("An extra cashier")
        expect(page.locator("#complaint-actions")).to_have_count(0)
        page.screenshot(path=ARTIFACTS / "resolved.png", full_page=True)

        complaint.refresh_from_db()
        assert complaint.state == "resolved" and complaint.first_responded_at is not None
        assert OutboundMessage.objects.filter(member=member, topic="complaint").count() == 3  # received + 2 answers
        assert page.evaluate("window.__csp") == []
        assert csp_violations == []
        assert errors == []
    finally:
        context.close()
