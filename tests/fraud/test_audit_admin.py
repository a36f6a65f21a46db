"""Headquarters' rationale audit in the admin (fraud.admin.audits): the fraud team records
a verdict once per sample; a failed rationale alerts on the requester."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from fraud.models import AuditSample, FraudAlert
from loyalty.adjustments.models import AdjustmentReason
from loyalty.adjustments.services import Evidence, adjustment_request
from members.models import Member
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:fraud_auditsample_changelist")


@pytest.fixture
def sample(staff_by_role, store_a):
    now = timezone.now()
    manager = staff_by_role["store_manager"]
    request = adjustment_request(
        actor=manager, member=Member.objects.create(home_store=store_a), points=600,
        reason=AdjustmentReason.objects.get(code="MISSED_EARN"), store=store_a,
        evidence=Evidence(justification="Receipt shown; the till was offline.", verification_method="phone",
                          verified_by="A. Manager", verified_at=now, verification_outcome="Member confirmed."),
    )  # fmt: skip
    return AuditSample.objects.create(
        month=now.date().replace(day=1), adjustment=request, band="supervisor", staff=manager,
        draw_hash="0" * 64, drawn_at=now,
    )  # fmt: skip


def act(client, action, sample):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [sample.pk]}, follow=True)


def test_the_list_names_the_adjustment_and_the_requester(client, staff_by_role, sample):
    login_verified(client, staff_by_role["fraud_analyst"])
    body = client.get(CHANGELIST).content.decode()
    assert f"Adjustment #{sample.adjustment_id} (+600 points)" in body
    assert staff_by_role["store_manager"].username in body or "Manager" in body
    assert "Not audited yet" in body


def test_a_failed_rationale_is_recorded_once_and_alerts_on_the_requester(client, staff_by_role, sample):
    analyst = staff_by_role["fraud_analyst"]
    login_verified(client, analyst)
    first = act(client, "mark_failed", sample).content.decode()
    assert "Recorded 1 failed rationale(s)." in first
    sample.refresh_from_db()
    assert sample.outcome == "failed" and sample.audited_by == analyst and sample.audited_at is not None
    alert = FraudAlert.objects.get(kind="adjust_rationale_audit")
    assert alert.staff_id == staff_by_role["store_manager"].pk
    again = act(client, "mark_passed", sample).content.decode()
    assert "already audited" in again and AuditSample.objects.get(pk=sample.pk).outcome == "failed"


def test_a_sound_rationale_raises_nothing(client, staff_by_role, sample):
    login_verified(client, staff_by_role["fraud_analyst"])
    act(client, "mark_passed", sample)
    assert AuditSample.objects.get(pk=sample.pk).outcome == "passed" and not FraudAlert.objects.exists()


@pytest.mark.parametrize("role", ["program_admin", "store_manager", "cashier", "system_admin"])
def test_only_the_fraud_team_audits(client, staff_by_role, sample, role):
    login_verified(client, staff_by_role[role])
    assert client.get(CHANGELIST).status_code == 403
    assert act(client, "mark_failed", sample).status_code == 403
    assert AuditSample.objects.get(pk=sample.pk).outcome == ""
