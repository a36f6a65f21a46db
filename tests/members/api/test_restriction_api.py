"""A restricted member's way back through the API (FRAUD.md §3 "Proving identity"): what
they are told, and the SMS-code lift of a low-risk spending freeze."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Member, MemberSecurityEvent
from members.services.restrictions import member_spend_freeze, member_spend_freeze_confirm

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(staff_by_role):
    return staff_by_role["fraud_analyst"]


@pytest.fixture
def long_standing(member):
    """A member of 60 days whose number has not changed since."""
    Member.objects.filter(pk=member.pk).update(created_at=timezone.now() - timedelta(days=60))
    member.refresh_from_db()
    return member


def test_nothing_restricted(api):
    assert api.get("/api/v1/me/restriction").json() == {"restriction": None}


def test_a_frozen_member_is_told_the_case_and_what_to_do_not_why(api, long_standing, analyst):
    member_spend_freeze(member=long_standing, actor=analyst, reason="velocity pattern X", case_ref="FC-12")
    body = api.get("/api/v1/me/restriction").json()
    assert body["restriction"] == "spending_frozen" and body["case_reference"] == "FC-12"
    assert body["next_step"] == "sms_code_or_in_store_id"
    assert "velocity" not in str(body)


def test_an_sms_code_lifts_a_low_risk_freeze(api, long_standing, analyst, step_up):
    member_spend_freeze(member=long_standing, actor=analyst, reason="r")
    refused = api.post("/api/v1/me/restriction/lift")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "step_up_required")
    step_up(long_standing, "restriction_lift")
    response = api.post("/api/v1/me/restriction/lift")
    assert response.status_code == 200 and response.json() == {"restriction": None}
    long_standing.refresh_from_db()
    assert long_standing.spend_frozen_until is None
    assert MemberSecurityEvent.objects.filter(member=long_standing, kind="spend_unfrozen").get().detail == {
        "restriction_id": long_standing.restrictions.get().pk,
        "by_member": True,
    }
    again = api.post("/api/v1/me/restriction/lift")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_restricted")


def test_a_new_member_or_a_confirmed_freeze_needs_the_store(api, member, analyst, staff_by_role, step_up):
    member_spend_freeze(member=member, actor=analyst, reason="r")  # a member of today: number too new
    assert api.get("/api/v1/me/restriction").json()["next_step"] == "in_store_id"
    step_up(member, "restriction_lift")
    refused = api.post("/api/v1/me/restriction/lift")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "lift_not_allowed")

    Member.objects.filter(pk=member.pk).update(created_at=timezone.now() - timedelta(days=60))
    member_spend_freeze_confirm(member=member, actor=staff_by_role["program_admin"], reason="confirmed")
    assert api.post("/api/v1/me/restriction/lift").json()["error"]["code"] == "lift_not_allowed"
