"""Authorization rows for the member page's own views (issue 13), after
tests/staffauth/test_authorization_matrix.py's MEMBER_ADMIN_VIEWS: view -> principal ->
outcome for the POST-only view the member page adds.

Ending a member's sessions (``members.end_member_sessions``): the spec's "Session
Invalidation" on suspicious activity is a headquarters decision, for programme
administrators and fraud analysts (investigating suspicious activity; it moves no
points). Store staff (their stores' rows only) and system administrators (no member
data) may not. Anonymous users are sent to the login page; "ended" is the redirect back
to the member page; numbers are statuses.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from members.models import MemberSession
from members.services.membership import member_create
from members.services.sessions import session_start
from tests.conftest import login_verified
from tests.reporting import add_figure

pytestmark = pytest.mark.django_db

ROLES = ["cashier", "store_manager", "program_admin", "system_admin", "fraud_analyst"]
MEMBER_PAGE_PRINCIPALS = ["anonymous", *ROLES]
MEMBER_PAGE_VIEWS: dict[str, dict[str, str | int]] = {
    "members_member_end_sessions": {
        "anonymous": "login",
        "cashier": 403,
        "store_manager": 403,
        "program_admin": "ended",
        "system_admin": 403,
        "fraud_analyst": "ended",
    },
}


def test_the_member_page_views_rows(staff_by_role, store_a):
    member = member_create(home_store=store_a, phone="+60 12-555 0178")
    page = reverse("admin:members_member_change", args=[member.pk])
    urls = {"members_member_end_sessions": reverse("admin:members_member_end_sessions", args=[member.pk])}

    def outcome(response) -> str | int:
        if response.status_code != 302:
            return response.status_code
        if response["Location"].startswith("/admin/login/"):
            return "login"
        return "ended" if response["Location"] == page else response["Location"]

    mismatches, cells = [], 0
    for view, expected in MEMBER_PAGE_VIEWS.items():
        assert set(expected) == set(MEMBER_PAGE_PRINCIPALS), view
        for principal in MEMBER_PAGE_PRINCIPALS:
            session_start(member=member, channel="web", device_fingerprint=f"fp-{principal}")
            client = Client()
            if principal in staff_by_role:
                login_verified(client, staff_by_role[principal])
            got = outcome(client.post(urls[view]))
            cells += 1
            if got != expected[principal]:
                mismatches.append(f"{principal} {view}: expected {expected[principal]}, got {got}")
            live = MemberSession.objects.filter(member=member, ended_at__isnull=True).exists()
            if live == (got == "ended"):
                mismatches.append(f"{principal} {view}: sessions {'left live' if live else 'ended'}")
    add_figure("authorization matrix cells checked", cells)
    assert not mismatches, "\n".join(mismatches)


def test_the_end_sessions_permission_is_held_by_exactly_the_roles_the_table_allows():
    from staffauth.roles import ROLES as ROLE_DEFS

    holders = {key for key, role in ROLE_DEFS.items() if "members.end_member_sessions" in role.permissions}
    allowed = {p for p, o in MEMBER_PAGE_VIEWS["members_member_end_sessions"].items() if o == "ended"}
    assert holders == allowed
