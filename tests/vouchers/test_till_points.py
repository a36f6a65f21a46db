"""Points redemption at the till (``vouchers.services.till_points``): the role limits and the
manager override, staff self-redemption during a shift, the member's authorisation (SMS
code read to the cashier, or the app, with a step-up above 5,000), capture only once
authorised and only once under a race, the receipt, void, the audit sample and the
cashier frequency alert.
"""

from __future__ import annotations

from functools import partial

import pytest
from django.utils import timezone

from fraud.models import FraudAlert
from loyalty.kernel.statuses import refusal_status
from loyalty.ledger.models import LedgerOperation
from loyalty.notifications import LocmemSmsBackend
from members.models import MemberSecurityEvent, MemberSession, OtpChallenge
from members.services.membership import member_create
from members.services.otp import otp_request, otp_verify
from members.services.sessions import session_start
from staffauth.models import SecurityEvent
from tests.concurrency import race
from tests.db import rewriting_history
from tests.vouchers.till_helpers import (
    PHONE,
    authorise_by_app,
    available,
    capture,
    credentials,
    give,
    hold,
    open_shift,
    refused,
    sms_code,
)
from vouchers.models import RedemptionAudit, TillRedemption
from vouchers.services.shifts import shift_end
from vouchers.services.till_controls import TillPointsRefused
from vouchers.services.till_points import (
    authorisation_action,
    member_redemption_confirm,
    member_redemptions_pending,
    till_redemption_authorise_code,
    till_redemption_capture,
    till_redemption_hold,
    till_redemption_void,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings", "sms_outbox")]

OTHER_PHONE = "+60135550288"


# --- role limits and the override ----------------------------------------------------------------


def test_a_cashier_holds_499_points_without_an_override(on_shift, shopper, django_capture_on_commit_callbacks):
    outcome = hold(on_shift, shopper, 499, commit=django_capture_on_commit_callbacks)

    assert outcome.status_code == 201 and not outcome.replayed
    record = TillRedemption.objects.get()
    assert (record.points, record.staff, record.shift, record.member) == (499, on_shift.staff, on_shift, shopper)
    assert record.override_by is None and record.authorised_at is None
    assert str(record.hold_operation_id) == outcome.body["hold_id"]
    assert available(shopper) == 10_000 - 499


def test_500_points_need_an_override_from_a_cashier(on_shift, shopper):
    refusal = refused(hold, on_shift, shopper, 500)

    assert (refusal.code, refusal_status(refusal)) == ("limit_exceeded", 403)
    assert refusal.detail == {"points": 500, "limit": 500, "override_required": True}
    assert not LedgerOperation.objects.filter(kind="hold").exists() and not TillRedemption.objects.exists()


def test_a_store_manager_holds_1999_but_not_2000(manager, till, shopper):
    shift = open_shift(manager, till)
    assert hold(shift, shopper, 1999, "m-1").ok
    refusal = refused(hold, shift, shopper, 2000, "m-2")
    assert (refusal.code, refusal.detail["limit"]) == ("limit_exceeded", 2000)


def test_a_manager_of_the_store_overrides_the_cashier_limit(on_shift, manager, shopper):
    outcome = hold(on_shift, shopper, 500, override=credentials(manager))

    assert outcome.ok
    record = TillRedemption.objects.get()
    assert record.override_by == manager
    assert SecurityEvent.objects.filter(kind="override_granted", actor=manager).exists()


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        ("self", "override_same_person"),
        ("cashier", "override_not_permitted"),
        ("other_store_manager", "override_not_permitted"),
        ("wrong_totp", "override_credentials_invalid"),
        ("wrong_password", "override_credentials_invalid"),
    ],
)
def test_an_override_that_does_not_qualify_is_refused(
    who, reason, manager, make_staff, store_a, store_b, till, shopper
):
    # The manager works the till: the same person cannot approve their own 2,000 points.
    shift = open_shift(manager, till)
    approver = {
        "self": manager,
        "cashier": make_staff("cashier2", "cashier", stores=[store_a]),
        "other_store_manager": make_staff("manager_b", "store_manager", stores=[store_b]),
        "wrong_totp": make_staff("manager2", "store_manager", stores=[store_a]),
        "wrong_password": make_staff("manager3", "store_manager", stores=[store_a]),
    }[who]
    given = credentials(approver)
    if who == "wrong_totp":
        given["otp"] = f"{(int(given['otp']) + 1) % 1_000_000:06d}"
    if who == "wrong_password":
        given["password"] = "Not-the-password-1!"

    refusal = refused(hold, shift, shopper, 2000, override=given)

    assert (refusal.code, refusal_status(refusal), refusal.detail) == ("override_invalid", 403, {"reason": reason})
    assert not TillRedemption.objects.exists() and not LedgerOperation.objects.filter(kind="hold").exists()


def test_a_programme_administrator_overrides_a_manager_at_2000(manager, make_staff, till, shopper):
    admin = make_staff("admin1", "program_admin")
    shift = open_shift(manager, till)
    assert hold(shift, shopper, 2000, override=credentials(admin)).ok
    assert TillRedemption.objects.get().override_by == admin


def test_an_override_is_not_checked_within_the_limit(on_shift, manager, shopper):
    """Its code is not spent and nobody is recorded as approving what needed no approval."""
    assert hold(on_shift, shopper, 100, override=credentials(manager, password="wrong-password-123")).ok
    assert TillRedemption.objects.get().override_by is None


# --- shift and staff controls ------------------------------------------------------------------


def test_no_shift_no_redemption(on_shift, till_for, shopper):
    with pytest.raises(TillPointsRefused) as caught:
        till_redemption_hold(till=on_shift.till, shift=None, member=shopper, points=100, idempotency_key="k")
    assert (caught.value.code, refusal_status(caught.value)) == ("no_shift", 403)
    other_till = till_for()
    with pytest.raises(TillPointsRefused) as caught:
        till_redemption_hold(till=other_till, shift=on_shift, member=shopper, points=100, idempotency_key="k")
    assert caught.value.code == "no_shift"
    shift_end(shift=on_shift)
    assert refused(hold, on_shift, shopper, 100).code == "no_shift"
    assert not LedgerOperation.objects.filter(kind="hold").exists()


def test_staff_may_not_redeem_to_their_own_account_during_their_shift(cashier, on_shift, shopper):
    cashier.member_account = shopper
    cashier.save(update_fields=["member_account"])

    refusal = refused(hold, on_shift, shopper, 100)

    assert (refusal.code, refusal_status(refusal)) == ("self_redemption_refused", 403)
    assert not TillRedemption.objects.exists()


def test_a_colleague_on_shift_may_not_redeem_to_a_staff_account_until_its_owner_clocks_out(
    cashier, make_staff, store_a, till_for, shopper
):
    """Policy: the owner's own shift makes it a conflict of interest; once they have
    clocked out, a colleague redeems their points like any member's (authorised by the
    member's own code or app)."""
    cashier.member_account = shopper
    cashier.save(update_fields=["member_account"])
    own_shift = open_shift(cashier, till_for())
    colleague = open_shift(make_staff("cashier2", "cashier", stores=[store_a]), till_for())

    assert refused(hold, colleague, shopper, 100).code == "member_staff_on_shift"

    shift_end(shift=own_shift)
    assert hold(colleague, shopper, 100).ok


def test_an_inactive_member_is_refused_before_the_ledger(on_shift, shopper):
    shopper.status = "suspended"
    shopper.save(update_fields=["status"])
    assert refused(hold, on_shift, shopper, 100).code == "member_not_active"
    assert not LedgerOperation.objects.filter(kind="hold").exists()


def test_the_ledger_checks_the_real_time_balance(on_shift, shopper):
    outcome = till_redemption_hold(
        till=on_shift.till, shift=on_shift, member=shopper, points=499, idempotency_key="k-1"
    )
    assert outcome.ok
    poor = member_create(home_store=on_shift.store, name="Poor", phone=OTHER_PHONE)
    give(poor, on_shift.till, 100)
    outcome = hold(on_shift, poor, 101, "k-2")
    assert (outcome.status_code, outcome.error_code) == (422, "insufficient_points")
    assert not TillRedemption.objects.filter(member=poor).exists()


# --- the member's authorisation --------------------------------------------------------------------


def test_the_hold_texts_the_member_a_code_bound_to_the_hold(on_shift, shopper, django_capture_on_commit_callbacks):
    outcome = hold(on_shift, shopper, 300, commit=django_capture_on_commit_callbacks)

    offer = outcome.body["authorisation"]
    assert offer["required"] is True and offer["methods"] == ["sms_code", "app"] and offer["sms"] == "sent"
    challenge = OtpChallenge.objects.get(pk=offer["challenge_id"])
    assert challenge.purpose == "step_up" and challenge.action == authorisation_action(outcome.body["hold_id"])
    assert challenge.member == shopper
    [sms] = LocmemSmsBackend.outbox
    assert sms["to"] == PHONE
    assert TillRedemption.objects.get().challenge_id == challenge.pk


def test_a_member_without_a_phone_can_only_confirm_in_the_app(on_shift, store_a):
    member = member_create(home_store=store_a, name="No Phone")
    give(member, on_shift.till, 1000)
    offer = hold(on_shift, member, 100).body["authorisation"]
    assert offer == {"required": True, "methods": ["app"], "challenge_id": None, "expires_at": None, "sms": "no_phone"}


def test_when_the_sms_limit_is_reached_the_hold_stands_and_offers_the_app(
    on_shift, shopper, settings, django_capture_on_commit_callbacks
):
    settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "otp_codes_per_hour": 1}
    first = hold(on_shift, shopper, 100, "k-1", commit=django_capture_on_commit_callbacks)
    second = hold(on_shift, shopper, 100, "k-2", commit=django_capture_on_commit_callbacks)
    assert first.body["authorisation"]["sms"] == "sent"
    assert second.ok and second.body["authorisation"]["methods"] == ["app"]
    assert second.body["authorisation"]["sms"] == "otp_rate_limited"
    assert len(LocmemSmsBackend.outbox) == 1


def test_capture_is_refused_until_the_member_authorises(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]

    refusal = refused(capture, on_shift, hold_id)

    assert (refusal.code, refusal_status(refusal)) == ("member_authorisation_required", 409)
    assert not LedgerOperation.objects.filter(kind="capture").exists()
    assert available(shopper) == 10_000 - 300


def test_the_code_read_to_the_cashier_authorises_the_hold(on_shift, shopper, django_capture_on_commit_callbacks):
    body = hold(on_shift, shopper, 300, commit=django_capture_on_commit_callbacks).body

    record = till_redemption_authorise_code(
        till=on_shift.till, hold_id=body["hold_id"], challenge_id=body["authorisation"]["challenge_id"], code=sms_code()
    )

    assert record.authorised_via == "sms_code" and record.authorised_at is not None
    challenge = OtpChallenge.objects.get(pk=body["authorisation"]["challenge_id"])
    assert challenge.verified_at is not None and challenge.consumed_at is not None  # spent on the spot
    assert MemberSecurityEvent.objects.filter(member=shopper, kind="till_redemption_authorised").exists()
    outcome = capture(on_shift, body["hold_id"])
    assert outcome.status_code == 201 and outcome.body["receipt"]["authorised_via"] == "sms_code"


def code_refused(till, hold_id, challenge_id, code):
    """The refusal of the member's code read to the cashier (it must be refused)."""
    return refused(till_redemption_authorise_code, till=till, hold_id=hold_id, challenge_id=challenge_id, code=code)


def test_a_wrong_code_is_refused_and_counted(on_shift, shopper, django_capture_on_commit_callbacks):
    body = hold(on_shift, shopper, 300, commit=django_capture_on_commit_callbacks).body
    wrong = f"{(int(sms_code()) + 1) % 1_000_000:06d}"

    refusal = code_refused(on_shift.till, body["hold_id"], body["authorisation"]["challenge_id"], wrong)

    assert (refusal.code, refusal_status(refusal)) == ("otp_wrong_code", 422)
    assert OtpChallenge.objects.get(pk=body["authorisation"]["challenge_id"]).guesses == 1
    assert TillRedemption.objects.get().authorised_at is None


def test_the_code_of_one_hold_does_not_authorise_another(on_shift, shopper, django_capture_on_commit_callbacks):
    first = hold(on_shift, shopper, 100, "k-1", commit=django_capture_on_commit_callbacks).body
    first_code = sms_code()
    second = hold(on_shift, shopper, 200, "k-2", commit=django_capture_on_commit_callbacks).body

    # The first hold's challenge named for the second hold: another challenge.
    refusal = code_refused(on_shift.till, second["hold_id"], first["authorisation"]["challenge_id"], first_code)
    assert refusal.code == "otp_invalid"
    # A code sent for another action (a step-up of the member's own) is no good either.
    with django_capture_on_commit_callbacks(execute=True):
        other = otp_request(phone=PHONE, purpose="step_up", action="redeem")
    refusal = code_refused(on_shift.till, second["hold_id"], other.challenge_id, sms_code())
    assert refusal.code == "otp_invalid"
    assert not TillRedemption.objects.filter(authorised_at__isnull=False).exists()


def test_a_hold_of_another_store_cannot_be_authorised_there(
    on_shift, shopper, store_b, till_for, django_capture_on_commit_callbacks
):
    body = hold(on_shift, shopper, 100, commit=django_capture_on_commit_callbacks).body
    refusal = code_refused(till_for(store_b), body["hold_id"], body["authorisation"]["challenge_id"], sms_code())
    assert (refusal.code, refusal_status(refusal)) == ("hold_not_found", 404)


def test_the_member_confirms_in_the_app(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    assert [str(r.hold_operation_id) for r in member_redemptions_pending(member=shopper)] == [hold_id]

    record = authorise_by_app(shopper, hold_id)

    assert record.authorised_via == "app"
    assert not member_redemptions_pending(member=shopper).exists()
    assert capture(on_shift, hold_id).status_code == 201


def test_another_member_cannot_confirm_a_hold(on_shift, shopper, store_a):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    other = member_create(home_store=store_a, name="Other", phone=OTHER_PHONE)
    assert refused(authorise_by_app, other, hold_id).code == "not_found"
    assert TillRedemption.objects.get().authorised_at is None


def test_a_web_remember_me_session_may_not_confirm(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    tokens = session_start(member=shopper, channel="web", device_fingerprint="fp-web", remember_me=True)
    session = MemberSession.objects.get(pk=tokens.session_id)
    refusal = refused(member_redemption_confirm, member=shopper, session=session, hold_id=hold_id)
    assert (refusal.code, refusal_status(refusal)) == ("redeem_not_allowed", 403)


def test_above_5000_points_the_app_confirmation_needs_a_step_up(
    manager, make_staff, till, shopper, django_capture_on_commit_callbacks
):
    shift = open_shift(manager, till)
    admin = make_staff("admin1", "program_admin")
    at = hold(shift, shopper, 1999, "k-at").body["hold_id"]
    above = hold(shift, shopper, 5001, "k-above", override=credentials(admin)).body["hold_id"]
    assert authorise_by_app(shopper, at).authorised_via == "app"  # at or below 5,000: no step-up

    refusal = refused(authorise_by_app, shopper, above)
    assert (refusal.code, refusal.detail) == ("step_up_required", {"actions": ["redeem"]})
    assert TillRedemption.objects.get(hold_operation_id=above).authorised_at is None

    with django_capture_on_commit_callbacks(execute=True):
        challenge = otp_request(phone=PHONE, purpose="step_up", action="redeem")
    otp_verify(challenge_id=challenge.challenge_id, phone=PHONE, code=sms_code(), purpose="step_up", action="redeem")
    assert authorise_by_app(shopper, above).authorised_via == "app"
    assert OtpChallenge.objects.get(pk=challenge.challenge_id).consumed_at is not None


def test_a_lapsed_hold_cannot_be_authorised(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    with rewriting_history():
        LedgerOperation.objects.filter(pk=hold_id).update(hold_expires_at=timezone.now())
    assert refused(authorise_by_app, shopper, hold_id).code == "hold_not_open"


# --- capture, receipt, void ------------------------------------------------------------------------


def test_the_receipt_shows_the_redemption_clearly(on_shift, manager, shopper, till):
    hold_id = hold(on_shift, shopper, 600, override=credentials(manager)).body["hold_id"]
    authorise_by_app(shopper, hold_id)

    outcome = capture(on_shift, hold_id, points=550)

    body = outcome.body
    assert (body["points"], body["released"], body["hold_id"]) == (550, 50, hold_id)
    assert body["balance"] == {"available": 10_000 - 550, "held": 0, "pending": 0}
    receipt = body["receipt"]
    assert receipt == {
        "redemption": "points",
        "hold_id": hold_id,
        "capture_id": body["operation_id"],
        "points_redeemed": 550,
        "balance_remaining": 10_000 - 550,
        "balance_held": 0,
        "balance_pending": 0,
        "loyalty_number": f"99{'•' * 10}{shopper.loyalty_number[-4:]}",
        "store": till.store.code,
        "till": till.code,
        "redeemed_at": receipt["redeemed_at"],
        "authorised_via": "app",
        "authorised_at": receipt["authorised_at"],
        "cashier_staff_id": on_shift.staff_id,
        "override": True,
        "override_by_staff_id": manager.pk,
    }
    assert shopper.loyalty_number not in str(body)
    record = TillRedemption.objects.get()
    assert record.receipt == receipt and record.captured_points == 550 and record.capture_shift == on_shift


def test_a_capture_retried_under_its_key_answers_the_same_receipt(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    authorise_by_app(shopper, hold_id)
    first = capture(on_shift, hold_id, "same")
    again = capture(on_shift, hold_id, "same")
    assert again.replayed and again.body == first.body
    assert LedgerOperation.objects.filter(kind="capture").count() == 1


def test_capture_needs_a_shift_and_never_the_members_own(on_shift, shopper, cashier, make_staff, store_a, till_for):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    authorise_by_app(shopper, hold_id)
    assert refused(
        till_redemption_capture, till=on_shift.till, shift=None, hold_id=hold_id, idempotency_key="x"
    ).code == ("no_shift")
    # A colleague at another till of the store, who is this member.
    colleague = make_staff("cashier2", "cashier", stores=[store_a])
    colleague.member_account = shopper
    colleague.save(update_fields=["member_account"])
    lane_2 = open_shift(colleague, till_for())
    assert refused(capture, lane_2, hold_id).code == "self_redemption_refused"
    assert not LedgerOperation.objects.filter(kind="capture").exists()


def test_a_void_releases_the_points_and_marks_the_record(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]

    outcome = till_redemption_void(till=on_shift.till, hold_id=hold_id, idempotency_key="v-1")

    assert outcome.status_code == 201 and outcome.body["released"] == 300
    assert TillRedemption.objects.get().voided_at is not None
    assert available(shopper) == 10_000
    assert refused(authorise_by_app, shopper, hold_id).code == "hold_not_open"


def test_a_hold_retried_under_its_key_answers_the_same_without_a_second_code(
    on_shift, manager, shopper, django_capture_on_commit_callbacks
):
    given = credentials(manager)
    first = hold(on_shift, shopper, 700, "same", override=given, commit=django_capture_on_commit_callbacks)
    # The same TOTP code again would be refused as a replay: the retry never checks it.
    again = hold(on_shift, shopper, 700, "same", override=given, commit=django_capture_on_commit_callbacks)
    assert again.replayed and again.body == first.body
    assert TillRedemption.objects.count() == 1 and len(LocmemSmsBackend.outbox) == 1
    other = hold(on_shift, shopper, 701, "same", override=given)
    assert (other.status_code, other.error_code) == (422, "idempotency_key_reused")


def test_the_audit_sample_queues_a_captured_redemption(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    authorise_by_app(shopper, hold_id)
    outcome = capture(on_shift, hold_id, sampler=lambda: True)
    audit = RedemptionAudit.objects.get()
    assert str(audit.ledger_operation_id) == outcome.body["operation_id"]
    assert (audit.store, audit.cashier, audit.points, audit.outcome) == (on_shift.store, on_shift.staff, 300, "pending")


def test_not_sampled_no_audit(on_shift, shopper):
    hold_id = hold(on_shift, shopper, 300).body["hold_id"]
    authorise_by_app(shopper, hold_id)
    capture(on_shift, hold_id, sampler=lambda: False)
    assert not RedemptionAudit.objects.exists()


def test_a_cashier_redeeming_points_too_often_raises_one_alert(settings, on_shift, shopper):
    settings.VOUCHERS = {**settings.VOUCHERS, "cashier_redemptions_alert": 2, "cashier_redemptions_window_minutes": 60}
    for n in range(4):
        hold_id = hold(on_shift, shopper, 100, f"h-{n}").body["hold_id"]
        authorise_by_app(shopper, hold_id)
        capture(on_shift, hold_id, f"c-{n}")
        assert FraudAlert.objects.count() == (0 if n < 2 else 1)
    alert = FraudAlert.objects.get()
    assert (alert.kind, alert.staff, alert.store) == ("cashier_redemption_frequency", on_shift.staff, on_shift.store)
    assert alert.detail["redemptions"] == 3  # raised by the third, once for the window


# --- concurrency ---------------------------------------------------------------------------------


def authorised_hold(cashier, till, store_a):
    """A member with 1,000 points, a cashier on shift and a hold of 300 the member authorised."""
    member = member_create(home_store=store_a, name="Racer", phone=PHONE)
    give(member, till, 1000)
    shift = open_shift(cashier, till)
    hold_id = hold(shift, member, 300).body["hold_id"]
    authorise_by_app(member, hold_id)
    return member, shift, hold_id


@pytest.mark.django_db(transaction=True)
def test_two_captures_of_one_hold_at_once_capture_once(till_settings, cashier, till, store_a):
    member, shift, hold_id = authorised_hold(cashier, till, store_a)

    results = race(partial(capture, shift, hold_id, "c-a"), partial(capture, shift, hold_id, "c-b"))

    statuses = sorted((r.status_code, r.error_code) for r in results)
    assert statuses == [(201, None), (409, "hold_not_open")]
    assert LedgerOperation.objects.filter(kind="capture").count() == 1
    assert available(member) == 700
    record = TillRedemption.objects.get()
    assert record.captured_points == 300 and record.receipt["points_redeemed"] == 300


@pytest.mark.django_db(transaction=True)
def test_the_same_capture_sent_twice_at_once_captures_once(till_settings, cashier, till, store_a):
    member, shift, hold_id = authorised_hold(cashier, till, store_a)

    results = race(*(partial(capture, shift, hold_id, "one-key") for _ in range(2)))

    assert all(r.status_code == 201 for r in results) and sum(r.replayed for r in results) == 1
    assert results[0].body == results[1].body
    assert LedgerOperation.objects.filter(kind="capture").count() == 1 and available(member) == 700


def test_the_till_code_sms_says_to_give_it_to_the_cashier_and_a_sign_in_code_says_never_share(
    db, store_a, sms_outbox, django_capture_on_commit_callbacks
):
    from members.services.membership import member_create
    from members.services.otp import otp_request

    member_create(home_store=store_a, phone="+60 12-555 0909")
    with django_capture_on_commit_callbacks(execute=True):
        otp_request(
            phone="+60 12-555 0909", purpose="step_up", action="pos_redeem:00000000-0000-0000-0000-000000000001"
        )
        otp_request(phone="+60 12-555 0909", purpose="login")
    till_text, login_text = [m["text"] for m in sms_outbox[-2:]]
    assert "Give it to the cashier only if you are at the till now" in till_text and "Never share" not in till_text
    assert "Never share it with anyone" in login_text and "cashier" not in login_text
