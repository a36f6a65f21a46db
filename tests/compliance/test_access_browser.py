"""The access log in headless Chromium under the strict CSP: a cashier opens a member's page,
the system administrator finds that view in Compliance → Access events (names and links)."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from members.services.membership import member_create
from tests.browser import log_in, open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_view_appears_in_the_access_log(browser, live_server, csp_violations, staff_by_role, store_a):
    member = member_create(
        home_store=store_a, name="Access Browser", phone="+60 12-555 0901", email="ab@example.com",
        address="1 Jalan Test", birth_date=date(1990, 1, 1),
    )  # fmt: skip
    console_errors: list[str] = []

    context, page = open_page(browser, live_server.url, csp_violations)
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, staff_by_role["cashier"])
    page.goto(f"/admin/members/member/{member.pk}/change/")
    grouped = " ".join(member.loyalty_number[i : i + 4] for i in range(0, 16, 4))
    expect(page.locator("h1")).to_contain_text(grouped)
    context.close()

    context, page = open_page(browser, live_server.url, csp_violations)
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, staff_by_role["system_admin"])
    page.goto("/admin/compliance/accessevent/?kind__exact=member_view")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Member record viewed")
    expect(rows.first.locator("a", has_text="cashier")).to_have_count(1)
    # A system administrator does not open member pages: the number, not a link.
    expect(rows.first).to_contain_text(grouped)
    expect(rows.first.locator("a", has_text=grouped)).to_have_count(0)
    context.close()

    assert csp_violations == [] and console_errors == []
