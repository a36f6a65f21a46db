"""Authorization rows of the staff workplace's custom admin views (issue 13), in the
pattern of tests/staffauth/test_authorization_matrix.py's MEMBER_ADMIN_VIEWS: each view,
each principal, the outcome (a status, or "login" for a redirect to the login page)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from loyalty.adjustments.models import AdjustmentReport
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db

PRINCIPALS = ["anonymous", "cashier", "store_manager", "program_admin", "system_admin", "fraud_analyst"]

# Building a report on demand: whoever may view adjustment reports (they then see their part).
WORKPLACE_ADMIN_VIEWS: dict[str, dict[str, str | int]] = {
    "loyalty_adjustmentreport_build": {
        "anonymous": "login",
        "cashier": 403,
        "store_manager": "built",
        "program_admin": "built",
        "system_admin": 403,
        "fraud_analyst": "built",
    },
}


def test_the_workplace_admin_views_rows(staff_by_role):
    requests = {
        "loyalty_adjustmentreport_build": (reverse("admin:loyalty_adjustmentreport_build"), {"day": "2026-01-02"})
    }

    def outcome(response) -> str | int:
        if response.status_code != 302:
            return response.status_code
        if response["Location"].startswith("/admin/login/"):
            return "login"
        return "built" if "/admin/loyalty/adjustmentreport/" in response["Location"] else response["Location"]

    mismatches = []
    for view, expected in WORKPLACE_ADMIN_VIEWS.items():
        assert set(expected) == set(PRINCIPALS), view
        url, body = requests[view]
        for principal in PRINCIPALS:
            client = Client()
            if principal in staff_by_role:
                login_verified(client, staff_by_role[principal])
            AdjustmentReport.objects.all().delete()
            got = outcome(client.post(url, body))
            if got != expected[principal]:
                mismatches.append(f"{principal} {view}: expected {expected[principal]}, got {got}")
            if got in (403, "login"):
                assert not AdjustmentReport.objects.exists(), (principal, view)
    assert not mismatches, "\n".join(mismatches)
