"""The request queue and page in the admin: who may see and act, and the actions."""

import pytest
from django.urls import reverse

from compliance import requests as dsr
from compliance.models import DataSubjectRequest
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db


def test_program_admin_takes_a_request_and_works_it(client, seeded_members, staff_by_role):
    admin = staff_by_role["program_admin"]
    login_verified(client, admin)
    member = seeded_members[0]
    response = client.post(
        reverse("admin:compliance_datasubjectrequest_intake"),
        {
            "loyalty_number": member.loyalty_number,
            "kind": "correction",
            "identity_check": "nric_sighted",
            "note": "Name",
        },
    )
    assert response.status_code == 302
    request = DataSubjectRequest.objects.get(member=member)
    assert request.state == "identity_pending"
    act = lambda action, **data: client.post(  # noqa: E731
        reverse("admin:compliance_datasubjectrequest_act", args=[request.pk, action]), data
    )
    act("start", reason="too early")
    request.refresh_from_db()
    assert request.state == "identity_pending"
    act("verify", identity_check="callback", reason="Called back the registered phone")
    act("start", reason="Correcting the name")
    act("complete", reason="Name corrected")
    request.refresh_from_db()
    assert request.state == "completed"
    page = client.get(reverse("admin:compliance_datasubjectrequest_change", args=[request.pk]))
    assert page.status_code == 200 and b"Name corrected" in page.content
    queue = client.get(reverse("admin:compliance_datasubjectrequest_changelist"))
    assert queue.status_code == 200 and request.reference.encode() in queue.content


def test_overdue_is_marked_in_the_queue(client, seeded_members, staff_by_role):
    from datetime import timedelta

    from django.utils import timezone

    admin = staff_by_role["program_admin"]
    dsr.request_submit_by_staff(
        staff=admin,
        member=seeded_members[0],
        kind="access",
        identity_check="callback",
        now=timezone.now() - timedelta(days=30),
    )
    login_verified(client, admin)
    queue = client.get(reverse("admin:compliance_datasubjectrequest_changelist") + "?deadline=overdue")
    assert b'class="overdue"' in queue.content


@pytest.mark.parametrize("role", ["store_manager", "fraud_analyst", "system_admin"])
def test_other_roles_may_not_open_or_act(client, seeded_members, staff_by_role, role):
    request, _ = dsr.request_submit_by_staff(
        staff=staff_by_role["program_admin"], member=seeded_members[0], kind="access", identity_check="callback"
    )
    login_verified(client, staff_by_role[role])
    assert client.get(reverse("admin:compliance_datasubjectrequest_changelist")).status_code == 403
    assert client.get(reverse("admin:compliance_datasubjectrequest_intake")).status_code == 403
    client.post(reverse("admin:compliance_datasubjectrequest_act", args=[request.pk, "cancel"]), {"reason": "x"})
    request.refresh_from_db()
    assert request.state == "identity_pending"
