"""MFA resets in the admin, own-password changes, and the schedule allow-list."""

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth.models import SecurityEvent

pytestmark = pytest.mark.django_db


def _delete_device(client, device):
    return client.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"})


def test_sysadmin_resets_a_cashiers_device_and_it_is_logged(verified_client, staff_by_role):
    admin_user, cashier = staff_by_role["system_admin"], staff_by_role["cashier"]
    device = TOTPDevice.objects.get(user=cashier)
    response = _delete_device(verified_client(admin_user), device)
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.OTP_DEVICE_REMOVED)
    assert event.actor == admin_user and event.subject == cashier


def test_nobody_removes_their_own_device_in_the_admin(verified_client, staff_by_role):
    admin_user = staff_by_role["system_admin"]
    device = TOTPDevice.objects.get(user=admin_user)
    assert _delete_device(verified_client(admin_user), device).status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_superusers_device_is_out_of_a_sysadmins_reach(verified_client, staff_by_role, make_staff):
    root = make_staff("root", is_superuser=True)
    device = TOTPDevice.objects.get(user=root)
    assert _delete_device(verified_client(staff_by_role["system_admin"]), device).status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_devices_cannot_be_created_for_someone_else(verified_client, staff_by_role):
    client = verified_client(staff_by_role["system_admin"])
    assert client.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 403


def test_own_password_goes_through_the_form_that_asks_for_the_current_one(verified_client, staff_by_role):
    admin_user = staff_by_role["system_admin"]
    response = verified_client(admin_user).get(reverse("admin:auth_user_password_change", args=[admin_user.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("admin:password_change")


def test_setting_another_users_password_keeps_it_usable(verified_client, staff_by_role):
    cashier = staff_by_role["cashier"]
    client = verified_client(staff_by_role["system_admin"])
    url = reverse("admin:auth_user_password_change", args=[cashier.pk])
    assert "usable_password" not in client.get(url).context["form"].fields
    response = client.post(url, {"password1": "Reset-by-admin-55!", "password2": "Reset-by-admin-55!"})
    assert response.status_code == 302
    cashier.refresh_from_db()
    assert cashier.check_password("Reset-by-admin-55!")
    assert SecurityEvent.objects.filter(
        kind=SecurityEvent.Kind.PASSWORD_CHANGED, subject=cashier, actor=staff_by_role["system_admin"]
    ).exists()


def _schedule(task):
    from django_celery_beat.models import CrontabSchedule

    crontab = CrontabSchedule.objects.first()
    return {
        "name": f"job {task}",
        "regtask": "",
        "task": task,
        "enabled": "on",
        "crontab": crontab.pk,
        "args": "[]",
        "kwargs": "{}",
        "priority": "",
        "queue": "",
        "exchange": "",
        "routing_key": "",
        "headers": "{}",
        "expire_seconds": "",
        "description": "",
    }


def test_schedules_may_name_only_the_products_own_jobs(verified_client, staff_by_role):
    from auditlog.models import LogEntry
    from django_celery_beat.models import PeriodicTask

    client = verified_client(staff_by_role["system_admin"])
    url = reverse("admin:django_celery_beat_periodictask_add")
    refused = client.post(url, _schedule("celery.chain"))
    assert refused.status_code == 200 and not PeriodicTask.objects.filter(task="celery.chain").exists()

    accepted = client.post(url, _schedule("staffauth.tasks.lockouts_expire_task"))
    assert accepted.status_code == 302, accepted.context["adminform"].form.errors
    created = PeriodicTask.objects.get(name="job staffauth.tasks.lockouts_expire_task")
    entry = LogEntry.objects.get_for_object(created).get()
    assert entry.actor == staff_by_role["system_admin"]


# --- The staff page's sign-in security panel (issue 13) ----------------------------------------------


def _status_panel(client, user) -> str:
    html = client.get(reverse("admin:staffauth_staffuser_change", args=[user.pk])).content.decode()
    start = html.index('id="staff-security-status"')
    return html[start : html.index("</table>", start)]


def test_the_staff_page_shows_mfa_lockout_and_sessions(verified_client, staff_by_role, client):
    from django.test import Client

    from staffauth.services import otp_backup_codes_issue
    from tests.conftest import PASSWORD, login_verified

    cashier = staff_by_role["cashier"]
    codes = otp_backup_codes_issue(user=cashier, count=6)
    login_verified(Client(), cashier)  # one signed-in browser
    for _ in range(5):
        Client().post("/admin/login/", {"username": "cashier", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    assert PASSWORD

    panel = _status_panel(verified_client(staff_by_role["system_admin"]), cashier)

    assert "Authenticator app confirmed (test)" in panel
    assert "6 left" in panel and not any(code in panel for code in codes)
    assert "Locked out" in panel and "from 10.0.0.9" in panel and 'class="unlock-link"' in panel
    assert "<th>Active sessions</th><td>1</td>" in panel
    assert "Last login" in panel and "Password last changed" in panel


def test_a_role_that_may_not_unlock_sees_no_unlock_link(staff_by_role, make_staff):
    from django.test import Client

    from tests.conftest import login_verified

    # given: a superuser-less viewer who may see staff but not unlock (no axes delete permission)
    viewer = make_staff("viewer", "system_admin")
    viewer.user_permissions.clear()
    cashier = staff_by_role["cashier"]
    for _ in range(5):
        Client().post("/admin/login/", {"username": "cashier", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    from django.contrib.auth.models import Permission

    group = viewer.groups.get()
    group.permissions.remove(Permission.objects.get(codename="delete_accessattempt"))
    try:
        panel = _status_panel(login_verified(Client(), viewer), cashier)
    finally:
        group.permissions.add(Permission.objects.get(codename="delete_accessattempt"))
    assert "Locked out" in panel and "unlock-link" not in panel
    assert "No confirmed authenticator app" not in panel
