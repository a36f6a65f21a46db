"""Offline mode (``vouchers.services.offline``, ``POST /api/v1/pos/offline/redemptions``, the
admin queue): redemptions attempted offline are never honoured as they stand, only
queued; the member is told; a Store Manager approves (carried out online with every
check) or rejects. Offline earns: a delayed purchase with its original time earns once,
dated at that time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import Client, RequestFactory
from django.utils import timezone

from loyalty.kernel.models import OutboundMessage
from loyalty.kernel.statuses import refusal_status
from loyalty.ledger.models import LedgerOperation, PointsLot
from loyalty.ledger.operations import Actor, points_redeem
from members.services.membership import member_create
from tests.loyalty.api.conftest import TillClient
from tests.vouchers.till_helpers import available
from vouchers.models import PendingRedemption, Reward, TillRedemption, Voucher, VoucherRedemption
from vouchers.services.codes import code_format, code_generate
from vouchers.services.offline import OfflineRefused, pending_redemption_approve, pending_redemption_reject

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings", "sms_outbox")]

OFFLINE = "offline/redemptions"


def decider(user):
    """A user with the permission to decide (store managers and programme administrators
    hold it through their roles; this grants it to anyone, e.g. the attempting cashier)."""
    for codename in ("decide_pendingredemption", "view_pendingredemption"):
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="vouchers"))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


def attempt(member, **fields) -> dict:
    attempted = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    return {"loyalty_number": member.loyalty_number, "attempted_at": attempted.isoformat(), **fields}


def make_voucher(member, points=300) -> Voucher:
    reward = Reward.objects.create(name="RM5 off", kind="fixed_value", value_minor=500, points_price=points)
    issued = timezone.now() - timedelta(days=1)
    return Voucher.objects.create(
        code=code_generate(),
        reward=reward,
        member=member,
        source=Voucher.Source.GOODWILL,
        issued_at=issued,
        expires_at=issued + timedelta(days=30),
    )


def error(response) -> str:
    return response.json()["error"]["code"]


def submit(pos, member, key="off-1", **fields):
    """``key=None``: a fresh key of the client's."""
    return pos.post(OFFLINE, attempt(member, **fields), **({"key": key} if key else {}))


# --- submit: queued, never honoured --------------------------------------------------------------


def test_an_offline_points_redemption_is_queued_not_honoured_and_the_member_told(pos, shopper, cashier):
    before = LedgerOperation.objects.count()

    response = submit(pos, shopper, points=700)

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["honoured"], body["points"], body["member_notified"]) == (
        "pending", False, 700, True
    )  # fmt: skip
    pending = PendingRedemption.objects.get()
    assert (pending.member, pending.points, pending.staff, pending.status) == (shopper, 700, cashier, "pending")
    assert LedgerOperation.objects.count() == before and available(shopper) == 10_000
    assert not TillRedemption.objects.exists()
    notice = OutboundMessage.objects.get(member=shopper, topic="redemption")
    assert notice.subject == "Your redemption awaits verification"
    assert "not been carried out" in notice.body
    assert shopper.loyalty_number not in response.content.decode()


def test_the_same_submission_twice_is_stored_and_told_once(pos, shopper):
    first = submit(pos, shopper, points=700)
    again = pos.post(
        OFFLINE, {**attempt(shopper, points=700), "attempted_at": first.json()["attempted_at"]}, key="off-1"
    )

    assert again.status_code == 202 and again["Idempotency-Replayed"] == "true"
    assert again.json()["pending_id"] == first.json()["pending_id"]
    assert PendingRedemption.objects.count() == 1
    assert OutboundMessage.objects.filter(topic="redemption").count() == 1
    other = submit(pos, shopper, points=701)
    assert (other.status_code, error(other)) == (422, "idempotency_key_reused")


def test_a_voucher_attempted_offline_is_queued_and_stays_active(pos, shopper):
    voucher = make_voucher(shopper)
    response = submit(pos, shopper, voucher_code=code_format(voucher.code))
    assert response.status_code == 202 and response.json()["voucher_id"] == str(voucher.pk)
    voucher.refresh_from_db()
    assert voucher.status == "active" and not VoucherRedemption.objects.exists()
    assert voucher.code not in response.content.decode()


def test_another_members_voucher_is_404(pos, shopper, store_a):
    other = member_create(home_store=store_a, name="Other", phone="+60135550288")
    response = submit(pos, shopper, voucher_code=make_voucher(other).code)
    assert (response.status_code, error(response)) == (404, "voucher_not_found")
    assert not PendingRedemption.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [{}, {"points": 10, "voucher_code": "ABCD-EFGH-JKMN-PQRS"}, {"points": 0}, {"points": 10, "extra": 1}],
)
def test_exactly_one_of_points_and_a_voucher_code(pos, shopper, fields):
    response = submit(pos, shopper, **fields)
    assert (response.status_code, error(response)) == (400, "validation_error")


def test_attempted_at_is_required_and_not_in_the_future(pos, shopper):
    body = attempt(shopper, points=10)
    assert pos.post(OFFLINE, {k: v for k, v in body.items() if k != "attempted_at"}).status_code == 400
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert pos.post(OFFLINE, {**body, "attempted_at": future}).status_code == 400


def test_a_till_without_a_shift_may_still_queue(till, shopper):
    plain = TillClient(Client(), till, till.plain_secret)
    assert submit(plain, shopper, points=10).status_code == 202
    assert PendingRedemption.objects.get().staff is None


# --- decide ----------------------------------------------------------------------------------------


def queued(pos, member, **fields) -> PendingRedemption:
    response = submit(pos, member, key=None, **fields)
    assert response.status_code == 202, response.content
    return PendingRedemption.objects.get(pk=response.json()["pending_id"])


def test_a_store_manager_approves_and_the_points_go_through_the_ledger(pos, shopper, manager):
    pending = queued(pos, shopper, points=700)

    approved = pending_redemption_approve(pending_id=pending.pk, actor=decider(manager))

    assert (approved.status, approved.decided_by) == ("approved", manager)
    op = LedgerOperation.objects.get(pk=approved.ledger_operation_id)
    assert (op.kind, op.points, op.member, op.actor_staff, op.store) == (
        "redeem",
        700,
        shopper,
        manager,
        pos.till.store,
    )
    assert available(shopper) == 10_000 - 700
    assert OutboundMessage.objects.filter(member=shopper, subject="Your redemption was approved").exists()
    with pytest.raises(OfflineRefused) as caught:
        pending_redemption_approve(pending_id=pending.pk, actor=decider(manager))
    assert caught.value.code == "already_decided"
    assert available(shopper) == 10_000 - 700


def test_approval_checks_the_balance_at_approval_and_writes_nothing_when_refused(pos, shopper, manager):
    pending = queued(pos, shopper, points=700)
    poorer = decider(manager)
    # Spent elsewhere meanwhile: 500 points left at approval time.
    assert points_redeem(member=shopper, points=9_500, actor=Actor(till=pos.till), idempotency_key="spend").ok

    with pytest.raises(OfflineRefused) as caught:
        pending_redemption_approve(pending_id=pending.pk, actor=poorer)

    assert (caught.value.code, refusal_status(caught.value)) == ("insufficient_points", 422)
    pending.refresh_from_db()
    assert pending.status == "pending" and pending.ledger_operation is None


@pytest.mark.parametrize("who", ["attempting_cashier", "other_store_manager", "no_permission", "cashier_role"])
def test_who_may_not_approve(who, pos, shopper, cashier, manager, make_staff, store_a, store_b):
    pending = queued(pos, shopper, points=100)
    actor = {
        "attempting_cashier": lambda: decider(cashier),
        "other_store_manager": lambda: decider(make_staff("manager_b", "store_manager", stores=[store_b])),
        "no_permission": lambda: make_staff("fraud1", "fraud_analyst", stores=[store_a]),
        "cashier_role": lambda: make_staff("cashier2", "cashier", stores=[store_a]),
    }[who]()
    expected = {
        "attempting_cashier": "own_attempt",
        "other_store_manager": "not_found",
        "no_permission": "permission_denied",
        "cashier_role": "permission_denied",
    }[who]
    with pytest.raises(OfflineRefused) as caught:
        pending_redemption_approve(pending_id=pending.pk, actor=actor)
    assert caught.value.code == expected
    pending.refresh_from_db()
    assert pending.status == "pending" and available(shopper) == 10_000


def test_approval_applies_the_approvers_limit_and_the_staff_rules(pos, shopper, manager, make_staff):
    big = queued(pos, shopper, points=2000)
    with pytest.raises(OfflineRefused) as caught:
        pending_redemption_approve(pending_id=big.pk, actor=decider(manager))
    assert (caught.value.code, caught.value.detail) == ("limit_exceeded", {"points": 2000, "limit": 2000})
    admin_user = decider(make_staff("admin1", "program_admin"))
    assert pending_redemption_approve(pending_id=big.pk, actor=admin_user).status == "approved"

    own = queued(pos, shopper, points=10)
    manager.member_account = shopper
    manager.save(update_fields=["member_account"])
    with pytest.raises(OfflineRefused) as caught:
        pending_redemption_approve(pending_id=own.pk, actor=decider(manager))
    assert caught.value.code == "self_redemption_refused"


def test_an_approved_voucher_is_redeemed_once(pos, shopper, manager):
    voucher = make_voucher(shopper)
    pending = queued(pos, shopper, voucher_code=voucher.code)

    pending_redemption_approve(pending_id=pending.pk, actor=decider(manager))

    voucher.refresh_from_db()
    assert voucher.status == "redeemed"
    redemption = VoucherRedemption.objects.get(voucher=voucher)
    assert redemption.receipt["offline"] is True and redemption.store == pos.till.store
    assert available(shopper) == 10_000  # the voucher was paid for when it was bought


def test_a_voucher_used_meanwhile_is_refused_at_approval(pos, shopper, manager):
    voucher = make_voucher(shopper)
    pending = queued(pos, shopper, voucher_code=voucher.code)
    Voucher.objects.filter(pk=voucher.pk).update(status="revoked", revoked_at=timezone.now())

    with pytest.raises(OfflineRefused) as caught:
        pending_redemption_approve(pending_id=pending.pk, actor=decider(manager))

    assert caught.value.code == "voucher_revoked"
    pending.refresh_from_db()
    assert pending.status == "pending" and not VoucherRedemption.objects.exists()


def test_a_rejection_redeems_nothing_and_tells_the_member(pos, shopper, manager):
    pending = queued(pos, shopper, points=700)
    with pytest.raises(OfflineRefused) as caught:
        pending_redemption_reject(pending_id=pending.pk, actor=decider(manager), reason=" ")
    assert caught.value.code == "reason_required"

    rejected = pending_redemption_reject(pending_id=pending.pk, actor=decider(manager), reason="Customer not present")

    assert (rejected.status, rejected.decision_note) == ("rejected", "Customer not present")
    assert available(shopper) == 10_000
    assert OutboundMessage.objects.filter(member=shopper, subject="Your redemption was not approved").exists()


# --- the admin queue -----------------------------------------------------------------------------


@pytest.fixture
def offline_admin():
    """The offline queue's admin class on the default site (``vouchers.admin`` registers it)."""
    return admin.site._registry[PendingRedemption]


def admin_request(user):
    request = RequestFactory().post("/admin/vouchers/pendingredemption/")
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_the_admin_queue_is_store_scoped_and_its_actions_decide(
    offline_admin, pos, shopper, manager, make_staff, store_b
):
    first = queued(pos, shopper, points=100)
    second = PendingRedemption.objects.get(pk=submit(pos, shopper, key="off-2", points=200).json()["pending_id"])
    manager = decider(manager)
    other = decider(make_staff("manager_b", "store_manager", stores=[store_b]))

    assert set(offline_admin.get_queryset(admin_request(manager))) == {first, second}
    assert not offline_admin.get_queryset(admin_request(other)).exists()
    assert "approve_selected" in offline_admin.get_actions(admin_request(manager))
    assert "approve_selected" not in offline_admin.get_actions(admin_request(make_staff("x", "fraud_analyst")))

    offline_admin.approve_selected(admin_request(manager), PendingRedemption.objects.filter(pk=first.pk))
    offline_admin.reject_selected(admin_request(manager), PendingRedemption.objects.filter(pk=second.pk))

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("approved", "rejected")
    assert available(shopper) == 10_000 - 100
    assert not offline_admin.has_change_permission(admin_request(manager), first)


# --- offline earns -----------------------------------------------------------------------------------


def test_a_delayed_earn_sent_twice_with_its_original_time_is_credited_once_and_dated_then(pos, store_a):
    member = member_create(home_store=store_a, name="Late Earner", phone="+60135550299")
    occurred = (timezone.now() - timedelta(days=3)).replace(microsecond=0)
    body = {
        "loyalty_number": member.loyalty_number,
        "receipt_number": "OFF-17",
        "amount_minor": 12_345,
        "occurred_at": occurred.isoformat(),
    }

    first = pos.post("purchases", body, key="offline-earn-17")
    again = pos.post("purchases", body, key="offline-earn-17")
    other_key = pos.post("purchases", body, key="offline-earn-17-retry")

    assert first.status_code == 201 and (again.status_code, again.content) == (201, first.content)
    assert again["Idempotency-Replayed"] == "true"
    assert (other_key.status_code, error(other_key)) == (409, "receipt_already_used")
    assert LedgerOperation.objects.filter(kind="earn", member=member).count() == 1
    assert available(member) == 123
    dated = timezone.localdate(occurred) + timedelta(days=365)
    assert first.json()["expires_on"] == str(dated)
    assert PointsLot.objects.get(account__member=member).expires_on == dated
