"""Lockout of a username+IP pair after 5 failures (django-axes), OTP failures included."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

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
