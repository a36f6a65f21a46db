"""Personal-data reveal volume (FRAUD.md §1 row 28): a staff member revealing more than
20 distinct members in an hour, or more than 50 reveals in a day, is throttled for an
hour and the fraud team alerted; a reveal outside the staff member's stores is a
violation alert."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fraud.models import FraudAlert
from members.models import Member, MemberPiiAccess
from members.services.membership import member_pii_reveal
from members.services.pii_watch import PiiRevealThrottled
from staffauth.models import SecurityEvent
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(staff_by_role):
    return staff_by_role["program_admin"]


def members(n: int, **kwargs) -> list[Member]:
    return [Member.objects.create(**kwargs) for _ in range(n)]


def test_twenty_distinct_members_an_hour_pass(admin):
    for member in members(20):
        member_pii_reveal(member=member, field="name", actor=admin)
    assert MemberPiiAccess.objects.filter(staff=admin).count() == 20


def test_the_twenty_first_member_in_an_hour_is_refused_and_throttles_for_an_hour(admin):
    batch = members(21)
    for member in batch[:20]:
        member_pii_reveal(member=member, field="name", actor=admin)
    with pytest.raises(PiiRevealThrottled) as caught:
        member_pii_reveal(member=batch[20], field="name", actor=admin)
    assert caught.value.code == "pii_reveal_throttled" and caught.value.facts["members_hour"] == 21
    assert MemberPiiAccess.objects.filter(staff=admin).count() == 20  # the refused one is not recorded
    event = SecurityEvent.objects.get(kind="access_denied", actor=admin)
    assert event.detail["reason"] == "pii_reveal_throttled"
    # Throttled: even a member already revealed, for an hour.
    with pytest.raises(PiiRevealThrottled) as again:
        member_pii_reveal(member=batch[0], field="phone", actor=admin)
    assert again.value.facts["newly"] is False
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1), tick=False):
        member_pii_reveal(member=batch[20], field="name", actor=admin)


def test_repeat_reveals_of_one_member_count_once_per_hour(admin):
    member = members(1)[0]
    for _ in range(25):
        member_pii_reveal(member=member, field="phone", actor=admin)


def test_fifty_reveals_a_day_pass_the_fifty_first_is_refused(admin):
    start = timezone.now() - timedelta(hours=20)
    batch = members(10)
    for hour in range(5):  # 10 reveals an hour, 10 distinct members: under the hourly limit
        with time_machine.travel(start + timedelta(hours=hour), tick=False):
            for member in batch:
                member_pii_reveal(member=member, field="email", actor=admin)
    assert MemberPiiAccess.objects.filter(staff=admin).count() == 50
    with pytest.raises(PiiRevealThrottled) as caught:
        member_pii_reveal(member=batch[0], field="email", actor=admin)
    assert caught.value.facts["reveals_day"] == 51


def test_the_admin_refuses_with_a_message_and_alerts_the_fraud_team_once(admin):
    batch = members(22)
    client = login_verified(Client(), admin)
    for member in batch[:20]:
        assert (
            client.post(reverse("admin:members_member_reveal", args=[member.pk]), {"field": "name"}).status_code == 200
        )
    response = client.post(reverse("admin:members_member_reveal", args=[batch[20].pk]), {"field": "name"}, follow=True)
    assert "revealing is paused" in response.content.decode()
    client.post(reverse("admin:members_member_reveal", args=[batch[21].pk]), {"field": "name"})
    alert = FraudAlert.objects.get(kind="pii_reveal_volume")
    assert (alert.staff, alert.severity, alert.detail["members_hour"]) == (admin, "high", 21)
    # Its signal is on the staff member: their risk score and their case.
    assert alert.signals.get().subject_key == f"staff:{admin.pk}" and alert.case is not None


def test_a_reveal_outside_the_staff_members_stores_is_a_violation_alert(make_staff, store_a, store_b):
    manager = make_staff("mgr-reveal", "store_manager", stores=[store_a])
    manager.user_permissions.add(Permission.objects.get(codename="reveal_member_pii"))
    own, foreign = Member.objects.create(home_store=store_a), Member.objects.create(home_store=store_b)
    client = login_verified(Client(), manager)
    for member in (own, foreign):
        client.post(reverse("admin:members_member_reveal", args=[member.pk]), {"field": "name"})
    alert = FraudAlert.objects.get(kind="pii_reveal_outside_stores")
    assert (alert.staff, alert.member) == (manager, foreign)
