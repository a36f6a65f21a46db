"""Every admin URL refuses a staff user who has not verified an OTP device."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from tests.conftest import PASSWORD
from tests.reporting import add_figure

pytestmark = pytest.mark.django_db

# The login steps themselves, which an unverified user must reach.
LOGIN_STEP_NAMES = {"login", "logout", "otp_verify", "otp_enrol", "otp_logout", "javascript-catalog"}


def admin_urls(resolver=None, prefix="/admin/"):
    """Every concrete admin URL (path converters filled with 1 / a model label)."""
    for pattern in resolver or admin.site.get_urls():
        if isinstance(pattern, URLResolver):
            yield from admin_urls(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and pattern.name not in LOGIN_STEP_NAMES:
            route = str(pattern.pattern).lstrip("^").rstrip("$")
            route = route.replace("<path:object_id>", "1").replace("<int:content_type_id>", "1")
            route = route.replace("<path:object_id>", "1").replace("<id>", "1").replace("<path:url>", "x/")
            route = route.replace(
                "(?P<app_label>auth|loyalty|staffauth|otp_totp|otp_static|axes|auditlog|django_celery_beat)/",
                "loyalty/",
            )
            route = route.replace("<path:object_id>", "1").replace("<object_id>", "1")
            yield pattern.name, prefix + route


def test_walk_every_admin_url_as_an_unverified_user(staff_by_role):
    client = Client()
    response = client.post("/admin/login/", {"username": "system_admin", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    checked = 0
    for name, url in admin_urls():
        response = client.get(url)
        assert response.status_code == 302, (name, url, response.status_code)
        assert response["Location"].startswith(reverse("admin:login")), (name, url)
        checked += 1
    assert checked > 60
    add_figure("admin URLs walked unverified", checked)


def test_unverified_user_is_forwarded_from_login_to_the_otp_step(staff_by_role):
    client = Client()
    client.post("/admin/login/", {"username": "cashier", "password": PASSWORD})
    response = client.get("/admin/login/?next=/admin/loyalty/store/")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:otp_verify") + "?next=/admin/loyalty/store/"
