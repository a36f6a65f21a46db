"""A staff member's first TOTP device (staffauth.enrolment): a pending device per attempt,
confirmed by a code from it, with backup codes and the enrolment recorded. The pages are
tests/staffauth/test_login_flow.py."""

from __future__ import annotations

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth.enrolment import staff_totp_enrol, staff_totp_pending_device
from staffauth.models import SecurityEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(make_staff):
    return make_staff("newcomer", otp=False)


def code_from(device: TOTPDevice, offset: int = 0) -> str:
    return f"{(totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits) + offset) % 10**6:06d}"


def test_the_pending_device_is_kept_for_its_attempt_and_replaced_for_another(newcomer):
    first = staff_totp_pending_device(user=newcomer, device_id=None)
    assert first.confirmed is False
    assert staff_totp_pending_device(user=newcomer, device_id=first.pk) == first
    # another attempt (another session) gets a fresh secret; the first one is gone
    second = staff_totp_pending_device(user=newcomer, device_id=None)
    assert second != first and list(TOTPDevice.objects.filter(user=newcomer)) == [second]


def test_a_code_from_the_device_confirms_it_and_issues_backup_codes(newcomer, settings):
    device = staff_totp_pending_device(user=newcomer, device_id=None)
    enrolment = staff_totp_enrol(user=newcomer, device=device, token=code_from(device))
    assert enrolment.confirmed and len(enrolment.backup_codes) == settings.STAFF_BACKUP_CODE_COUNT
    device.refresh_from_db()
    assert device.confirmed is True
    static = StaticDevice.objects.get(user=newcomer)
    assert sorted(static.token_set.values_list("token", flat=True)) == sorted(enrolment.backup_codes)
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.OTP_DEVICE_ENROLLED)
    assert event.actor == newcomer and event.detail == {"device": "TOTPDevice"}


def test_a_wrong_code_confirms_nothing(newcomer):
    device = staff_totp_pending_device(user=newcomer, device_id=None)
    enrolment = staff_totp_enrol(user=newcomer, device=device, token=code_from(device, offset=1))
    assert not enrolment.confirmed and enrolment.wait_seconds is None
    device.refresh_from_db()
    assert device.confirmed is False and device.throttling_failure_count == 1
    assert not StaticDevice.objects.filter(user=newcomer).exists()
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_DEVICE_ENROLLED).exists()
