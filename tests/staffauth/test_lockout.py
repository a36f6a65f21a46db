"""Lockout of a username+IP pair after 5 failures (django-axes), OTP failures included."""

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth.models import SecurityEvent
from tests.conftest import PASSWORD, current_totp

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def attempt(client, username, password, ip="10.0.0.1", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def test_four_failures_then_the_right_password_still_logs_in(client, staff_by_role):
    for _ in range(4):
        assert attempt(client, "cashier", "wrong-password").status_code == 200
    assert attempt(client, "cashier", PASSWORD).status_code == 302


def test_fifth_failure_locks_and_sixth_attempt_is_refused_even_with_the_right_password(client, staff_by_role):
    statuses = [attempt(client, "cashier", "wrong-password").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure locks the pair and says so

    sixth = attempt(client, "cashier", PASSWORD)

    assert sixth.status_code == 429
    assert b"locked-out" in sixth.content
    assert "_auth_user_id" not in client.session
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.LOCKED_OUT, username="cashier").exists()


def test_lockout_lasts_the_cool_off_then_lifts(client, staff_by_role):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            attempt(client, "cashier", "wrong-password")
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        assert attempt(client, "cashier", PASSWORD).status_code == 429
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        assert attempt(client, "cashier", PASSWORD).status_code == 302


def test_case_and_space_variants_share_one_counter(client, staff_by_role):
    for variant in ["cashier", "CASHIER", " Cashier", "cashier ", "CaShIeR"]:
        attempt(client, variant, "wrong-password")
    assert attempt(client, "cashier", PASSWORD).status_code == 429


def test_lock_is_per_username_and_ip(client, staff_by_role):
    for _ in range(5):
        attempt(client, "cashier", "wrong-password", ip="10.0.0.1")
    # Another cashier behind the same store IP still logs in; so does the same user elsewhere.
    assert attempt(client, "store_manager", PASSWORD, ip="10.0.0.1").status_code == 302
    client.logout()
    assert attempt(client, "cashier", PASSWORD, ip="10.0.0.2").status_code == 302


def test_forged_x_forwarded_for_does_not_reset_the_counter(client, staff_by_role):
    # No proxy is trusted (TRUSTED_PROXY_COUNT=0): the header is ignored.
    for n in range(5):
        attempt(client, "cashier", "wrong-password", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert attempt(client, "cashier", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429


def test_behind_one_trusted_proxy_the_real_client_address_counts(client, staff_by_role, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.9.9.9"
    for n in range(5):
        # The client forges a left-most entry; the proxy appends the real address.
        attempt(client, "cashier", "wrong-password", ip=proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 192.0.2.10")
    assert attempt(client, "cashier", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="1.1.1.1, 192.0.2.10").status_code == 429
    assert attempt(client, "cashier", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="192.0.2.11").status_code == 302
    event = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.LOGIN_SUCCEEDED).latest("id")
    assert event.ip_address == "192.0.2.11"


def test_wrong_otp_tokens_count_and_lock_after_five(client, staff_by_role):
    user = staff_by_role["cashier"]
    assert attempt(client, "cashier", PASSWORD).status_code == 302
    statuses = []
    for _ in range(5):
        statuses.append(
            client.post(reverse("admin:otp_verify"), {"otp_token": "000000"}, REMOTE_ADDR="10.0.0.1").status_code
        )
    assert statuses == [200, 200, 200, 200, 429]
    # The half-logged-in session is gone, and the pair stays locked even with the right password.
    assert "_auth_user_id" not in client.session
    assert attempt(client, "cashier", PASSWORD).status_code == 429
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_FAILED, actor=user).count() == 5


def test_password_success_does_not_reset_otp_failures(client, staff_by_role):
    """Otherwise re-entering the password would give unlimited OTP guesses."""
    for _ in range(2):
        attempt(client, "cashier", PASSWORD)
        for _ in range(2):
            client.post(reverse("admin:otp_verify"), {"otp_token": "000000"}, REMOTE_ADDR="10.0.0.1")
        client.logout()
    attempt(client, "cashier", PASSWORD)
    assert client.post(reverse("admin:otp_verify"), {"otp_token": "000000"}, REMOTE_ADDR="10.0.0.1").status_code == 429


def test_otp_success_resets_the_counter(client, staff_by_role):
    user = staff_by_role["cashier"]
    for _ in range(4):
        attempt(client, "cashier", "wrong-password")
    attempt(client, "cashier", PASSWORD)
    client.post(reverse("admin:otp_verify"), {"otp_token": current_totp(user)}, REMOTE_ADDR="10.0.0.1")
    client.logout()
    for _ in range(4):
        assert attempt(client, "cashier", "wrong-password").status_code == 200


def test_failed_logins_are_logged_without_the_password(client, staff_by_role):
    attempt(client, "Cashier", "hunter2-Secret!")
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.LOGIN_FAILED)
    assert event.username == "cashier" and event.ip_address == "10.0.0.1"
    assert "hunter2" not in str(event.detail)
    from axes.models import AccessAttempt

    assert "hunter2" not in AccessAttempt.objects.get().post_data


# --- only wrong codes count (issue 11: a right code just after wrong ones was refused) ------------


def otp(client, token, ip="10.0.0.1"):
    return client.post(reverse("admin:otp_verify"), {"otp_token": token}, REMOTE_ADDR=ip)


def otp_failures(user) -> int:
    return SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_FAILED, actor=user).count()


def test_a_right_code_just_after_wrong_ones_logs_in_and_only_the_wrong_ones_count(client, staff_by_role):
    user = staff_by_role["cashier"]
    with time_machine.travel(timezone.now(), tick=False):  # all in the same instant
        attempt(client, "cashier", PASSWORD)
        # given two wrong codes (django-otp's back-off would refuse any code for 2 s now)
        assert otp(client, "000000").status_code == 200
        assert otp(client, "000001").status_code == 200
        # when the right code follows at once
        response = otp(client, current_totp(user))
    # then it logs in, and only the two wrong codes were counted
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert otp_failures(user) == 2
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_VERIFIED, actor=user).count() == 1
    assert TOTPDevice.objects.get(user=user).throttling_failure_count == 0


def test_four_wrong_codes_then_the_right_one_at_once_still_logs_in(client, staff_by_role):
    user = staff_by_role["cashier"]
    with time_machine.travel(timezone.now(), tick=False):
        attempt(client, "cashier", PASSWORD)
        assert [otp(client, f"00000{n}").status_code for n in range(4)] == [200] * 4
        assert otp(client, current_totp(user)).status_code == 302
    assert otp_failures(user) == 4


def test_a_backup_code_just_after_a_wrong_code_logs_in_and_clears_every_device(client, make_staff):
    from staffauth.services import otp_backup_codes_issue

    user = make_staff("backup_user", "cashier")
    codes = otp_backup_codes_issue(user=user)
    with time_machine.travel(timezone.now(), tick=False):
        attempt(client, "backup_user", PASSWORD)
        assert otp(client, "000000").status_code == 200
        assert otp(client, codes[0]).status_code == 302
    assert otp_failures(user) == 1
    # The wrong code failed on both devices; the TOTP device's count goes with the login.
    assert TOTPDevice.objects.get(user=user).throttling_failure_count == 0


def test_past_the_limit_the_device_back_off_holds_and_a_code_sent_during_it_is_not_counted(
    client, staff_by_role, settings
):
    user = staff_by_role["cashier"]
    start = timezone.now()
    # given five failures on the device from other addresses (each address below its lock)
    TOTPDevice.objects.filter(user=user).update(
        throttling_failure_count=settings.AXES_FAILURE_LIMIT, throttling_failure_timestamp=start
    )
    with time_machine.travel(start + timedelta(seconds=5), tick=False):
        attempt(client, "cashier", PASSWORD, ip="10.0.0.9")
        # when a code comes during the back-off (16 s after the fifth failure)
        response = otp(client, current_totp(user), ip="10.0.0.9")
    # then it is not looked at: the answer says to wait, and nothing is counted
    assert response.status_code == 429
    assert b"Wait 11 seconds" in response.content
    assert otp_failures(user) == 0
    assert not AccessAttempt.objects.filter(username="cashier", failures_since_start__gt=0).exists()
    # and after the back-off the right code logs in
    with time_machine.travel(start + timedelta(seconds=17), tick=False):
        assert otp(client, current_totp(user), ip="10.0.0.9").status_code == 302


def test_enrolment_takes_a_right_code_just_after_a_wrong_one(client, make_staff):
    from django_otp.oath import totp

    user = make_staff("newbie", "cashier", otp=False)
    with time_machine.travel(timezone.now(), tick=False):
        attempt(client, "newbie", PASSWORD)
        client.get(reverse("admin:otp_enrol"))
        device = TOTPDevice.objects.get(user=user, confirmed=False)
        assert client.post(reverse("admin:otp_enrol"), {"otp_token": "000000"}).status_code == 200
        token = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
        done = client.post(reverse("admin:otp_enrol"), {"otp_token": token})
    assert done.status_code == 200 and len(done.context["codes"]) == 8
    device.refresh_from_db()
    assert device.confirmed
    assert otp_failures(user) == 1


# --- The lockout pages in words (issue 13) -------------------------------------------------------


def test_the_lock_page_says_the_cool_off_in_minutes(client, staff_by_role):
    for _ in range(5):
        locked = attempt(client, "cashier", "wrong-password")
    page = locked.content.decode()
    assert "locked from this address for 30 minutes." in page
    assert "0:30:00" not in page


@pytest.fixture
def locked_cashier(client, staff_by_role):
    from django.test import Client

    for _ in range(5):
        attempt(Client(), "cashier", "wrong-password")
    return AccessAttempt.objects.get(username="cashier")


@pytest.fixture
def sysadmin(staff_by_role):
    from django.test import Client

    from tests.conftest import login_verified

    return login_verified(Client(), staff_by_role["system_admin"])


def test_the_lockout_list_names_the_lock_end_not_an_object(sysadmin, locked_cashier):
    page = sysadmin.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    assert "AccessAttemptExpiration object" not in page
    assert "cashier" in page and "Locked Out" in page
    ends = timezone.localtime(locked_cashier.expiration.expires_at)
    assert f"{ends:%Y-%m-%d %H:%M}" in page
    detail = sysadmin.get(reverse("admin:axes_accessattempt_change", args=[locked_cashier.pk])).content.decode()
    assert "AccessAttemptExpiration object" not in detail and f"{ends:%Y-%m-%d %H:%M}" in detail


def test_unlocking_is_called_unlock_everywhere(sysadmin, locked_cashier):
    # the list's action
    changelist = sysadmin.get(reverse("admin:axes_accessattempt_changelist"))
    choices = dict(changelist.context_data["action_form"].fields["action"].choices)
    assert choices.get("unlock_selected") == "Unlock the selected user names"
    assert "delete_selected" not in choices
    # the record's button
    detail = sysadmin.get(reverse("admin:axes_accessattempt_change", args=[locked_cashier.pk])).content.decode()
    assert 'id="unlock-link"' in detail and ">Unlock</a>" in detail and ">Delete</a>" not in detail
    # the confirmation page
    delete_url = reverse("admin:axes_accessattempt_delete", args=[locked_cashier.pk])
    confirm = sysadmin.get(delete_url).content.decode()
    assert "<title>Unlock cashier from 127.0.0.1" in confirm or "<title>Unlock cashier from 10.0.0.1" in confirm
    assert 'value="Yes, unlock"' in confirm and "Are you sure" not in confirm
    assert "AccessAttemptExpiration object" not in confirm
    # and the post unlocks
    done = sysadmin.post(delete_url, {"post": "yes"}, follow=True)
    assert "Unlocked: they may sign in again." in [str(m) for m in done.context["messages"]]
    assert not AccessAttempt.objects.filter(username="cashier").exists()


def test_the_unlock_action_unlocks_and_a_fraud_analyst_is_not_offered_it(sysadmin, locked_cashier, staff_by_role):
    from django.test import Client

    from tests.conftest import login_verified

    analyst = login_verified(Client(), staff_by_role["fraud_analyst"]).get(
        reverse("admin:axes_accessattempt_changelist")
    )
    assert analyst.status_code == 200 and analyst.context_data["action_form"] is None  # no action at all

    response = sysadmin.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "unlock_selected", "_selected_action": [locked_cashier.pk]},
        follow=True,
    )
    assert "Unlocked 1: cashier." in [str(m) for m in response.context["messages"]]
    assert not AccessAttempt.objects.exists()
    assert attempt(Client(), "cashier", PASSWORD).status_code == 302
