"""Browser tests' shared pieces: headless Debian Chromium through Playwright, a CSP
violation recorder, and the two-step admin log-in (password, then TOTP).

Fixtures here (``browser``, ``csp_violations``) are registered by ``tests/conftest.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.conftest import PASSWORD, current_totp
from tests.services import chromium_path

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Runs before any page script, CSP or not: keeps every violation in window.__csp and
# reports it to Python at once, since window.__csp is lost at the next navigation.
CSP_LISTENER = """
window.__csp = [];
window.addEventListener("securitypolicyviolation", (e) => {
  const v = {
    page: location.pathname, directive: e.effectiveDirective, blocked: e.blockedURI,
    sample: e.sample, source: e.sourceFile, line: e.lineNumber,
  };
  window.__csp.push(v);
  if (window.__cspReport) window.__cspReport(v);
}, true);
"""


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    # make around it (fixtures, TOTP codes) are synchronous and safe. Only while this
    # module runs: child processes of other tests must not inherit the flag.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as pw:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def csp_violations() -> list:
    """CSP violations the page reported: console messages and violation events."""
    return []


def open_page(browser, base_url: str, csp_violations: list, **options) -> tuple[BrowserContext, Page]:
    """A fresh browser context (no cookies) on ``base_url``, recording CSP violations."""
    context = browser.new_context(base_url=base_url, **options)
    context.set_default_timeout(10_000)
    context.expose_binding("__cspReport", lambda source, v: csp_violations.append(v))
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.on(
        "console",
        lambda msg: csp_violations.append(f"console: {msg.text}") if "Content Security Policy" in msg.text else None,
    )
    return context, page


def password_step(page: Page, username: str, password: str = PASSWORD) -> None:
    """Open the admin, follow the redirect to the login form and submit it."""
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form input[type=submit]")


def log_in(page: Page, user, token: str | None = None) -> None:
    """Password, then the OTP step with ``token`` (default: the device's current code)."""
    password_step(page, user.get_username())
    expect(page).to_have_url(re.compile(r"/admin/otp/verify/"))
    page.fill("#id_otp_token", token or current_totp(user))
    page.click("#otp-form input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#content h1")).to_be_visible()


@pytest.fixture
def new_page(browser, live_server, csp_violations):
    """``new_page()``: a page in a fresh browser context (one person's browser), 1400x900,
    recording CSP violations, console errors and page errors into ``csp_violations``."""
    contexts = []

    def make() -> Page:
        context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": 1400, "height": 900})
        page.on(
            "console", lambda msg: csp_violations.append(f"console error: {msg.text}") if msg.type == "error" else None
        )
        page.on("pageerror", lambda exc: csp_violations.append(f"page error: {exc}"))
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()
