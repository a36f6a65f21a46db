"""Security headers on every kind of response (ASVS V14.4)."""

import pytest

pytestmark = pytest.mark.django_db


def csp_directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


# The directives every response must carry, written as the header would be.
EXPECTED_CSP = csp_directives(
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@pytest.mark.parametrize("path", ["/healthz", "/admin/login/", "/admin/", "/does-not-exist/"])
def test_headers_on_public_and_admin_responses(client, path):
    response = client.get(path)
    directives = csp_directives(response["Content-Security-Policy"])
    for name, value in EXPECTED_CSP.items():
        assert directives[name] == value, name
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_hsts_on_https(client):
    response = client.get("/healthz", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_csrf_cookie_is_host_prefixed_and_secure(client):
    client.get("/admin/login/")
    cookie = client.cookies["__Host-csrftoken"]
    assert cookie["secure"] and cookie["path"] == "/" and not cookie["domain"]


def test_admin_post_without_csrf_token_is_refused(staff_by_role):
    from django.test import Client

    from tests.conftest import PASSWORD

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/admin/login/", {"username": "cashier", "password": PASSWORD})
    assert response.status_code == 403
