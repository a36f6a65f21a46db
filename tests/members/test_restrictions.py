"""The fraud team's actions on a member (members.services.restrictions): a spending freeze
refuses hold, redeem and capture but not earning; each action is idempotent, authorised
per role and recorded; a locked or suspended member is told what to do."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from loyalty.ledger import operations as ops
from members.models import Member, MemberDevice, MemberRestriction, MemberSecurityEvent, MemberSession
from members.services.restrictions import (
    RestrictionRefused,
    member_device_block,
    member_lock_and_revoke,
    member_restore,
    member_spend_freeze,
    member_spend_freeze_confirm,
    member_spend_unfreeze,
    member_suspend,
)
from members.services.sessions import session_start
from members.services.standing import FREEZE_INDEFINITE
from tests.loyalty.conftest import assert_ledger_verified, available

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]

KIND = MemberRestriction.Kind
PHONE = "+60 12-555 0142"  # the members fixture enrols ``member`` with it


@pytest.fixture
def analyst(staff_by_role):
    return staff_by_role["fraud_analyst"]


@pytest.fixture
def admin(staff_by_role):
    return staff_by_role["program_admin"]


@pytest.fixture
def funded(member, earn):
    earn(member, 1000)
    return member


def refused(outcome):
    return (outcome.status_code, outcome.error_code)


# --- the freeze in the ledger ------------------------------------------------------------------


def test_freeze_refuses_hold_redeem_and_capture_but_not_earning(funded, analyst, till_actor, earn):
    hold = ops.points_hold(member=funded, points=100, actor=till_actor, idempotency_key="h1")
    assert hold.ok
    member_spend_freeze(member=funded, actor=analyst, reason="ATO suspected", case_ref="FC-2026-0001")

    redeem = ops.points_redeem(member=funded, points=10, actor=till_actor, idempotency_key="r1")
    new_hold = ops.points_hold(member=funded, points=10, actor=till_actor, idempotency_key="h2")
    capture = ops.points_capture(hold_id=hold.body["hold_id"], actor=till_actor, idempotency_key="c1")

    for outcome in (redeem, new_hold, capture):
        assert refused(outcome) == (403, "account_restricted")
    assert redeem.body["error"]["detail"] == {
        "restriction": "spending_frozen",
        "case_reference": "FC-2026-0001",
        "next_step": "in_store_id",
        "next_step_message": redeem.body["error"]["detail"]["next_step_message"],
    }
    assert "ATO" not in str(redeem.body)  # never the reason
    assert earn(funded, 50).ok  # earning continues
    assert ops.points_void(hold_id=hold.body["hold_id"], actor=till_actor, idempotency_key="v1").ok
    assert available(funded) == 1050
    assert_ledger_verified()


def test_unfreeze_lets_spending_resume(funded, analyst, till_actor):
    member_spend_freeze(member=funded, actor=analyst, reason="checking")
    member_spend_unfreeze(member=funded, actor=analyst, reason="member called, verified")
    assert ops.points_redeem(member=funded, points=10, actor=till_actor, idempotency_key="r").ok
    row = MemberRestriction.objects.get()
    assert row.lifted_at is not None and row.lifted_by == analyst and row.lift_reason == "member called, verified"


def test_analyst_freeze_lapses_after_72_hours_unless_confirmed(funded, analyst, admin, till_actor, member):
    start = timezone.now()
    result = member_spend_freeze(member=funded, actor=analyst, reason="r")
    assert abs((result.restriction.ends_at - start) - timedelta(hours=72)) < timedelta(seconds=5)
    with time_machine.travel(start + timedelta(hours=71, minutes=59), tick=False):
        assert refused(ops.points_redeem(member=funded, points=1, actor=till_actor, idempotency_key="a")) == (
            403,
            "account_restricted",
        )
    with time_machine.travel(start + timedelta(hours=72, minutes=1), tick=False):
        assert ops.points_redeem(member=funded, points=1, actor=till_actor, idempotency_key="b").ok

    other = Member.objects.create()
    member_spend_freeze(member=other, actor=analyst, reason="r")
    member_spend_freeze_confirm(member=other, actor=admin, reason="confirmed by review")
    other.refresh_from_db()
    assert other.spend_frozen_until == FREEZE_INDEFINITE
    rows = MemberRestriction.objects.filter(member=other).order_by("-id")
    assert [(row.confirmed, row.lifted_at is None) for row in rows] == [(True, True), (False, False)]


def test_a_lapsed_freeze_is_closed_and_a_new_one_begins(member, analyst):
    start = timezone.now()
    member_spend_freeze(member=member, actor=analyst, reason="first")
    with time_machine.travel(start + timedelta(hours=73), tick=False):
        again = member_spend_freeze(member=member, actor=analyst, reason="second")
    assert again.changed
    first = MemberRestriction.objects.get(reason="first")
    assert first.lift_reason == "lapsed"


# --- idempotency -------------------------------------------------------------------------------


def test_each_action_is_idempotent(member, analyst, admin):
    device = MemberDevice.objects.create(member=member, fingerprint_hash="f" * 64)
    actions = [
        lambda: member_spend_freeze(member=member, actor=analyst, reason="r"),
        lambda: member_lock_and_revoke(member=member, actor=analyst, reason="r"),
        lambda: member_suspend(member=member, actor=admin, reason="r"),
        lambda: member_device_block(device=device, actor=analyst, reason="r"),
    ]
    for action in actions:
        assert action().changed
        assert not action().changed
    assert MemberRestriction.objects.count() == 4
    assert member_restore(member=member, actor=admin, reason="ID checked in store").changed
    assert not member_restore(member=member, actor=admin, reason="again").changed
    assert member_spend_unfreeze(member=member, actor=analyst, reason="ok").changed
    assert not member_spend_unfreeze(member=member, actor=analyst, reason="ok").changed
    member.refresh_from_db()
    assert (member.status, member.spend_frozen_until) == (Member.Status.ACTIVE, None)
    assert MemberSecurityEvent.objects.filter(member=member, kind="spend_frozen").count() == 1


def test_one_live_restriction_of_a_kind_per_member_in_the_database(member, analyst):
    member_spend_freeze(member=member, actor=analyst, reason="r")
    with pytest.raises(IntegrityError), transaction.atomic():
        MemberRestriction.objects.create(member=member, kind=KIND.SPEND_FREEZE, reason="r", starts_at=timezone.now())


@pytest.mark.postgres
def test_history_only_lets_the_lift_columns_be_set_once(member, analyst, owner_role):
    row = member_spend_freeze(member=member, actor=analyst, reason="r").restriction
    member_spend_unfreeze(member=member, actor=analyst, reason="done")
    for sql in (
        "UPDATE members_memberrestriction SET reason = 'edited' WHERE id = %s",
        "UPDATE members_memberrestriction SET lifted_at = now() WHERE id = %s",
        "DELETE FROM members_memberrestriction WHERE id = %s",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [row.pk])


# --- who may act -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "freeze", "lock", "suspend", "confirm"),
    [
        ("cashier", False, False, False, False),
        ("store_manager", False, False, False, False),
        ("system_admin", False, False, False, False),
        ("fraud_analyst", True, True, False, False),
        ("program_admin", True, True, True, True),
    ],
)
def test_who_may_act(staff_by_role, role, freeze, lock, suspend, confirm):
    actor = staff_by_role[role]

    def allowed(action) -> bool:
        member = Member.objects.create()
        member_spend_freeze(member=member, actor=None, reason="auto", automatic=True)
        try:
            action(member)
        except RestrictionRefused as refusal:
            assert refusal.code == "permission_denied"
            return False
        return True

    assert allowed(lambda m: member_lock_and_revoke(member=m, actor=actor, reason="r")) is lock
    assert allowed(lambda m: member_spend_unfreeze(member=m, actor=actor, reason="r")) is freeze
    assert allowed(lambda m: member_suspend(member=m, actor=actor, reason="r")) is suspend
    assert allowed(lambda m: member_spend_freeze_confirm(member=m, actor=actor, reason="r")) is confirm
    other = Member.objects.create()
    try:
        member_spend_freeze(member=other, actor=actor, reason="r")
        froze = True
    except RestrictionRefused:
        froze = False
    assert froze is freeze


def test_an_analyst_cannot_lift_a_suspension_or_a_confirmed_freeze(member, analyst, admin):
    member_suspend(member=member, actor=admin, reason="confirmed fraud")
    with pytest.raises(RestrictionRefused, match="You may not"):
        member_restore(member=member, actor=analyst, reason="r")
    member_spend_freeze(member=member, actor=analyst, reason="r")
    member_spend_freeze_confirm(member=member, actor=admin, reason="r")
    with pytest.raises(RestrictionRefused):
        member_spend_unfreeze(member=member, actor=analyst, reason="r")


def test_automatic_action_needs_the_flag(member):
    with pytest.raises(RestrictionRefused):
        member_spend_freeze(member=member, actor=None, reason="score 85")
    assert member_spend_freeze(member=member, actor=None, reason="score 85", automatic=True).changed


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("", "reason_required"),
        ("card 4111 1111 1111 1111", "card_number_refused"),
        ("a\u202eb", "bidi_control_refused"),
    ],
)
def test_reason_is_checked_free_text(member, analyst, reason, code):
    with pytest.raises(RestrictionRefused) as caught:
        member_spend_freeze(member=member, actor=analyst, reason=reason)
    assert caught.value.code == code
    assert not MemberRestriction.objects.exists()


# --- lock, suspension, devices ------------------------------------------------------------------


def test_lock_ends_every_session_and_refuses_sign_in_with_what_to_do(member, analyst):
    tokens = session_start(member=member, channel="app", device_fingerprint="phone-1")
    member_lock_and_revoke(member=member, actor=analyst, reason="ATO", case_ref="FC-7")
    assert MemberSession.objects.get(pk=tokens.session_id).ended_at is not None
    member.refresh_from_db()
    assert member.status == Member.Status.LOCKED
    with pytest.raises(Exception) as caught:
        session_start(member=member, channel="app", device_fingerprint="phone-1")
    assert caught.value.code == "account_restricted"
    assert caught.value.facts["case_reference"] == "FC-7"
    assert caught.value.facts["next_step"] == "in_store_id"


def test_locked_members_token_answers_403_account_restricted(client, member, analyst):
    tokens = session_start(member=member, channel="app", device_fingerprint="phone-1")
    Member.objects.filter(pk=member.pk).update(status=Member.Status.LOCKED)
    MemberRestriction.objects.create(
        member=member, kind=KIND.LOCK, reason="r", case_ref="FC-9", starts_at=timezone.now()
    )
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "account_restricted"
    assert error["detail"]["case_reference"] == "FC-9" and error["detail"]["restriction"] == "locked"
    assert "reason" not in error["detail"]


def test_a_blocked_device_cannot_sign_in_and_its_sessions_end(member, analyst):
    tokens = session_start(member=member, channel="app", device_fingerprint="phone-1")
    device = MemberDevice.objects.get(member=member)
    member_device_block(device=device, actor=analyst, reason="attacker's device")
    assert MemberSession.objects.get(pk=tokens.session_id).ended_at is not None
    with pytest.raises(Exception) as caught:
        session_start(member=member, channel="app", device_fingerprint="phone-1")
    assert caught.value.code == "device_blocked"
    assert session_start(member=member, channel="app", device_fingerprint="phone-2").session_id


def test_suspension_stops_earning_and_spending(funded, admin, till_actor):
    member_suspend(member=funded, actor=admin, reason="confirmed fraud")
    assert refused(ops.points_redeem(member=funded, points=1, actor=till_actor, idempotency_key="r")) == (
        403,
        "member_not_active",
    )
    earned = ops.points_earn(member=funded, points=10, receipt_ref="S1", actor=till_actor, idempotency_key="e")
    assert (earned.status_code, earned.error_code) == (403, "member_not_active")
