"""The admin login as a person sees it: headless Chromium driven by Playwright.

Runs against pytest-django's ``live_server`` (http://localhost:<port>) with the real
test settings: DEBUG off, ``__Host-`` Secure cookies and the strict CSP. Chromium
treats http://localhost as a secure context, so it stores the Secure cookies there.
Every page load records CSP violations (console messages and
``securitypolicyviolation`` events), and each test asserts there were none.
"""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

from tests.browser import ARTIFACTS, log_in, open_page, password_step
from tests.conftest import current_totp

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, live_server, csp_violations):
    """A fresh browser context (no cookies) on the live server, recording CSP violations."""
    context, page = open_page(browser, live_server.url, csp_violations)
    yield page
    context.close()


def otp_for_secret(secret: str) -> str:
    """The current 6-digit TOTP code of a base32 secret, as an authenticator app shows it."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, step=30, t0=0, digits=6):06d}"


def test_system_admin_logs_in_and_the_admin_runs_under_the_csp(page, csp_violations, make_staff, make_store):
    store = make_store("KLA", name="Store A", region="Central")
    make_store("PGB", name="Store B", region="North")
    admin = make_staff("sysadmin", "system_admin")

    password_step(page, "sysadmin")
    expect(page).to_have_url(re.compile(r"/admin/otp/verify/\?next=/admin/$"))
    expect(page.locator("#content-main")).to_contain_text("Signed in as sysadmin")
    page.fill("#id_otp_token", current_totp(admin))
    page.click("#otp-form input[type=submit]")

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("h1")).to_have_text("System administrator · all stores")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["__Host-sessionid"]["secure"] and cookies["__Host-sessionid"]["httpOnly"]

    # Changelist: the filter sidebar and the action bar are built by the admin's JS.
    page.goto("/admin/loyalty/store/")
    expect(page.locator("#result_list")).to_contain_text("Store A")
    expect(page.locator("#changelist-filter")).to_contain_text("By region")
    page.click("#changelist-filter a:text-is('North')")
    expect(page).to_have_url(re.compile(r"region=North"))
    expect(page.locator("#result_list")).not_to_contain_text("Store A")

    # Change form of a store.
    page.goto(f"/admin/loyalty/store/{store.pk}/change/")
    expect(page.locator("#id_name")).to_have_value("Store A")

    # Staff add form: filter_horizontal (SelectFilter2.js) and the stores autocomplete (select2).
    page.goto("/admin/staffauth/staffuser/add/")
    expect(page.locator("#id_groups_from")).to_be_visible()  # only exists once SelectFilter2 ran
    page.click("#id_groups_from option:text-is('Cashier')")
    page.click("#id_groups_add")
    expect(page.locator("#id_groups_to option")).to_have_text(["Cashier"])
    page.click(".field-stores .select2-selection")
    page.fill(".select2-search__field", "PGB")
    expect(page.locator(".select2-results__option")).to_have_text([re.compile("Store B")])

    # Tamper-evident logs: the chains' status (the login above appended security links).
    page.goto("/admin/compliance/chainhead/")
    expect(page.locator("#result_list")).to_contain_text("security")
    expect(page.locator("#result_list thead")).to_contain_text("Unsealed")

    assert page.evaluate("window.__csp") == []
    assert csp_violations == []


def test_staff_user_without_a_device_enrols_one(page, csp_violations, make_staff):
    user = make_staff("newbie", "cashier", otp=False)

    password_step(page, "newbie")

    expect(page).to_have_url(re.compile(r"/admin/otp/enrol/"))
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#otp-secret").inner_text().strip()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "enrol.png", full_page=True)

    page.fill("#id_otp_token", otp_for_secret(secret))
    page.click("#otp-form input[type=submit]")

    expect(page.locator("#backup-codes li")).to_have_count(8)
    assert user.totpdevice_set.get().confirmed
    page.click("#continue")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("h1")).to_have_text("Cashier · no store assigned")
    assert csp_violations == []


def test_store_manager_sees_only_their_store(page, csp_violations, make_staff, make_store):
    store_a = make_store("KLA", name="Store A")
    store_b = make_store("PGB", name="Store B")
    manager = make_staff("manager", "store_manager", stores=[store_a])

    log_in(page, manager)

    page.goto("/admin/loyalty/store/")
    expect(page.locator("#result_list")).to_contain_text("Store A")
    expect(page.locator("#result_list")).not_to_contain_text("Store B")

    response = page.goto(f"/admin/loyalty/store/{store_b.pk}/change/")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not Found")
    expect(page.locator("body")).not_to_contain_text("Store B")
    assert csp_violations == []


def test_five_wrong_passwords_lock_the_account_out(page, csp_violations, make_staff):
    make_staff("cashier", "cashier")

    for _ in range(4):
        password_step(page, "cashier", "wrong-password-1!")
        expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")
    password_step(page, "cashier", "wrong-password-1!")
    expect(page.locator("#locked-out")).to_be_visible()  # the fifth failure locks at once

    password_step(page, "cashier")

    expect(page.locator("#locked-out")).to_be_visible()
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))  # not logged in
    assert csp_violations == []
