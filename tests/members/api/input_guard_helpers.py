"""Helpers for the free-text guard tests (issue 11: test_input_guards, test_door_guards):
the member's stored name and address, a card number, and the checks that nothing changed."""

from __future__ import annotations

from members.models import MemberSecurityEvent
from members.services.pii import member_pii_read

PAN = "4111111111111111"
NAME = "Aminah binti Yusof"
ADDRESS = "1 Jalan Test, 50000 Kuala Lumpur"


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["code"] == code, body
    return body


def assert_unchanged(member):
    member.refresh_from_db()
    pii = member_pii_read(member)
    assert (pii.name, pii.address) == (NAME, ADDRESS)
    assert not MemberSecurityEvent.objects.filter(member=member, kind="profile_changed").exists()
