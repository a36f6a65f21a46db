"""Admin sessions: idle and absolute timeouts, and events that end a user's sessions."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from staffauth.models import SecurityEvent, StaffUser
from staffauth.services import staff_sessions_end
from tests.conftest import PASSWORD, current_totp, login_verified

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Another-long-pass-42!"


def full_login(client, user):
    """The real two-step login over HTTP."""
    client.post("/admin/login/", {"username": user.username, "password": PASSWORD})
    response = client.post(reverse("admin:otp_verify"), {"otp_token": current_totp(user)})
    assert response.status_code == 302, response.content[:500]
    return client


def test_session_ends_after_15_idle_minutes(staff_by_role):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = full_login(Client(), staff_by_role["cashier"])
    with time_machine.travel(start + timedelta(minutes=14, seconds=59), tick=False):
        assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=29, seconds=58), tick=False):
        assert client.get("/admin/").status_code == 200  # activity at 14:59 reset the idle clock
    with time_machine.travel(start + timedelta(minutes=45), tick=False):
        response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SESSION_EXPIRED)
    assert event.detail == {"reason": "idle"}


def test_session_ends_after_4_hours_however_active(staff_by_role):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = full_login(Client(), staff_by_role["cashier"])
    for minutes in range(10, 240, 10):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=240, seconds=1), tick=False):
        response = client.get("/admin/")
    assert response.status_code == 302
    assert SecurityEvent.objects.get(kind=SecurityEvent.Kind.SESSION_EXPIRED).detail == {"reason": "absolute"}


def test_timeouts_come_from_settings(staff_by_role, settings):
    settings.STAFF_SESSION_IDLE_TIMEOUT = timedelta(minutes=3)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = full_login(Client(), staff_by_role["cashier"])
    with time_machine.travel(start + timedelta(minutes=3, seconds=1), tick=False):
        assert client.get("/admin/").status_code == 302


def test_password_change_keeps_this_session_and_ends_the_others(staff_by_role):
    user = staff_by_role["cashier"]
    here, elsewhere = login_verified(Client(), user), login_verified(Client(), user)

    response = here.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert here.get("/admin/").status_code == 200
    assert elsewhere.get("/admin/").status_code == 302
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.PASSWORD_CHANGED, subject=user).exists()


def test_role_change_by_an_administrator_ends_the_users_sessions(staff_by_role):
    cashier = staff_by_role["cashier"]
    cashier_client = login_verified(Client(), cashier)
    admin_client = login_verified(Client(), staff_by_role["system_admin"])
    manager_group = Group.objects.get(name="Store Manager")

    response = admin_client.post(
        reverse("admin:staffauth_staffuser_change", args=[cashier.pk]),
        {
            "username": "cashier",
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "groups": [manager_group.pk],
            "stores": [s.pk for s in cashier.stores.all()],
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert list(cashier.groups.values_list("name", flat=True)) == ["Store Manager"]
    assert cashier_client.get("/admin/").status_code == 302
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.ROLES_CHANGED)
    assert event.actor == staff_by_role["system_admin"] and event.subject == cashier
    assert event.detail == {"added": ["Store Manager"], "removed": ["Cashier"]}


def test_deactivation_ends_the_users_sessions(staff_by_role):
    cashier = staff_by_role["cashier"]
    cashier_client = login_verified(Client(), cashier)
    StaffUser.objects.filter(pk=cashier.pk).update(is_active=False)
    assert cashier_client.get("/admin/").status_code == 302


def test_end_sessions_service_logs_out_everywhere(staff_by_role):
    cashier = staff_by_role["cashier"]
    one, two = login_verified(Client(), cashier), login_verified(Client(), cashier)
    staff_sessions_end(user=cashier, actor=staff_by_role["system_admin"], reason="test")
    assert one.get("/admin/").status_code == 302
    assert two.get("/admin/").status_code == 302


def test_end_sessions_admin_action(staff_by_role):
    cashier = staff_by_role["cashier"]
    cashier_client = login_verified(Client(), cashier)
    admin_client = login_verified(Client(), staff_by_role["system_admin"])
    response = admin_client.post(
        reverse("admin:staffauth_staffuser_changelist"),
        {"action": "end_sessions", "_selected_action": [cashier.pk]},
    )
    assert response.status_code == 302
    assert cashier_client.get("/admin/").status_code == 302
    assert admin_client.get("/admin/").status_code == 200


def test_logout_makes_the_old_cookie_useless(staff_by_role):
    client = login_verified(Client(), staff_by_role["cashier"])
    cookie = client.cookies["__Host-sessionid"].value
    client.post(reverse("admin:logout"))
    replay = Client()
    replay.cookies["__Host-sessionid"] = cookie
    assert replay.get("/admin/").status_code == 302


def test_session_cookie_flags(staff_by_role):
    client = Client()
    client.post("/admin/login/", {"username": "cashier", "password": PASSWORD})
    cookie = client.cookies["__Host-sessionid"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
