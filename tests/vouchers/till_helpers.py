"""Helpers for the till's redemption tests (``vouchers.services.redemption``, ``vouchers.services.till_points``):
shifts, voucher redemptions and points holds through the services, the SMS code read to the
cashier and the member's in-app authorisation."""

from __future__ import annotations

import re
import secrets
from functools import partial

import pytest
from django.utils import timezone

from loyalty.ledger.models import LedgerOperation, MemberBalance
from loyalty.ledger.operations import Actor, points_earn
from loyalty.notifications import LocmemSmsBackend
from members.models import MemberSession
from members.services.sessions import session_start
from tests.conftest import PASSWORD, current_totp
from vouchers.models import StaffShift
from vouchers.services.redemption import voucher_redeem
from vouchers.services.shifts import token_hash
from vouchers.services.till_controls import TillPointsRefused
from vouchers.services.till_points import (
    member_redemption_confirm,
    till_redemption_capture,
    till_redemption_hold,
)
from vouchers.services.tokens import qr_token_issue

PHONE = "+60125550177"


def open_shift(staff, till, *, started_at=None) -> StaffShift:
    """An open shift with a known token (clocking in itself is tested in test_shifts)."""
    token = secrets.token_urlsafe(32)
    shift = StaffShift.objects.create(
        staff=staff, store=till.store, till=till, token_hash=token_hash(token), started_at=started_at or timezone.now()
    )
    shift.token = token
    return shift


# --- vouchers ----------------------------------------------------------------------------------------


def presented(voucher, *, qr=False, now=None) -> dict:
    if qr:
        token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id, now=now)
        return {"qr_token": token.token}
    return {"code": voucher.code, "member_loyalty_number": voucher.member.loyalty_number}


def redeem(shift, voucher, key="k-1", *, qr=False, now=None, **kwargs):
    now = now or timezone.now()
    kwargs = {**presented(voucher, qr=qr, now=now), **kwargs}
    return voucher_redeem(till=shift.till, shift=shift, idempotency_key=key, now=now, **kwargs)


# --- points ------------------------------------------------------------------------------------------


def give(member, till, points, key=None):
    key = key or f"seed-{member.pk}-{points}-{LedgerOperation.objects.count()}"
    outcome = points_earn(member=member, points=points, receipt_ref=key, actor=Actor(till=till), idempotency_key=key)
    assert outcome.ok, outcome.body


def sms_code(phone=PHONE) -> str:
    texts = [m["text"] for m in LocmemSmsBackend.outbox if m["to"] == phone]
    return re.search(r"\b(\d{6})\b", texts[-1]).group(1)


def available(member) -> int:
    return MemberBalance.objects.get(account__member=member).available


def hold(shift, member, points, key="h-1", *, commit=None, **kwargs):
    """A hold through the service; ``commit`` (django_capture_on_commit_callbacks) sends
    the SMS that leaves on commit."""
    call = partial(
        till_redemption_hold, till=shift.till, shift=shift, member=member, points=points, idempotency_key=key, **kwargs
    )
    if commit is None:
        return call()
    with commit(execute=True):
        return call()


def refused(call, *args, **kwargs) -> TillPointsRefused:
    with pytest.raises(TillPointsRefused) as caught:
        call(*args, **kwargs)
    return caught.value


def credentials(user, **overrides) -> dict:
    return {"username": user.username, "password": PASSWORD, "otp": current_totp(user), **overrides}


def authorise_by_app(member, hold_id):
    tokens = session_start(member=member, channel="app", device_fingerprint=f"fp-{member.pk}")
    session = MemberSession.objects.get(pk=tokens.session_id)
    return member_redemption_confirm(member=member, session=session, hold_id=hold_id)


def capture(shift, hold_id, key="c-1", **kwargs):
    return till_redemption_capture(till=shift.till, shift=shift, hold_id=hold_id, idempotency_key=key, **kwargs)
