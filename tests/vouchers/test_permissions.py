"""Who may act on the till's store-scoped records (``vouchers.permissions``): the model
permission for the action, then the stores the user sees (``loyalty.kernel.scoping.restrict``
through ``store_scope_field``)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from loyalty.kernel.scoping import restrict
from loyalty.ledger.models import LedgerOperation
from vouchers.models import PendingRedemption, RedemptionAudit
from vouchers.permissions import (
    audits_reviewable_by,
    goodwill_limit,
    may_decide_offline,
    may_review_audits,
    may_revoke_vouchers,
    pending_decidable_by,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limits_off")]


@pytest.fixture
def staff(make_staff, store_a):
    return {
        "cashier": make_staff("perm-cashier", "cashier", [store_a]),
        "manager_a": make_staff("perm-manager-a", "store_manager", [store_a]),
        "program_admin": make_staff("perm-admin", "program_admin"),
        "fraud_analyst": make_staff("perm-analyst", "fraud_analyst"),
    }


@pytest.fixture
def pending(till_for, store_a, store_b, member):
    now = timezone.now()

    def at(store, key):
        return PendingRedemption.objects.create(
            till=till_for(store), store=store, member=member, points=5, idempotency_key=key, attempted_at=now
        )

    return {"a": at(store_a, "perm-a"), "b": at(store_b, "perm-b")}


@pytest.fixture
def audits(store_a, store_b, member, give, staff):
    now = timezone.now()

    def at(store):
        operation = LedgerOperation.objects.get(pk=give(member, 10).body["operation_id"])
        return RedemptionAudit.objects.create(
            store=store, cashier=staff["cashier"], ledger_operation=operation, points=10, sampled_at=now
        )

    return {"a": at(store_a), "b": at(store_b)}


def test_the_offline_queue_is_cut_to_the_decide_permission_and_the_users_stores(staff, pending):
    assert set(pending_decidable_by(staff["manager_a"])) == {pending["a"]}
    assert set(pending_decidable_by(staff["program_admin"])) == {pending["a"], pending["b"]}  # headquarters
    assert not pending_decidable_by(staff["cashier"]).exists()  # no permission: nothing
    assert not pending_decidable_by(staff["fraud_analyst"]).exists()
    assert [may_decide_offline(staff[name]) for name in ("manager_a", "program_admin", "cashier")] == [
        True,
        True,
        False,
    ]


def test_the_audit_queue_is_cut_to_the_review_permission_and_the_users_stores(staff, audits):
    assert set(audits_reviewable_by(staff["manager_a"])) == {audits["a"]}
    # The fraud analyst sees every store but may not review: nothing to review.
    assert not audits_reviewable_by(staff["fraud_analyst"]).exists()
    assert not audits_reviewable_by(staff["program_admin"]).exists()
    assert may_review_audits(staff["manager_a"]) and not may_review_audits(staff["cashier"])
    # Viewing is its own permission: the analyst views both stores' audits.
    assert set(restrict(RedemptionAudit.objects.all(), staff["fraud_analyst"], "view")) == {audits["a"], audits["b"]}


def test_an_inactive_user_may_do_nothing(staff, pending):
    manager = staff["manager_a"]
    manager.is_active = False
    assert not pending_decidable_by(manager).exists()
    assert not may_decide_offline(manager) and not may_review_audits(manager)
    assert goodwill_limit(manager) is None


def test_revoking_and_goodwill_follow_the_roles(staff):
    assert may_revoke_vouchers(staff["program_admin"]) and not may_revoke_vouchers(staff["manager_a"])
    assert goodwill_limit(staff["cashier"]) is None
    assert goodwill_limit(staff["manager_a"]) is not None
