"""Ledger fixtures: members with accounts, a till actor, and the invariant check."""

import pytest
from django.utils import timezone

from loyalty.models import Till
from loyalty.services import Actor, points_earn
from loyalty.verify import ledger_verify
from members.models import Member


@pytest.fixture
def till(store_a):
    return Till.objects.create(store=store_a, code="T1", key_id="till-test-1", secret_encrypted="-")


@pytest.fixture
def till_actor(till):
    return Actor(till=till)


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def earn(till_actor):
    """Earn points for a member under a fresh key and receipt; returns the outcome."""
    counter = iter(range(1, 1_000_000))

    def do(member, points, *, effective_at=None, actor=None):
        n = next(counter)
        outcome = points_earn(
            member=member,
            points=points,
            receipt_ref=f"R-{member.pk}-{n}",
            actor=actor or till_actor,
            idempotency_key=f"earn-{member.pk}-{n}",
            effective_at=effective_at or timezone.now(),
        )
        assert outcome.ok, outcome.body
        return outcome

    return do


def assert_ledger_verified():
    report = ledger_verify()
    assert report.ok, report.problems
    return report


@pytest.fixture
def velocity_off(settings):
    """The ledger's mechanics without the programme's velocity limits (tested on their own)."""
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)
