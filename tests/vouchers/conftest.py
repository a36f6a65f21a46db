"""Voucher and till fixtures shared by the voucher test modules.

The settings fixtures (``limits_off``, ``till_settings``) and ``sms_outbox`` are not
autouse here: each module names the ones it runs under in its ``pytestmark``
(``pytest.mark.usefixtures``), so a module that does not ask keeps the shipped limits.
Plain helpers live beside this file in ``issuing_helpers``, ``till_helpers`` and
``till_api_helpers``; no test module imports another.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.kernel.models import Till
from loyalty.ledger.operations import Actor
from loyalty.notifications import LocmemSmsBackend
from members.models import Member
from members.services.membership import member_create
from members.services.otp import otp_request, otp_verify
from tests.loyalty.api.conftest import make_till
from tests.points import points_giver
from tests.vouchers import issuing_helpers, till_helpers
from tests.vouchers.till_api_helpers import shift_client
from vouchers.models import Reward, Voucher
from vouchers.services.codes import code_generate

# --- settings and the SMS outbox (named in each module's pytestmark) ------------------------------


@pytest.fixture
def limits_off(settings):
    """The ledger's velocity limits and daily earn caps are tested on their own; here
    they would only get in the way of funding members."""
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)
    settings.LOYALTY_TIERS = [{**tier, "daily_earn_points": None} for tier in settings.LOYALTY_TIERS]


@pytest.fixture
def till_settings(settings):
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)
    settings.LOYALTY_TIERS = [{**tier, "daily_earn_points": None} for tier in settings.LOYALTY_TIERS]
    settings.ROLE_LIMITS = {**settings.ROLE_LIMITS, "redeem_below": {"cashier": 500, "store_manager": 2000}}
    settings.VOUCHERS = {
        **settings.VOUCHERS,
        "qr_step_seconds": 30,
        "qr_grace_steps": 0,
        "cashier_redemptions_alert": 20,
        "cashier_redemptions_window_minutes": 60,
        "audit_sample_percent": 0.0,
    }


@pytest.fixture
def sms_outbox():
    LocmemSmsBackend.outbox.clear()
    yield LocmemSmsBackend.outbox
    LocmemSmsBackend.outbox.clear()


# --- members, rewards and vouchers bought with points (vouchers.services.issuing) ----------------------------


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def member_with_phone(store_a):
    """A member with a name and a phone on file (the SMS step-up needs one)."""
    return member_create(home_store=store_a, name="Nur Aisyah", phone=issuing_helpers.PHONE)


@pytest.fixture
def till_actor(store_a):
    return Actor(till=Till.objects.create(store=store_a, code="TV", key_id="till-vouchers", secret_encrypted="-"))


@pytest.fixture
def give(till_actor):
    """Earn ``points`` for the member at the till; the member stays at ``tier``."""
    earn = points_giver(till_actor, receipt="V", key="give")

    def do(member, points, *, tier=1):
        outcome = earn(member, points)
        Member.objects.filter(pk=member.pk).update(tier=tier)
        member.tier = tier
        return outcome

    return do


@pytest.fixture
def make_reward():
    counter = iter(range(1, 1_000_000))

    def make(**fields) -> Reward:
        n = next(counter)
        defaults = {"name": f"RM5 off #{n}", "kind": Reward.Kind.FIXED_VALUE, "value_minor": 500, "points_price": 500}
        return Reward.objects.create(**{**defaults, **fields})

    return make


@pytest.fixture
def reward(make_reward):
    return make_reward()


@pytest.fixture
def make_voucher(member, make_reward):
    def make(*, owner=None, points=300, issued_at=None, days=30, **reward_fields) -> Voucher:
        reward = make_reward(points_price=points, **reward_fields)
        issued = issued_at or timezone.now() - timedelta(hours=1)
        return Voucher.objects.create(
            code=code_generate(),
            reward=reward,
            member=owner or member,
            source=Voucher.Source.GOODWILL,
            issued_at=issued,
            expires_at=issued + timedelta(days=days),
        )

    return make


@pytest.fixture
def voucher(make_voucher):
    return make_voucher()


@pytest.fixture
def verified_step_up(django_capture_on_commit_callbacks):
    """Verify an SMS step-up code for ``action`` as the member would."""

    def verify(member, action="redeem", phone=issuing_helpers.PHONE):
        with django_capture_on_commit_callbacks(execute=True):
            result = otp_request(phone=phone, purpose="step_up", action=action, ip="10.0.0.1")
        code = re.search(r"\b(\d{6})\b", LocmemSmsBackend.outbox[-1]["text"]).group(1)
        otp_verify(challenge_id=result.challenge_id, phone=phone, code=code, purpose="step_up", action=action)

    return verify


# --- tills, staff and shifts (vouchers.services.redemption, vouchers.services.till_points) ---------------------------


@pytest.fixture
def till_for(store_a):
    counter = itertools.count(1)

    def make(store=None):
        return make_till(store or store_a, f"VT{next(counter)}")

    return make


@pytest.fixture
def till(till_for, store_a):
    """A till of store A, made through the API's helper (its key and secret are real)."""
    return till_for(store_a)


@pytest.fixture
def cashier(make_staff, store_a):
    return make_staff("cashier1", "cashier", stores=[store_a])


@pytest.fixture
def manager(make_staff, store_a):
    return make_staff("manager1", "store_manager", stores=[store_a])


@pytest.fixture
def shopper(store_a, till):
    """A member with a phone on file and 10,000 points."""
    member = member_create(home_store=store_a, name="Aminah Till", phone=till_helpers.PHONE)
    till_helpers.give(member, till, 10_000)
    return member


@pytest.fixture
def on_shift(cashier, till):
    return till_helpers.open_shift(cashier, till)


@pytest.fixture
def pos(till, cashier):
    """The till's signed client, with the cashier on shift."""
    return shift_client(till, cashier)
