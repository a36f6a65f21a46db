"""The admin's two-step login: password (axes-guarded), then OTP or enrolment."""

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth.models import SecurityEvent
from tests.conftest import PASSWORD, current_totp

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def password_login(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, **extra)


def test_password_alone_does_not_open_the_admin(client, staff_by_role):
    response = password_login(client, "system_admin")
    assert response.status_code == 302

    response = client.get("/admin/")
    assert response.status_code == 302
    follow = client.get(response["Location"])
    assert follow.status_code == 302
    assert follow["Location"].startswith(reverse("admin:otp_verify"))


def test_correct_totp_opens_the_admin_and_rotates_the_session_key(client, staff_by_role):
    user = staff_by_role["system_admin"]
    password_login(client, "system_admin")
    key_after_password = client.session.session_key

    response = client.post(reverse("admin:otp_verify"), {"otp_token": current_totp(user), "next": "/admin/"})

    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session.session_key != key_after_password
    assert client.get("/admin/").status_code == 200
    kinds = list(SecurityEvent.objects.filter(actor=user).values_list("kind", flat=True))
    assert SecurityEvent.Kind.OTP_VERIFIED in kinds and SecurityEvent.Kind.LOGIN_SUCCEEDED in kinds


def test_session_key_rotates_at_password_login(client, staff_by_role):
    client.get(LOGIN)
    before = client.cookies.get(client.handler.__class__ and "__Host-sessionid")
    password_login(client, "cashier")
    after = client.session.session_key
    assert after and (before is None or before.value != after)


def test_wrong_totp_is_refused_and_logged(client, staff_by_role):
    password_login(client, "cashier")
    response = client.post(reverse("admin:otp_verify"), {"otp_token": "000000"})
    assert response.status_code == 200
    assert b"not valid" in response.content
    assert client.get("/admin/").status_code == 302
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_FAILED, actor=staff_by_role["cashier"]).count() == 1


def test_totp_token_cannot_be_replayed(client, staff_by_role):
    user = staff_by_role["cashier"]
    token = current_totp(user)
    password_login(client, "cashier")
    assert client.post(reverse("admin:otp_verify"), {"otp_token": token}).status_code == 302
    client.post(reverse("admin:logout"))

    password_login(client, "cashier")
    response = client.post(reverse("admin:otp_verify"), {"otp_token": token})
    assert response.status_code == 200  # refused: TOTPDevice.last_t blocks reuse


def test_backup_code_works_once(client, make_staff):
    from staffauth.services import otp_backup_codes_issue

    user = make_staff("backup.user", "cashier")
    code = otp_backup_codes_issue(user=user)[0]
    password_login(client, "backup.user")
    assert client.post(reverse("admin:otp_verify"), {"otp_token": code.upper()}).status_code == 302
    assert not StaticToken.objects.filter(token=code).exists()


def test_username_is_case_and_space_insensitive(client, staff_by_role):
    response = password_login(client, "  System_Admin ")
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(staff_by_role["system_admin"].pk)


def test_user_without_device_is_sent_to_enrol_and_can_enrol(client, make_staff):
    user = make_staff("newbie", "cashier", otp=False)
    password_login(client, "newbie")

    response = client.get(LOGIN + "?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:otp_enrol"))

    page = client.get(reverse("admin:otp_enrol"))
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert client.get("/admin/").status_code == 302  # an unconfirmed device opens nothing

    token = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    done = client.post(reverse("admin:otp_enrol"), {"otp_token": token})

    assert done.status_code == 200
    assert len(done.context["codes"]) == 8
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_DEVICE_ENROLLED, actor=user).exists()


def test_enrol_page_is_not_offered_once_a_device_exists(client, staff_by_role):
    password_login(client, "cashier")
    response = client.get(reverse("admin:otp_enrol"))
    assert response.status_code == 302 and response["Location"] == reverse("admin:otp_verify")


def test_otp_step_needs_a_password_login_first(client, staff_by_role):
    response = client.get(reverse("admin:otp_verify"))
    assert response.status_code == 302 and response["Location"] == LOGIN


def test_log_out_from_the_otp_step(client, staff_by_role):
    password_login(client, "cashier")
    response = client.post(reverse("admin:otp_logout"))
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert "_auth_user_id" not in client.session
    assert client.get(LOGIN).status_code == 200  # the login form, not the OTP step


def test_each_session_gets_a_fresh_enrolment_secret(make_staff):
    from django.test import Client

    make_staff("newcomer", "cashier", otp=False)
    first, second = Client(), Client()
    password_login(first, "newcomer")
    first.get(reverse("admin:otp_enrol"))
    seen_by_first = TOTPDevice.objects.get(user__username="newcomer", confirmed=False)
    assert first.get(reverse("admin:otp_enrol")).context["secret"]  # stable within the session
    assert TOTPDevice.objects.filter(pk=seen_by_first.pk).exists()

    password_login(second, "newcomer")
    second.get(reverse("admin:otp_enrol"))

    pending = TOTPDevice.objects.get(user__username="newcomer", confirmed=False)
    assert pending.key != seen_by_first.key  # the secret shown earlier can never be confirmed


def test_no_default_accounts_exist_after_migrations():
    from staffauth.models import StaffUser

    assert not StaffUser.objects.exists()
