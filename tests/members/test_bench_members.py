"""`make bench`'s member sign-in part keeps working: a short run through a real gunicorn
against the test database (the command passes its own environment, the test
database's URL included, to the server). It measures nothing here; it must run,
report every figure and leave the data the endpoints should have written.

The bench forks its clients, so it runs in a child process of its own (forking the
multi-threaded test process could deadlock a child).
"""

import re

import pytest

from members.models import MemberDevice, MemberSecurityEvent, OtpChallenge, RefreshToken
from tests.subprocess_env import env_on_test_database, run_manage

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_short_bench_run_reports_every_endpoint_beside_the_baseline():
    result = run_manage(
        "bench_members", "--seconds", "0.3", "--rounds", "1", "--clients", "2", "--sessions", "2",
        "--warmup-members", "2",
        env=env_on_test_database(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    assert "warm-up: verify" in report and "verify pools:" in report
    for label in ("baseline (no database)", "POST auth/otp/verify", "POST auth/refresh"):
        assert report.count(f"round 1: {label}") == 1, report
    assert "ERRORS" not in report
    table = report.split("Member sign-in throughput")[1]
    assert "vs baseline" in table and "100.0%" in table  # the baseline against itself

    # The requests did the endpoints' real work: codes used, tokens rotated, sign-ins
    # from devices already known (no new device but the seeded members' first ones).
    verified = OtpChallenge.objects.filter(verified_at__isnull=False).count()
    assert verified > 0
    assert RefreshToken.objects.filter(rotated_at__isnull=False).exists()
    new_devices = MemberSecurityEvent.objects.filter(kind="device_new").count()
    assert new_devices == MemberDevice.objects.count()
    logins = MemberSecurityEvent.objects.filter(kind="login").count()
    assert logins == new_devices + verified  # a seeding sign-in per member, one per code


def test_refused_requests_are_counted_by_status_and_code_and_fail_the_run():
    # Codes that expire at once (the command and its server read the same setting):
    # every verify is refused, which the warm-up reports before anything is measured.
    env = env_on_test_database(MEMBER_OTP_VALID_SECONDS="0")
    result = run_manage(
        "bench_members", "--seconds", "0.3", "--clients", "2", "--warmup-members", "1", env=env, timeout=120
    )
    assert result.returncode == 1
    refused = re.search(r" 0 requests +0/s  ERRORS: (\d+) x 401 otp_expired\n", result.stdout)
    assert refused and int(refused[1]) > 0, result.stdout
    assert f"the warm-up failed: {refused[1]} x 401 otp_expired" in result.stderr
    assert "Member sign-in throughput" not in result.stdout
