"""Helpers for the till's redemption endpoints over HTTP, shared with the till API's own
tests: ``ShiftTillClient`` (a signed till client that sends its cashier's X-Staff-Shift
token), ``shift_client``, ``app_confirm`` and the points hold as a request."""

from __future__ import annotations

from dataclasses import dataclass

from django.test import Client

from members.models import MemberSession
from members.services.sessions import session_start
from tests.loyalty.api.conftest import TillClient
from tests.vouchers.till_helpers import open_shift
from vouchers.services.shifts import HEADER as SHIFT_HEADER
from vouchers.services.till_points import member_redemption_confirm


@dataclass
class ShiftTillClient(TillClient):
    """A signed till client that sends its staff member's shift token with every request."""

    shift_token: str = ""

    def request(self, method, path, body=None, *, headers=None, **kwargs):
        merged = {SHIFT_HEADER: self.shift_token or None, **(headers or {})}
        return super().request(method, path, body, headers=merged, **kwargs)


def shift_client(till, staff) -> ShiftTillClient:
    shift = open_shift(staff, till)
    return ShiftTillClient(Client(), till, till.plain_secret, shift_token=shift.token)


def app_confirm(member, hold_id):
    """The member confirms the hold in the app (the service, with a live app session)."""
    tokens = session_start(member=member, channel="app", device_fingerprint=f"fp-confirm-{member.pk}")
    session = MemberSession.objects.get(pk=tokens.session_id)
    return member_redemption_confirm(member=member, session=session, hold_id=hold_id)


def error(response) -> str:
    return response.json()["error"]["code"]


def hold(pos, member, points=300, **kwargs):
    return pos.post("redemptions", {"loyalty_number": member.loyalty_number, "points": points}, **kwargs)
