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


def test_a_correction_request_from_intake_to_completion(
    page, csp_violations, seeded_members, staff_by_role, step_up, django_capture_on_commit_callbacks
):
    """Staff take a correction of the name and the phone; the member corrects the phone
    through their verified change (which the page lists, without the value); staff
    correct the name from the page and complete the request."""
    import re

    from loyalty.notifications import LocmemSmsBackend
    from members.services.contact import contact_change_start, contact_phone_confirm
    from members.services.pii import member_pii_read

    member, new_phone, new_name = seeded_members[0], "+60197770002", "Siti Nurhaliza binti Tarudin Betul"
    log_in(page, staff_by_role["program_admin"])
    page.goto("/admin/compliance/datasubjectrequest/intake/")
    page.fill("#id_loyalty_number", member.loyalty_number)
    page.select_option("#id_kind", "correction")
    page.check("#id_fields input[value=name]")
    page.check("#id_fields input[value=phone]")
    page.select_option("#id_identity_check", "nric_sighted")
    shot(page, "correction-1-intake")
    page.click("#dsr-intake button[type=submit]")
    expect(page.locator("#dsr-state")).to_have_text("Identity pending")
    page.select_option("#verify-check", "callback")
    page.fill("#verify-reason", "Called back the registered phone")
    page.click("#action-verify button")
    page.fill("#start-reason", "Name and phone to correct")
    page.click("#action-start button")
    expect(page.locator("#dsr-state")).to_have_text("In progress")
    expect(page.locator("#dsr-correction")).to_contain_text("the member changes it in the app")

    # the member corrects their phone in the app: a step-up, then the code sent to the new number
    step_up(member, "change_phone")
    with django_capture_on_commit_callbacks(execute=True):
        started = contact_change_start(member=member, kind="phone", value=new_phone)
    sms = [m for m in LocmemSmsBackend.outbox if m["to"] == new_phone][-1]["text"]
    code = re.search(r"\b(\d{6})\b", sms).group(1)
    contact_phone_confirm(
        member=member, verification_id=started.verification.id, challenge_id=started.challenge_id, code=code
    )
    page.reload()
    expect(page.locator("#dsr-contact-changes")).to_contain_text("verified")
    expect(page.locator("#dsr-contact-changes")).not_to_contain_text("<time")  # the time renders, not its markup
    expect(page.locator("#dsr-history")).to_contain_text("contact_corrected")
    expect(page.locator("#dsr-state")).to_have_text("In progress")  # the name is still to do
    shot(page, "correction-2-phone-corrected")

    page.select_option("#correct-field", "name")
    page.fill("#correct-value", new_name)
    page.fill("#correct-reason", "Name as on the identity card")
    page.click("#action-correct button")
    expect(page.locator("#dsr-history")).to_contain_text("corrected")
    ref = page.locator(".dsr-contact-change td").first.inner_text()
    page.fill("#complete-reason", f"Name corrected; phone by the member's verified change {ref}")
    page.click("#action-complete button")
    expect(page.locator("#dsr-state")).to_have_text("Completed")
    content = page.content()
    assert new_name not in content and new_phone not in content
    shot(page, "correction-3-completed")
    assert member_pii_read(member.__class__.objects.get(pk=member.pk)).name == new_name
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []
