"""A staff member enrols their first second factor: a TOTP device (authenticator app).

The use case behind the admin's ``otp/enrol/`` step (``staffauth.views.OtpEnrolView``,
which shows the secret as a QR code and logs the user in once the device is confirmed):

1. ``staff_totp_pending_device``: the unconfirmed device of this enrolment attempt, or a
   fresh one. An unconfirmed device cannot log anyone in.
2. ``staff_totp_enrol``: a code from the device confirms it; backup codes are issued
   (shown once) and the enrolment is recorded. A wrong code confirms nothing; the caller
   counts it as a failed login (axes), as for any second-step code.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth.models import StaffUser
from staffauth.services import Kind, otp_backup_codes_issue, security_event_record, staff_otp_check

DEVICE_NAME = "Authenticator app"


@dataclass(frozen=True)
class TotpEnrolment:
    """What ``staff_totp_enrol`` did: ``backup_codes`` when the code confirmed the device
    (show them once); else ``wait_seconds`` when the code was not checked (django-otp's
    back-off: not a wrong code, do not count it); else the code was wrong (count it)."""

    backup_codes: list[str] | None = None
    wait_seconds: int | None = None

    @property
    def confirmed(self) -> bool:
        return self.backup_codes is not None


@transaction.atomic
def staff_totp_pending_device(*, user: StaffUser, device_id: int | None) -> TOTPDevice:
    """The user's unconfirmed device ``device_id`` (the one this attempt showed), or a new
    one with a fresh secret, every other pending device of the user discarded.

    A secret seen by anyone who had the password before enrolment (whoever set the
    initial password, say) must not become the user's second factor later, so each
    attempt (the caller keeps ``device_id`` in the session) starts from a fresh secret.
    """
    pending = TOTPDevice.objects.filter(user=user, confirmed=False)
    device = pending.filter(pk=device_id).first() if device_id is not None else None
    if device is None:
        pending.delete()
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


@transaction.atomic
def staff_totp_enrol(*, user: StaffUser, device: TOTPDevice, token: str) -> TotpEnrolment:
    """Confirm ``user``'s pending ``device`` with a ``token`` (a code) from it.

    On a right code: the device is confirmed, the user's backup codes are replaced by
    new ones (returned, shown once) and ``otp_device_enrolled`` is recorded, all in one
    transaction. The caller then logs the user in with the device (``otp_verified``).
    A code in the device's back-off is not checked (``wait_seconds``); a wrong one
    changes nothing here (``staff_otp_check`` counts it on the device).
    """
    check = staff_otp_check(devices=[device], token=token)
    if check.device is None:
        return TotpEnrolment(wait_seconds=check.wait_seconds)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = otp_backup_codes_issue(user=user)
    security_event_record(kind=Kind.OTP_DEVICE_ENROLLED, actor=user, detail={"device": "TOTPDevice"})
    return TotpEnrolment(backup_codes=codes)
