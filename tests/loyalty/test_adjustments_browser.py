"""Maker-checker adjustments as staff do them: headless Chromium driven by Playwright.

A store manager raises a 1,200-point adjustment through the admin form; a programme
administrator, in a browser of their own, finds it in the queue and approves it; the
ledger shows the posting. And the requester, who sees no Approve button on their own
request, cannot approve it with a forged post either. Every page runs under the
strict CSP, and each test asserts there were no violations (see tests/staffauth/test_browser.py).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from loyalty.adjustments.models import AdjustmentEvent, AdjustmentReason, AdjustmentRequest
from loyalty.adjustments.services import Evidence, adjustment_request
from loyalty.ledger.models import LedgerOperation, MemberBalance
from tests.browser import log_in, open_page

pytestmark = pytest.mark.browser

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "adjustments"
JUSTIFICATION = "Customer showed the receipt; the till was offline during the purchase."


@pytest.fixture
def new_page(browser, live_server, csp_violations):
    """A page in a fresh browser context (one person's browser), recording CSP violations."""
    contexts = []

    def make() -> Page:
        context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": 1600, "height": 900})
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def people(make_staff, store_a):
    return {
        "manager": make_staff("manager", "store_manager", stores=[store_a]),
        "progadmin": make_staff("progadmin", "program_admin"),
    }


@pytest.fixture
def reason():
    # Seeded by a migration, but a live-server test's flush removes it for the next one.
    return AdjustmentReason.objects.get_or_create(code="MISSED_EARN", defaults={"label": "Purchase not credited"})[0]


def no_csp_violations(page: Page, csp_violations: list) -> None:
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []


def test_a_manager_requests_1200_points_and_a_programme_administrator_approves(
    new_page, csp_violations, people, member, store_a, reason
):
    # given: a store manager signed in with password and TOTP
    manager = new_page()
    log_in(manager, people["manager"])

    # when: they raise 1,200 points through the form, with the phone verification record
    manager.goto("/admin/loyalty/adjustmentrequest/add/")
    expect(manager.locator("#adjustment-bands")).to_contain_text("needs a supervisor")
    manager.fill("#id_loyalty_number", member.loyalty_number)
    manager.fill("#id_points", "1200")
    manager.select_option("#id_reason", label=str(reason))
    expect(manager.locator("#id_store")).to_have_value(str(store_a.pk))  # their only store
    manager.fill("#id_justification", JUSTIFICATION)
    manager.select_option("#id_verification_method", "phone")
    manager.fill("#id_verified_by", "A. Manager")
    manager.fill("#id_verified_at", f"{timezone.localtime() - timedelta(minutes=10):%Y-%m-%dT%H:%M}")
    manager.fill("#id_verification_outcome", "Member confirmed the purchase and the date.")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    manager.screenshot(path=ARTIFACTS / "request-form.png", full_page=True)
    manager.click("input[name=_save]")

    # then: the request page, pending, with no button for its requester
    expect(manager).to_have_url(re.compile(r"/admin/loyalty/adjustmentrequest/\d+/change/$"))
    expect(manager.locator(".messagelist")).to_contain_text("wait for approval")
    request = AdjustmentRequest.objects.get()
    assert (request.points, request.state, request.store, request.band) == (1_200, "pending", store_a, "supervisor")
    expect(manager.locator("#decision-approve")).to_have_count(0)
    no_csp_violations(manager, csp_violations)

    # when: a programme administrator, in their own browser, follows the index to the queue
    admin = new_page()
    log_in(admin, people["progadmin"])
    awaiting = admin.locator("#adjustments-awaiting a")
    expect(awaiting).to_have_text("1 adjustment request awaits your decision")
    awaiting.click()
    expect(admin).to_have_url(re.compile(r"awaiting=me"))
    row = admin.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(member.loyalty_number)
    expect(row).to_contain_text("+1,200")
    expect(row).to_contain_text("manager")
    admin.screenshot(path=ARTIFACTS / "queue.png", full_page=True)

    # and opens the request and approves it with a comment
    row.locator(f"a:text-is('#{request.pk}')").click()
    expect(admin.locator("#adjustment-events")).to_contain_text("Requested")
    expect(admin.locator("#decision-review")).to_have_count(0)
    admin.fill("#id_decision_comment", "Receipt checked against the till journal.")
    admin.click("#decision-approve")

    # then: posted, with the events on the page
    expect(admin.locator(".messagelist")).to_contain_text("approved and posted: +1,200 points")
    expect(admin.locator("#adjustment-events")).to_contain_text("Receipt checked against the till journal.")
    expect(admin.locator("#adjustment-events")).to_contain_text("Posted to the ledger")
    expect(admin.locator("#adjustment-decision")).to_have_count(0)
    admin.screenshot(path=ARTIFACTS / "approved.png", full_page=True)

    # and the member's balance and the ledger show the posting
    request.refresh_from_db()
    assert request.state == "posted" and request.approved_by == people["progadmin"]
    operation = LedgerOperation.objects.get(kind="adjust")
    assert (operation.points, operation.member, operation.actor_staff) == (1_200, member, people["progadmin"])
    assert request.operation == operation
    assert MemberBalance.objects.get(account__member=member).available == 1_200
    admin.goto(f"/admin/members/member/{member.pk}/change/")
    expect(admin.locator("#panel-balance dl")).to_contain_text(re.compile(r"Available\s*1,200(?!\d)"))
    admin.goto(f"/admin/loyalty/ledgeroperation/{operation.pk}/change/")
    expect(admin.locator(".field-points")).to_contain_text("1200")
    no_csp_violations(admin, csp_violations)


def test_the_requester_sees_no_approve_button_and_a_forged_approval_is_refused(
    new_page, csp_violations, people, member, store_a, reason
):
    # given: the store manager's own pending request
    request = adjustment_request(
        actor=people["manager"],
        member=member,
        points=1_200,
        reason=reason,
        store=store_a,
        evidence=Evidence(
            justification=JUSTIFICATION,
            verification_method="phone",
            verified_by="A. Manager",
            verified_at=timezone.now() - timedelta(minutes=10),
            verification_outcome="Member confirmed the purchase and the date.",
        ),
    )
    page = new_page()
    log_in(page, people["manager"])

    # when: they open it
    page_url = f"/admin/loyalty/adjustmentrequest/{request.pk}/change/"
    page.goto(page_url)

    # then: no decision buttons
    expect(page.locator("#content-main")).to_contain_text("+1,200")
    expect(page.locator("#decision-approve")).to_have_count(0)
    expect(page.locator("#adjustment-decision")).to_have_count(0)
    no_csp_violations(page, csp_violations)

    # when: they forge the approval from their signed-in browser, with a valid CSRF token
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    approve = f"/admin/loyalty/adjustmentrequest/{request.pk}/approve/"
    forged = page.request.post(approve, form={"csrfmiddlewaretoken": token, "comment": "Approving my own."})

    # then: refused with a message on the request page, and nothing posts
    assert forged.ok and forged.url.endswith(page_url), (forged.status, forged.url)
    assert "Nobody approves, reviews or rejects their own request." in forged.text()
    # and without the token the post does not even reach the service
    assert page.request.post(approve, form={"comment": "Approving my own."}).status == 403
    request.refresh_from_db()
    assert request.state == "pending" and request.approved_by is None and request.operation is None
    assert not LedgerOperation.objects.filter(kind="adjust").exists()
    assert not MemberBalance.objects.filter(account__member=member, credits_posted__gt=0).exists()
    assert list(AdjustmentEvent.objects.filter(request=request).values_list("kind", flat=True)) == ["requested"]
    page.reload()
    expect(page.locator("#decision-approve")).to_have_count(0)
    no_csp_violations(page, csp_violations)


# --- The decision panel's layout (issue 13) ----------------------------------------------------------------------


def box(page: Page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not rendered"
    return found


@pytest.mark.usefixtures("velocity_off")
@pytest.mark.parametrize(
    ("who", "points", "first_button"),
    [("program_admin", 1_200, "#decision-approve"), ("fraud_analyst", 2_500, "#decision-review")],
)
def test_the_decision_panel_is_compact_under_the_record_with_its_buttons_before_close(
    new_page, csp_violations, staff, raise_request, who, points, first_button
):
    # given: a pending request by a store manager that ``who`` may decide
    request = raise_request(points)
    page = new_page()
    log_in(page, staff[who])

    # when: they open it
    page.goto(f"/admin/loyalty/adjustmentrequest/{request.pk}/change/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"decision-{who}.png", full_page=True)

    # then: the panel's heading is one line high (it was ~1,600 px: pushed below the floated record)
    heading = box(page, "#adjustment-decision h2")
    assert heading["height"] < 100, heading
    # and the panel sits right under the record, its buttons before "Close", on screen and in the DOM
    record, panel = box(page, "#adjustment-events"), box(page, "#adjustment-decision")
    assert 0 <= panel["y"] - (record["y"] + record["height"]) < 80, (record, panel)
    close = page.locator("#content-main a.closelink")
    expect(close).to_have_count(1)
    buttons = page.locator("#adjustment-decision input[type=submit]")
    assert buttons.count() == 2
    assert box(page, first_button)["y"] < box(page, "#content-main a.closelink")["y"]
    assert page.evaluate(
        """([button]) => Boolean(document.querySelector(button).compareDocumentPosition(
               document.querySelector('#content-main a.closelink')) & Node.DOCUMENT_POSITION_FOLLOWING)""",
        [first_button],
    )
    # and the buttons still post the panel's form (its comment and CSRF token)
    page.fill("#id_decision_comment", "Checked against the till journal.")
    page.click(first_button)
    expect(page.locator(".messagelist")).to_contain_text(f"Request #{request.pk}")
    request.refresh_from_db()
    assert request.events.filter(comment="Checked against the till journal.").exists()
    no_csp_violations(page, csp_violations)
