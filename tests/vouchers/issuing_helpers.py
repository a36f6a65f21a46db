"""Helpers for the tests of vouchers bought with points (``vouchers.services.issuing``), shared by
the issuing, member API and admin tests."""

from __future__ import annotations

from members.models import MemberSession
from members.services.sessions import session_start
from vouchers.services.issuing import voucher_purchase

PHONE = "+60 12-555 0777"


def session_for(member, **kwargs) -> MemberSession:
    tokens = session_start(member=member, channel=kwargs.pop("channel", "app"), device_fingerprint="fp-v", **kwargs)
    return MemberSession.objects.get(pk=tokens.session_id)


def buy(member, reward, key="k-1", session=None, **kwargs):
    return voucher_purchase(
        member=member, reward_id=reward.pk, idempotency_key=key, session=session or session_for(member), **kwargs
    )
