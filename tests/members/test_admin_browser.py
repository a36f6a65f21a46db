"""The member admin in headless Chromium under the strict CSP (issue 11, D3 and D7): the
search box posts, no request the browser makes carries the phone number or email, and
a store A cashier's member page lists store A's rows only.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from loyalty.workplace.display import member_label
from tests.browser import ARTIFACTS, log_in, open_page
from tests.members.cross_store import OPERATIONS, cross_store_member_make, figures

pytestmark = pytest.mark.browser


@pytest.fixture
def page_and_urls(browser, live_server, csp_violations):
    """A fresh browser page on the live server and every URL it requests."""
    context, page = open_page(browser, live_server.url, csp_violations)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    yield page, urls
    context.close()


def test_a_cashier_finds_a_member_by_phone_and_email_with_no_term_in_any_url(
    page_and_urls, csp_violations, staff_by_role, seeded_members
):
    page, urls = page_and_urls
    member = seeded_members[0]
    log_in(page, staff_by_role["cashier"])

    for term, label in (("012-345 6789", "+60 ••• ••• 89"), ("SITI.nurhaliza@example.com", "S•••@example.com")):
        page.goto("/admin/members/member/?status=active")
        page.fill("#searchbar", term)
        page.click("#changelist-search input[type=submit]")

        expect(page).to_have_url(re.compile(r"/admin/members/member/\?status=active&s=[A-Za-z0-9_-]+$"))
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        expect(page.locator("#result_list")).to_contain_text(member.loyalty_number)
        expect(page.locator("#member-search-summary")).to_contain_text(f"1 result for {label}")
        expect(page.locator("#searchbar")).to_have_value("")

    # The member's page from the result list, then back: the token goes along, no term.
    page.click(f"#result_list a:text-is('{member.loyalty_number}')")
    expect(page.locator("h1")).to_have_text(f"Member {member_label(member)}")
    assert all("6789" not in re.sub(r"\D", "", url) and "siti" not in url.lower() for url in urls), urls
    assert not any(re.search(r"[?&]q=", url) for url in urls), urls
    assert page.evaluate("window.__csp") == []
    assert csp_violations == []


def test_a_store_a_cashier_sees_store_a_rows_only_on_a_store_b_members_page(
    page_and_urls, csp_violations, staff_by_role, store_a, store_b, make_staff
):
    page, _ = page_and_urls
    cross = cross_store_member_make(
        store_a=store_a, store_b=store_b, make_staff=make_staff, program_admin=staff_by_role["program_admin"]
    )
    log_in(page, staff_by_role["cashier"])

    page.goto(f"/admin/members/member/{cross.member.pk}/change/")

    history = page.locator("#member-history")
    expect(history).to_contain_text("Store A")
    expect(history).not_to_contain_text("Store B")
    shown = figures(history.inner_html())
    assert shown & OPERATIONS["A"] and not shown & (OPERATIONS["B"] | OPERATIONS["HQ"])
    expect(page.locator(".field-consent_history")).to_have_count(0)
    page.goto(f"/admin/members/member/{cross.member.pk}/history/")
    expect(page.locator("#change-history")).to_contain_text("Changed by the store A manager")
    expect(page.locator("#change-history")).not_to_contain_text("store B")
    assert csp_violations == []


@pytest.mark.parametrize("role", ["program_admin", "store_manager"])
@pytest.mark.parametrize("width", [1400, 800])
def test_the_member_page_at_desktop_and_tablet_width(
    browser, live_server, csp_violations, staff_by_role, store_a, store_b, make_staff, role, width
):
    """The whole page as a programme administrator and a store manager at 1,400 and
    800 px: every panel shown, no horizontal scroll, no CSP violation; a screenshot each
    (test-artifacts/member-page-<role>-<width>.png)."""
    cross = cross_store_member_make(
        store_a=store_a, store_b=store_b, make_staff=make_staff, program_admin=staff_by_role["program_admin"]
    )
    context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": width, "height": 900})
    try:
        log_in(page, staff_by_role[role])
        page.goto(f"/admin/members/member/{cross.member.pk}/change/")

        for key in ("header", "balance", "actions", "personal_data", "lots", "history", "consents", "sessions"):
            expect(page.locator(f"#panel-{key}")).to_be_visible()
        expect(page.locator(".field-consent_history")).to_have_count(1 if role == "program_admin" else 0)
        expect(page.locator("#panel-history .points").first).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"horizontal scroll of {overflow} px"
        columns = page.evaluate(
            "getComputedStyle(document.querySelector('.member-page')).gridTemplateColumns.split(' ').length"
        )
        assert columns == (2 if width == 1400 else 1)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"member-page-{role}-{width}.png"), full_page=True)
        assert page.evaluate("window.__csp") == []
        assert csp_violations == []
    finally:
        context.close()
