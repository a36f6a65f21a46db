"""Voucher validation and redemption at the till (``vouchers.services.redemption``): every check
with its own code, the single-use race, idempotent receipts, the scan log, the staff
controls (limits, override, self-redemption), the fraud alerts they raise and the audit
sample. Closing alerts (``fraud.services``, ``fraud.admin``): tests/fraud/.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compliance.chain import verify_stream
from fraud.models import FraudAlert
from loyalty.kernel.statuses import refusal_status
from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger.operations import Actor, points_earn
from members.models import Member
from tests.concurrency import race
from tests.conftest import PASSWORD, current_totp
from tests.vouchers.till_helpers import open_shift, presented, redeem
from vouchers.admin import till as admin_till  # noqa: F401  (registers the till's admin pages; vouchers.admin imports it too)
from vouchers.models import RedemptionAudit, StaffShift, Voucher, VoucherRedemption, VoucherScan
from vouchers.services.audit import ReviewRefused, redemption_audit_review
from vouchers.services.codes import ALPHABET, CodeInvalid, code_generate, code_normalise
from vouchers.services.limits import audit_sample
from vouchers.services.redemption import RedemptionRefused, voucher_redeem, voucher_validate
from vouchers.services.shifts import Override, ShiftRefused, override_verify, shift_end
from vouchers.services.tokens import SIGNING_CONTEXT, qr_token_issue

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings")]

# A QR step boundary (the top of an hour) an hour or two before now: shifts opened just
# before it are still open (under 12 hours) for tests at T0 and for tests at "now".
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def shift(cashier, till):
    return open_shift(cashier, till, started_at=T0 - timedelta(hours=1))


def refused(call, *args, **kwargs) -> RedemptionRefused:
    with pytest.raises(RedemptionRefused) as caught:
        call(*args, **kwargs)
    return caught.value


def last_scan() -> VoucherScan:
    return VoucherScan.objects.order_by("-id").first()


def staff_request():
    return RequestFactory().post("/api/v1/pos/vouchers/redeem", REMOTE_ADDR="10.20.30.40")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- success ---------------------------------------------------------------------------------------


def test_a_redemption_consumes_the_voucher_once_and_answers_the_receipt(shift, voucher, member, till):
    points_earn(
        member=member, points=1200, receipt_ref="R-1", actor=Actor(till=till), idempotency_key="earn-1"
    )  # fmt: skip
    now = timezone.now()

    result = redeem(shift, voucher, "key-1", now=now)

    voucher.refresh_from_db()
    assert (voucher.status, voucher.redeemed_at) == ("redeemed", now)
    redemption = VoucherRedemption.objects.get()
    assert (redemption.voucher, redemption.till, redemption.staff, redemption.shift) == (
        voucher, till, shift.staff, shift
    )  # fmt: skip
    receipt = result.receipt
    assert not result.replayed and receipt == redemption.receipt
    assert receipt["voucher"]["code"] == f"••••-••••-••••-{voucher.code[-4:]}"
    assert voucher.code not in str(receipt)
    assert receipt["voucher"]["reward"] == {
        "name": voucher.reward.name, "kind": "fixed_value", "value_minor": 500, "percent": None, "item": "",
        "points_price": 300,
    }  # fmt: skip
    number = member.loyalty_number
    assert receipt["member"]["loyalty_number"] == f"{number[:2]}{'•' * 10}{number[-4:]}"
    assert receipt["balance"] == {"available": 1200, "held": 0, "pending": 0}
    assert (receipt["store"], receipt["till"], receipt["override"]) == (till.store.code, till.code, False)
    assert receipt["redeemed_at"] == iso_utc(now)
    scan = last_scan()
    assert (scan.voucher, scan.till, scan.store, scan.staff, scan.action, scan.result) == (
        voucher, till, till.store, shift.staff, "redeem", "ok"
    )  # fmt: skip
    # the redemption is on the tamper-evident vouchers stream, receipt written after it or not
    assert verify_stream("vouchers").ok and verify_stream("vouchers").links == 1


def test_a_qr_token_redeems_during_its_time_step(shift, make_voucher):
    voucher = make_voucher(issued_at=T0 - timedelta(days=1))
    token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id, now=T0)
    result = voucher_redeem(
        till=shift.till, shift=shift, idempotency_key="qr", qr_token=token.token, now=T0 + timedelta(seconds=29)
    )
    assert result.redemption.voucher == voucher


def test_validate_checks_without_consuming_and_is_logged(shift, voucher):
    validation = voucher_validate(till=shift.till, shift=shift, **presented(voucher))

    assert validation.voucher == voucher
    assert validation.summary["code"].endswith(voucher.code[-4:]) and voucher.code not in str(validation.summary)
    voucher.refresh_from_db()
    assert voucher.status == "active" and not VoucherRedemption.objects.exists()
    assert (last_scan().action, last_scan().result, last_scan().voucher) == ("validate", "ok", voucher)


# --- the race ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_tills_redeeming_one_voucher_at_once_give_exactly_one_success(till_for, make_staff, store_a, voucher):
    tills = [till_for() for _ in range(20)]
    shifts = [
        open_shift(make_staff(f"racer{i}", "cashier", stores=[store_a], otp=False), t) for i, t in enumerate(tills)
    ]

    def attempt(i):
        try:
            voucher_redeem(
                till=tills[i],
                shift=shifts[i],
                idempotency_key=f"race-{i}",
                code=voucher.code,
                member_loyalty_number=voucher.member.loyalty_number,
            )
        except RedemptionRefused as refusal:
            return refusal.code
        return "ok"

    results = race(*(partial(attempt, i) for i in range(20)))

    assert results.count("ok") == 1
    assert results.count("voucher_already_redeemed") == 19
    voucher.refresh_from_db()
    assert voucher.status == "redeemed"
    redemption = VoucherRedemption.objects.get()
    assert redemption.till == tills[results.index("ok")]
    assert VoucherScan.objects.filter(voucher=voucher, action="redeem").count() == 20
    assert VoucherScan.objects.filter(result="ok").count() == 1
    assert VoucherScan.objects.filter(result="voucher_already_redeemed").count() == 19
    # The losers scanned a used voucher: one alert for the voucher and day.
    assert FraudAlert.objects.filter(kind="voucher_rescan").count() == 1


# --- each check, its own code ------------------------------------------------------------------


def test_no_shift_is_refused_and_still_logged(till, voucher):
    refusal = refused(voucher_redeem, till=till, shift=None, idempotency_key="k", **presented(voucher))
    assert (refusal.code, refusal_status(refusal)) == ("shift_required", 403)
    assert (last_scan().result, last_scan().staff, last_scan().till) == ("shift_required", None, till)


def test_a_shift_of_another_till_is_refused(shift, till_for, voucher):
    other = till_for()
    refusal = refused(voucher_redeem, till=other, shift=shift, idempotency_key="k", **presented(voucher))
    assert refusal.code == "shift_required"


def test_an_ended_shift_is_refused(shift, voucher):
    shift_end(shift=shift)
    assert refused(redeem, shift, voucher).code == "shift_required"


def test_a_shift_ended_elsewhere_is_refused_even_from_a_stale_object(shift, voucher):
    StaffShift.objects.filter(pk=shift.pk).update(ended_at=timezone.now(), token_hash=None)
    assert shift.ended_at is None  # the caller's object still says open
    assert refused(redeem, shift, voucher).code == "shift_required"


def test_a_shift_past_its_maximum_hours_is_refused(shift, voucher):
    late = shift.started_at + timedelta(hours=12)
    assert refused(redeem, shift, voucher, now=late).code == "shift_required"


@pytest.mark.parametrize(
    "given",
    [{}, {"code": "X", "qr_token": "Y", "member_loyalty_number": "9"}],
    ids=["neither", "both"],
)
def test_exactly_one_of_code_and_token(shift, given):
    refusal = refused(voucher_validate, till=shift.till, shift=shift, **given)
    assert (refusal.code, refusal_status(refusal)) == ("voucher_input_invalid", 400)


def test_a_typed_code_needs_the_member_identified(shift, voucher):
    refusal = refused(voucher_validate, till=shift.till, shift=shift, code=voucher.code)
    assert (refusal.code, refusal_status(refusal)) == ("member_identification_required", 400)


def test_a_qr_token_replayed_after_its_time_step_fails(shift, make_voucher):
    voucher = make_voucher(issued_at=T0 - timedelta(days=1))
    token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id, now=T0).token

    refusal = refused(
        voucher_redeem, till=shift.till, shift=shift, idempotency_key="late", qr_token=token, now=T0 + timedelta(seconds=30)
    )  # fmt: skip

    assert (refusal.code, refusal_status(refusal)) == ("qr_expired", 422)
    assert str(refusal) and token not in str(refusal)
    assert last_scan().result == "qr_expired" and last_scan().voucher is None
    voucher.refresh_from_db()
    assert voucher.status == "active"


def test_a_token_from_a_future_step_is_not_yet_valid(shift, make_voucher):
    voucher = make_voucher(issued_at=T0 - timedelta(days=1))
    token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id, now=T0 + timedelta(seconds=30))
    refusal = refused(voucher_validate, till=shift.till, shift=shift, qr_token=token.token, now=T0)
    assert refusal.code == "qr_not_yet_valid"


def test_a_forged_signature_fails(shift, voucher):
    token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id).token
    signed, _ = token.rsplit(".", 1)
    forged = f"{signed}.{b64url(Ed25519PrivateKey.generate().sign(SIGNING_CONTEXT + signed.encode()))}"

    refusal = refused(voucher_redeem, till=shift.till, shift=shift, idempotency_key="f", qr_token=forged)

    assert (refusal.code, refusal_status(refusal)) == ("qr_signature_invalid", 422)
    voucher.refresh_from_db()
    assert voucher.status == "active"


def test_a_token_for_another_voucher_with_the_original_signature_fails(shift, voucher, make_voucher):
    other = make_voucher()
    token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id).token
    prefix, kid, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[1:17] = other.id.bytes
    tampered = f"{prefix}.{kid}.{b64url(bytes(raw))}.{signature}"
    refusal = refused(voucher_validate, till=shift.till, shift=shift, qr_token=tampered)
    assert refusal.code == "qr_signature_invalid"


def test_a_token_signed_with_an_unknown_key_fails(shift, voucher):
    token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id).token
    prefix, kid, payload, signature = token.split(".")
    unknown = "0" * 8 if kid != "0" * 8 else "1" * 8
    refusal = refused(
        voucher_validate, till=shift.till, shift=shift, qr_token=f"{prefix}.{unknown}.{payload}.{signature}"
    )
    assert refusal.code == "qr_unknown_key"


def test_a_tampered_code_fails_its_check_character_before_any_lookup(shift, voucher, django_assert_num_queries):
    last = voucher.code[-1]
    tampered = voucher.code[:-1] + next(symbol for symbol in ALPHABET if symbol != last)
    with django_assert_num_queries(0), pytest.raises(CodeInvalid):
        code_normalise(tampered)

    with CaptureQueriesContext(connection) as queries:
        refusal = refused(
            voucher_redeem, till=shift.till, shift=shift, idempotency_key="t", code=tampered,
            member_loyalty_number=voucher.member.loyalty_number,
        )  # fmt: skip

    assert (refusal.code, refusal_status(refusal)) == ("code_check_failed", 400)
    # The only query: the scan of the attempt. No voucher was looked up.
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith('INSERT INTO "vouchers_voucherscan"')
    assert last_scan().result == "code_check_failed"


def test_a_malformed_code_is_refused(shift, voucher):
    refusal = refused(
        voucher_validate, till=shift.till, shift=shift, code="0OIL", member_loyalty_number=voucher.member.loyalty_number
    )
    assert (refusal.code, refusal_status(refusal)) == ("code_malformed", 400)


def test_an_unknown_code_is_not_found(shift, member):
    refusal = refused(
        voucher_validate,
        till=shift.till,
        shift=shift,
        code=code_generate(),
        member_loyalty_number=member.loyalty_number,
    )
    assert (refusal.code, refusal_status(refusal)) == ("voucher_not_found", 404)


def test_another_members_voucher_answers_not_found_like_no_voucher(shift, make_voucher, store_a):
    someone = Member.objects.create(home_store=store_a)
    theirs = make_voucher(owner=someone)
    me = Member.objects.create(home_store=store_a)

    refusal = refused(
        voucher_redeem, till=shift.till, shift=shift, idempotency_key="x", code=theirs.code,
        member_loyalty_number=me.loyalty_number,
    )  # fmt: skip

    assert (refusal.code, refusal_status(refusal), refusal.detail) == ("voucher_not_found", 404, {})
    assert str(refusal) == "No such voucher for this member."  # the same words as for no voucher at all
    assert (last_scan().result, last_scan().voucher) == ("voucher_not_found", theirs)  # kept for the fraud team
    theirs.refresh_from_db()
    assert theirs.status == "active"


def test_a_token_naming_another_member_is_not_found(shift, voucher):
    token = qr_token_issue(voucher_id=voucher.id, member_id=uuid.uuid4()).token
    assert refused(voucher_validate, till=shift.till, shift=shift, qr_token=token).code == "voucher_not_found"


def test_a_token_with_another_presented_member_is_not_found(shift, voucher, store_a):
    token = qr_token_issue(voucher_id=voucher.id, member_id=voucher.member.member_id).token
    other = Member.objects.create(home_store=store_a)
    refusal = refused(
        voucher_validate, till=shift.till, shift=shift, qr_token=token, member_loyalty_number=other.loyalty_number
    )
    assert refusal.code == "voucher_not_found"


def test_a_used_voucher_is_refused_and_a_rescan_alerts_once_a_day(shift, till_for, make_staff, store_a, make_voucher):
    voucher = make_voucher(issued_at=T0 - timedelta(days=1))
    redeem(shift, voucher, "first", now=T0)
    other = open_shift(make_staff("cashier2", "cashier", stores=[store_a]), till_for(), started_at=T0)

    # Minutes after the top of an hour: the same day in any whole-hour time zone.
    refusal = refused(redeem, other, voucher, "second", now=T0 + timedelta(minutes=1))
    refused(redeem, other, voucher, "third", now=T0 + timedelta(minutes=2))
    refused(voucher_validate, till=other.till, shift=other, now=T0 + timedelta(minutes=3), **presented(voucher))

    assert (refusal.code, refusal_status(refusal)) == ("voucher_already_redeemed", 409)
    alert = FraudAlert.objects.get()
    assert (alert.kind, alert.severity, alert.member, alert.store) == (
        "voucher_rescan",
        "high",
        voucher.member,
        store_a,
    )
    assert alert.detail["voucher_id"] == str(voucher.pk) and alert.detail["redeemed_at_till_id"] == shift.till_id
    assert voucher.code not in str(alert.detail)
    assert VoucherRedemption.objects.count() == 1
    assert list(VoucherScan.objects.order_by("id").values_list("result", flat=True)) == [
        "ok", "voucher_already_redeemed", "voucher_already_redeemed", "voucher_already_redeemed"
    ]  # fmt: skip

    next_day = open_shift(
        make_staff("cashier3", "cashier", stores=[store_a]), till_for(), started_at=T0 + timedelta(days=1)
    )
    refused(redeem, next_day, voucher, "next-day", now=T0 + timedelta(days=1, minutes=1))
    assert FraudAlert.objects.filter(kind="voucher_rescan").count() == 2


def test_expiry_at_the_exact_instant(shift, make_voucher):
    voucher = make_voucher(issued_at=T0 - timedelta(days=30), days=30)  # expires at T0
    refusal = refused(voucher_validate, till=shift.till, shift=shift, now=T0, **presented(voucher))
    assert (refusal.code, refusal_status(refusal)) == ("voucher_expired", 410)
    refusal = refused(redeem, shift, voucher, "at", now=T0)
    assert refusal.code == "voucher_expired"

    result = redeem(shift, voucher, "before", now=T0 - timedelta(microseconds=1))
    assert result.redemption.redeemed_at == T0 - timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("status", "field", "code"),
    [("revoked", "revoked_at", "voucher_revoked"), ("reported", "reported_at", "voucher_reported")],
)
def test_revoked_and_reported_vouchers_are_refused(shift, voucher, status, field, code):
    Voucher.objects.filter(pk=voucher.pk).update(status=status, **{field: timezone.now()})
    refusal = refused(redeem, shift, voucher)
    assert (refusal.code, refusal_status(refusal)) == (code, 410)
    assert last_scan().result == code and last_scan().voucher == voucher


@pytest.mark.parametrize("status", ["suspended", "locked", "closed"])
def test_a_member_account_not_active_is_refused(shift, voucher, member, status):
    Member.objects.filter(pk=member.pk).update(status=status)
    refusal = refused(redeem, shift, voucher)
    assert (refusal.code, refusal_status(refusal)) == ("member_not_active", 403)
    voucher.refresh_from_db()
    assert voucher.status == "active"


# --- limits and the manager override -------------------------------------------------------------


def test_a_cashier_redeems_strictly_below_their_limit(shift, make_voucher):
    redeem(shift, make_voucher(points=499), "below")
    at_limit = make_voucher(points=500)

    refusal = refused(redeem, shift, at_limit, "at")

    assert (refusal.code, refusal_status(refusal), refusal.detail) == (
        "role_limit_exceeded",
        403,
        {"points": 500, "limit": 500},
    )
    assert refused(voucher_validate, till=shift.till, shift=shift, **presented(at_limit)).code == "role_limit_exceeded"


def override_refusal(*, store, username, otp_token, points, shift) -> str:
    """The code of ``override_verify``'s refusal (it must refuse)."""
    with pytest.raises(ShiftRefused) as caught:
        override_verify(
            store=store, username=username, password=PASSWORD, otp_token=otp_token, points=points, shift=shift,
            request=staff_request(),
        )  # fmt: skip
    return caught.value.code


def test_a_store_managers_override_lets_the_cashier_redeem(shift, manager, make_voucher, store_a):
    voucher = make_voucher(points=1500)
    override = override_verify(
        store=store_a, username="manager1", password=PASSWORD, otp_token=current_totp(manager), points=1500,
        shift=shift, request=staff_request(),
    )  # fmt: skip

    result = redeem(shift, voucher, override=override)

    assert result.receipt["override"] is True and result.receipt["override_by_staff_id"] == manager.pk
    assert VoucherRedemption.objects.get().staff == shift.staff


def test_an_override_with_a_wrong_code_is_refused(shift, manager, store_a):
    code = current_totp(manager)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refusal = override_refusal(store=store_a, username="manager1", otp_token=wrong, points=600, shift=shift)
    assert refusal == "override_credentials_invalid"


def test_an_override_by_the_cashier_themself_is_refused(shift, cashier, store_a, make_voucher):
    refusal = override_refusal(
        store=store_a, username="cashier1", otp_token=current_totp(cashier), points=600, shift=shift
    )
    assert refusal == "override_same_person"
    # And the redemption refuses an override of its own shift's staff user, however obtained.
    own = Override(staff=cashier, store_id=store_a.pk, points=600, limit=None, verified_at=timezone.now())
    assert refused(redeem, shift, make_voucher(points=600), override=own).code == "override_same_person"


def test_an_override_must_cover_the_points_and_the_store(shift, manager, make_voucher, store_a, store_b):
    small = Override(staff=manager, store_id=store_a.pk, points=600, limit=2000, verified_at=timezone.now())
    assert refused(redeem, shift, make_voucher(points=700), override=small).code == "override_insufficient"
    elsewhere = Override(staff=manager, store_id=store_b.pk, points=700, limit=2000, verified_at=timezone.now())
    assert refused(redeem, shift, make_voucher(points=700), "k-2", override=elsewhere).code == "override_store_mismatch"


def test_a_manager_of_another_store_cannot_override(shift, make_staff, store_b, store_a):
    other = make_staff("manager-b", "store_manager", stores=[store_b])
    refusal = override_refusal(
        store=store_a, username="manager-b", otp_token=current_totp(other), points=600, shift=shift
    )
    assert refusal == "override_not_permitted"


def test_an_override_above_the_managers_own_limit_needs_a_programme_administrator(shift, manager, make_staff, store_a):
    refusal = override_refusal(
        store=store_a, username="manager1", otp_token=current_totp(manager), points=2000, shift=shift
    )
    assert refusal == "override_limit_exceeded"

    admin_user = make_staff("admin1", "program_admin")
    override = override_verify(
        store=store_a, username="admin1", password=PASSWORD, otp_token=current_totp(admin_user), points=25_000,
        shift=shift, request=staff_request(),
    )  # fmt: skip
    assert override.limit is None and override.staff == admin_user


# --- staff and their own member accounts -----------------------------------------------------------


def test_staff_cannot_redeem_to_their_own_account_during_their_shift(
    shift, cashier, member, voucher, make_staff, store_a
):
    cashier.member_account = member
    cashier.save(update_fields=["member_account"])

    refusal = refused(redeem, shift, voucher)

    assert (refusal.code, refusal_status(refusal)) == ("own_member_account", 403)
    # Clocked out, the cashier shops as a member: a colleague on shift may redeem it.
    shift_end(shift=shift)
    colleague = open_shift(make_staff("cashier2", "cashier", stores=[store_a]), shift.till)
    assert redeem(colleague, voucher, "colleague").redemption.staff != cashier


def test_no_one_redeems_to_a_member_of_staff_who_is_on_shift(shift, member, voucher, make_staff, store_a, till_for):
    colleague = make_staff("cashier2", "cashier", stores=[store_a], member_account=member)
    their_shift = open_shift(colleague, till_for())

    refusal = refused(redeem, shift, voucher)

    assert (refusal.code, refusal_status(refusal)) == ("member_staff_on_shift", 403)
    shift_end(shift=their_shift)
    assert redeem(shift, voucher, "after").redemption.voucher == voucher


# --- idempotency ---------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_answers_the_same_receipt(
    shift, voucher, make_voucher, till_for, make_staff, store_a
):
    first = redeem(shift, voucher, "same")
    again = redeem(shift, voucher, "same", now=timezone.now() + timedelta(seconds=5))

    assert again.replayed and again.receipt == first.receipt and again.redemption == first.redemption
    assert VoucherRedemption.objects.count() == 1
    assert list(VoucherScan.objects.order_by("id").values_list("result", flat=True)) == ["ok", "replayed"]
    assert not FraudAlert.objects.exists()

    refusal = refused(redeem, shift, make_voucher(), "same")
    assert (refusal.code, refusal_status(refusal)) == ("idempotency_key_reused", 422)
    # Keys are per till: another till may use the same key.
    other = open_shift(make_staff("cashier2", "cashier", stores=[store_a]), till_for())
    assert not redeem(other, make_voucher(), "same").replayed


@pytest.mark.django_db(transaction=True)
def test_the_same_request_sent_eight_times_at_once_redeems_once(shift, voucher):
    results = race(*(partial(redeem, shift, voucher, "one-key") for _ in range(8)))
    assert sum(not result.replayed for result in results) == 1
    assert len({result.redemption.pk for result in results}) == 1
    assert VoucherRedemption.objects.count() == 1 and not FraudAlert.objects.exists()


# --- alerts and the audit sample -----------------------------------------------------------------


def test_a_cashier_redeeming_too_often_raises_one_alert_per_window(settings, shift, make_voucher):
    settings.VOUCHERS = {**settings.VOUCHERS, "cashier_redemptions_alert": 2, "cashier_redemptions_window_minutes": 60}
    start = T0 + timedelta(minutes=1)
    issued = T0 - timedelta(days=1)
    redeem(shift, make_voucher(issued_at=issued), "a", now=start)
    redeem(shift, make_voucher(issued_at=issued), "b", now=start + timedelta(minutes=1))
    assert not FraudAlert.objects.exists()  # 2 in the window: at the threshold, not above

    redeem(shift, make_voucher(issued_at=issued), "c", now=start + timedelta(minutes=2))
    redeem(shift, make_voucher(issued_at=issued), "d", now=start + timedelta(minutes=3))

    alert = FraudAlert.objects.get()
    assert (alert.kind, alert.staff, alert.store) == ("cashier_redemption_frequency", shift.staff, shift.store)
    assert alert.detail["redemptions"] == 3 and alert.detail["threshold"] == 2


def test_redemptions_outside_the_window_do_not_count(settings, shift, make_voucher):
    settings.VOUCHERS = {**settings.VOUCHERS, "cashier_redemptions_alert": 2, "cashier_redemptions_window_minutes": 60}
    issued = T0 - timedelta(days=1)
    redeem(shift, make_voucher(issued_at=issued), "a", now=T0)
    redeem(shift, make_voucher(issued_at=issued), "b", now=T0 + timedelta(minutes=1))
    redeem(shift, make_voucher(issued_at=issued), "c", now=T0 + timedelta(minutes=60))
    assert not FraudAlert.objects.exists()


def test_a_sampled_redemption_goes_to_the_audit_queue(shift, make_voucher):
    sampled = redeem(shift, make_voucher(points=300), "in", sampler=lambda: True)
    redeem(shift, make_voucher(), "out", sampler=lambda: False)

    audit = RedemptionAudit.objects.get()
    assert audit.voucher_redemption == sampled.redemption
    assert (audit.store, audit.cashier, audit.points, audit.outcome) == (shift.store, shift.staff, 300, "pending")


def test_the_default_sampler_follows_the_configured_share(settings):
    assert not any(audit_sample(0) for _ in range(200))
    assert all(audit_sample(100) for _ in range(200))
    settings.VOUCHERS = {**settings.VOUCHERS, "audit_sample_percent": 100.0}
    assert audit_sample()


# --- the audit queue and the alerts (services and admin) -----------------------------------------


def grant(user, *perms):
    from django.contrib.auth.models import Permission

    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return type(user).objects.get(pk=user.pk)  # a fresh object: no cached permissions


@pytest.fixture
def sampled(shift, make_voucher):
    """A redemption by the cashier, drawn into the audit queue."""
    redeem(shift, make_voucher(points=300), "sampled", sampler=lambda: True)
    return RedemptionAudit.objects.get()


def test_a_store_manager_confirms_a_sampled_redemption_once(sampled, manager):
    manager = grant(manager, "vouchers.review_redemptionaudit")

    audit = redemption_audit_review(audit_id=sampled.pk, reviewer=manager, outcome="confirmed", note="receipt seen")

    assert (audit.outcome, audit.reviewed_by, audit.note) == ("confirmed", manager, "receipt seen")
    assert not FraudAlert.objects.exists()
    with pytest.raises(ReviewRefused) as caught:
        redemption_audit_review(audit_id=sampled.pk, reviewer=manager, outcome="irregular")
    assert caught.value.code == "already_reviewed"


def test_an_irregular_redemption_alerts_the_fraud_team(sampled, manager, shift):
    manager = grant(manager, "vouchers.review_redemptionaudit")

    redemption_audit_review(audit_id=sampled.pk, reviewer=manager, outcome="irregular")

    alert = FraudAlert.objects.get()
    assert (alert.kind, alert.severity, alert.staff, alert.store) == (
        "redemption_irregular", "high", shift.staff, shift.store
    )  # fmt: skip
    assert alert.detail["audit_id"] == sampled.pk and alert.detail["reviewed_by"] == manager.pk


def test_the_queue_is_for_managers_of_the_store_and_never_ones_own(sampled, make_staff, store_b, cashier):
    elsewhere = grant(make_staff("manager-b", "store_manager", stores=[store_b]), "vouchers.review_redemptionaudit")
    own = grant(cashier, "vouchers.review_redemptionaudit")

    analyst = make_staff("analyst1", "fraud_analyst")  # sees every store, reviews none

    for reviewer, code in [(elsewhere, "not_found"), (own, "own_redemption"), (analyst, "permission_denied")]:
        with pytest.raises(ReviewRefused) as caught:
            redemption_audit_review(audit_id=sampled.pk, reviewer=reviewer, outcome="confirmed")
        assert caught.value.code == code
    sampled.refresh_from_db()
    assert sampled.outcome == "pending"


def test_a_store_manager_sees_their_stores_shifts_and_scans_only(
    sampled, manager, make_staff, store_b, till_for, voucher, verified_client
):
    theirs = open_shift(make_staff("cashier-b", "cashier", stores=[store_b]), till_for(store_b))
    voucher_validate(till=theirs.till, shift=theirs, **presented(voucher))  # a scan at store B
    manager = grant(manager, "vouchers.view_staffshift", "vouchers.view_voucherscan", "vouchers.view_redemptionaudit")
    client = verified_client(manager)

    shifts = client.get(reverse("admin:vouchers_staffshift_changelist"))
    scans = client.get(reverse("admin:vouchers_voucherscan_changelist"))

    assert shifts.status_code == 200 and scans.status_code == 200
    assert "cashier1" in shifts.content.decode() and "cashier-b" not in shifts.content.decode()
    assert store_b.name not in shifts.content.decode()  # not even in the store filter
    assert "cashier-b" not in scans.content.decode()
    for shift_row in StaffShift.objects.all():
        assert shift_row.token_hash not in shifts.content.decode()
    other_shift = reverse("admin:vouchers_staffshift_change", args=[theirs.pk])
    assert client.get(other_shift).status_code == 404


def test_the_admin_action_reviews_and_alerts(sampled, manager, verified_client):
    # Closing the alert in the admin: tests/fraud/test_admin.py.
    manager = grant(manager, "vouchers.view_redemptionaudit", "vouchers.review_redemptionaudit")
    client = verified_client(manager)
    response = client.post(
        reverse("admin:vouchers_redemptionaudit_changelist"),
        {"action": "mark_irregular_selected", "_selected_action": [sampled.pk]},
    )
    assert response.status_code == 302
    sampled.refresh_from_db()
    assert sampled.outcome == "irregular"
    FraudAlert.objects.get(kind="redemption_irregular")  # exactly one
