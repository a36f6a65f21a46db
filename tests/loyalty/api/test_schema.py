"""The OpenAPI schema and the interactive docs: public, read-only, local assets only,
and the docs page runs under the project's CSP."""

from __future__ import annotations

import json
import os
import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

EXTERNAL_URL = re.compile(rb"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def test_the_schema_is_public_and_describes_the_till_and_member_apis(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = set(schema["paths"])
    assert {p for p in paths if p.startswith("/api/v1/pos/")} == {
        "/api/v1/pos/purchases",
        "/api/v1/pos/returns",
        "/api/v1/pos/redemptions",
        "/api/v1/pos/redemptions/{hold_id}/capture",
        "/api/v1/pos/redemptions/{hold_id}/void",
        "/api/v1/pos/redemptions/{hold_id}/authorise",
        "/api/v1/pos/offline/redemptions",
        "/api/v1/pos/members/balance",
        "/api/v1/pos/shifts",
        "/api/v1/pos/shifts/end",
        "/api/v1/pos/vouchers/validate",
        "/api/v1/pos/vouchers/redeem",
        "/api/v1/pos/vouchers/public-key",
    }
    assert {"/api/v1/auth/otp/request", "/api/v1/auth/otp/verify", "/api/v1/me", "/api/v1/me/ledger"} <= paths
    assert all(
        p.startswith(("/api/v1/pos/", "/api/v1/auth/", "/api/v1/me", "/api/v1/rewards", "/api/v1/terms")) for p in paths
    )
    schemes = schema["components"]["securitySchemes"]
    till = {s["name"] for s in schemes.values() if s["type"] == "apiKey"}
    assert till == {"X-Till-Key", "X-Timestamp", "X-Signature"}
    assert schemes["memberToken"] == {**schemes["memberToken"], "type": "http", "scheme": "bearer"}
    purchase = schema["paths"]["/api/v1/pos/purchases"]["post"]
    assert purchase["security"] == [{"TillKey": [], "TillTimestamp": [], "TillSignature": []}]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in purchase["parameters"])
    assert "Idempotency-Replayed" in purchase["responses"]["201"]["headers"]


def test_no_till_path_takes_a_loyalty_or_card_number(client):
    """Numbers go in the signed body, never in a URL (issue 11, D7): the balance look-up
    is a POST, and no till operation has a path or query parameter for a member."""
    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)
    till_paths = {p: ops for p, ops in schema["paths"].items() if p.startswith("/api/v1/pos/")}
    assert not [p for p in till_paths if "loyalty" in p or "member}" in p]
    for path, operations in till_paths.items():
        for method, operation in operations.items():
            names = {param["name"] for param in operation.get("parameters", []) if param["in"] in ("path", "query")}
            assert names <= {"hold_id"}, (method, path, names)
    balance = till_paths["/api/v1/pos/members/balance"]
    assert set(balance) == {"post"}
    request = balance["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith("/MemberBalanceRequest")
    assert {"200", "400", "401", "404", "422"} <= set(balance["post"]["responses"])


def test_the_schema_defaults_to_yaml(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.oai.openapi")


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_schema_and_docs_are_read_only(client, path):
    # Answered in the view's own format (YAML, HTML), so only the status is compared.
    for method in ("post", "put", "delete"):
        assert getattr(client, method)(path, {}, content_type="application/json").status_code == 405


def test_generating_the_schema_gives_no_warnings():
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", os.devnull)


def test_the_docs_page_loads_only_local_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content
    assert not EXTERNAL_URL.search(html), EXTERNAL_URL.search(html)
    assert b"<style" not in html  # style-src 'self': no inline styles
    scripts = re.findall(rb"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts and all(b"src=" in attrs and not body.strip() for attrs, body in scripts)  # no inline script
    sources = [m.decode() for m in re.findall(rb'(?:src|href)="([^"]+)"', html)]
    assert sources and all(s.startswith(("/static/", "/api/docs/?")) for s in sources), sources
    for source in sources:
        asset = client.get(source.replace("&amp;", "&"))
        assert asset.status_code == 200, source
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp


def test_the_docs_init_script_is_a_local_script_file(client):
    response = client.get("/api/docs/", {"script": ""})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/javascript")
    assert b'"/api/schema/"' in response.content and not EXTERNAL_URL.search(response.content)
    assert b'"validatorUrl": null' in response.content


# --- in a real browser (skipped without Chromium) -------------------------------------------

CSP_LISTENER = """
window.addEventListener("securitypolicyviolation", (e) => {
  if (window.__cspReport) window.__cspReport({directive: e.effectiveDirective, blocked: e.blockedURI});
}, true);
"""


@pytest.mark.browser
def test_the_docs_render_in_a_browser_without_csp_violations_or_outside_requests(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    from tests.services import chromium_path

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations, outside = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        try:
            context = browser.new_context(base_url=live_server.url)
            context.expose_binding("__cspReport", lambda source, v: violations.append(v))
            context.add_init_script(CSP_LISTENER)
            page = context.new_page()
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))
            page.goto("/api/docs/")
            page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
            page.locator(".opblock-summary-path", has_text="/api/v1/pos/purchases").first.wait_for(timeout=15_000)
            assert "Loyalty back-office API" in page.inner_text(".swagger-ui .info .title")
        finally:
            browser.close()
    assert violations == []
    assert [u for u in outside if not u.startswith("data:")] == []
