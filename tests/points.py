"""Points for a test's member, earned at a till as a purchase would: one helper behind the
``earn`` and ``give`` fixtures of the ledger, member API and voucher tests."""

from __future__ import annotations

import itertools

from django.utils import timezone

from loyalty.ledger.operations import points_earn


def points_giver(till_actor, *, receipt: str = "R", key: str = "earn"):
    """A function ``give(member, points, *, effective_at=None, actor=None)`` that earns
    ``points`` for ``member`` under a fresh receipt and idempotency key (``<receipt>-<pk>-<n>``,
    ``<key>-<pk>-<n>``) at ``till_actor``'s till (or ``actor``'s), asserts the earn was taken and returns its outcome."""
    counter = itertools.count(1)

    def give(member, points, *, effective_at=None, actor=None):
        n = next(counter)
        outcome = points_earn(
            member=member,
            points=points,
            receipt_ref=f"{receipt}-{member.pk}-{n}",
            actor=actor or till_actor,
            idempotency_key=f"{key}-{member.pk}-{n}",
            effective_at=effective_at or timezone.now(),
        )
        assert outcome.ok, outcome.body
        return outcome

    return give
