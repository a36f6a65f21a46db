"""Clocking in and out at the till (``vouchers.services.shifts``): credentials checked like the
admin's (axes, TOTP) without a session, who may work a till, one open shift per person,
the shift token, and the shift's time limit."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.utils import timezone

from loyalty.kernel.statuses import refusal_status
from staffauth.models import SecurityEvent
from tests.concurrency import race
from tests.conftest import PASSWORD, current_totp
from vouchers.models import StaffShift
from vouchers.services.shifts import (
    HEADER,
    ShiftRefused,
    shift_end,
    shift_for_request,
    shift_start,
    token_hash,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings")]

IP = "10.20.30.40"


def request_from(ip=IP):
    return RequestFactory().post("/api/v1/pos/shifts", REMOTE_ADDR=ip)


def clock_in(till, user, *, password=PASSWORD, otp=None, ip=IP, **kwargs):
    return shift_start(
        till=till,
        username=user.username if hasattr(user, "username") else user,
        password=password,
        otp_token=current_totp(user) if otp is None else otp,
        request=request_from(ip),
        **kwargs,
    )


def clock_in_refused(*args, **kwargs) -> ShiftRefused:
    with pytest.raises(ShiftRefused) as caught:
        clock_in(*args, **kwargs)
    return caught.value


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


class TillRequest:
    """What shift_for_request reads: the signed till (``auth``) and the headers."""

    def __init__(self, till, token=None):
        self.auth = till
        self.headers = {HEADER: token} if token is not None else {}


# --- clocking in -----------------------------------------------------------------------------------


def test_a_cashier_clocks_in_and_gets_a_token_stored_only_as_its_hash(till, cashier):
    started = clock_in(till, cashier)

    shift = StaffShift.objects.get()
    assert shift == started.shift
    assert (shift.staff, shift.store, shift.till, shift.ended_at) == (cashier, till.store, till, None)
    assert len(started.token) >= 40 and shift.token_hash == token_hash(started.token) != started.token
    event = SecurityEvent.objects.filter(kind="shift_started").get()
    assert (event.actor, event.detail["shift_id"], event.detail["till_id"]) == (cashier, shift.pk, till.pk)
    assert started.token not in str(event.detail)
    # No admin session and no "login succeeded": the till is not a login.
    assert not Session.objects.exists()
    assert not SecurityEvent.objects.filter(kind="login_succeeded").exists()


def test_the_username_is_matched_like_the_admin_login(till, cashier):
    assert clock_in(till, "  CASHIER1 ", otp=current_totp(cashier)).shift.staff == cashier


def test_a_wrong_password_is_refused_and_counted(till, cashier):
    refusal = clock_in_refused(till, cashier, password="wrong-Password-1!")

    assert (refusal.code, refusal_status(refusal)) == ("staff_credentials_invalid", 403)
    assert AccessAttempt.objects.get(username="cashier1").failures_since_start == 1
    assert SecurityEvent.objects.filter(kind="login_failed", username="cashier1").count() == 1
    refused_event = SecurityEvent.objects.get(kind="shift_refused")
    assert refused_event.detail == {"reason": "staff_credentials_invalid", "till_id": till.pk}
    assert not StaffShift.objects.exists()


def test_a_wrong_code_is_refused_and_counted(till, cashier):
    refusal = clock_in_refused(till, cashier, otp=wrong(current_totp(cashier)))

    assert refusal.code == "staff_credentials_invalid"
    assert AccessAttempt.objects.get(username="cashier1").failures_since_start == 1
    assert SecurityEvent.objects.filter(kind="otp_failed", actor=cashier).count() == 1
    assert not StaffShift.objects.exists()


@pytest.mark.parametrize("case", ["unknown", "inactive", "no_code", "no_device"])
def test_every_other_credential_problem_gets_the_same_answer(till, cashier, make_staff, store_a, case):
    user = cashier
    if case == "unknown":
        user = "nobody"
    elif case == "inactive":
        cashier.is_active = False
        cashier.save(update_fields=["is_active"])
    elif case == "no_device":
        user = make_staff("nodevice", "cashier", stores=[store_a], otp=False)
    otp = "" if case == "no_code" else ("123456" if case in ("unknown", "no_device") else None)

    refusal = clock_in_refused(till, user, otp=otp)

    assert refusal.code == "staff_credentials_invalid"
    assert not StaffShift.objects.exists()


def test_an_unknown_user_is_counted_like_a_wrong_password(till):
    refusal = clock_in_refused(till, "nobody", otp="123456")

    assert refusal.code == "staff_credentials_invalid"
    assert AccessAttempt.objects.get(username="nobody").failures_since_start == 1
    assert SecurityEvent.objects.filter(kind="login_failed", username="nobody").count() == 1


def test_a_right_code_just_after_a_wrong_one_clocks_in_and_only_the_wrong_one_counts(till, cashier):
    with time_machine.travel(timezone.now(), tick=False):  # django-otp's back-off would refuse it for 1 s
        assert clock_in_refused(till, cashier, otp=wrong(current_totp(cashier))).code == "staff_credentials_invalid"
        started = clock_in(till, cashier)
    assert started.shift.staff == cashier
    assert SecurityEvent.objects.filter(kind="otp_failed", actor=cashier).count() == 1
    assert not AccessAttempt.objects.filter(username="cashier1").exists()  # the right code reset the counter


def test_a_code_during_the_device_back_off_past_the_limit_is_not_counted(settings, till, cashier):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    start = timezone.now()
    TOTPDevice.objects.filter(user=cashier).update(
        throttling_failure_count=settings.AXES_FAILURE_LIMIT, throttling_failure_timestamp=start
    )
    with time_machine.travel(start + timedelta(seconds=5), tick=False):
        refusal = clock_in_refused(till, cashier)
    assert (refusal.code, refusal_status(refusal)) == ("staff_locked_out", 429)
    assert not SecurityEvent.objects.filter(kind="otp_failed").exists()
    assert not AccessAttempt.objects.filter(username="cashier1", failures_since_start__gt=0).exists()
    with time_machine.travel(start + timedelta(seconds=17), tick=False):
        assert clock_in(till, cashier).shift.staff == cashier


def test_the_lockout_of_the_admin_applies_at_the_till(settings, till, cashier):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        clock_in_refused(till, cashier, password="wrong-Password-1!")

    refusal = clock_in_refused(till, cashier)

    assert (refusal.code, refusal_status(refusal)) == ("staff_locked_out", 429)
    assert not StaffShift.objects.exists()
    # Another address is another counter (username and IP, as for the admin).
    assert clock_in(till, cashier, ip="10.99.99.99").shift.staff == cashier


def test_a_right_clock_in_resets_the_failure_count(till, cashier):
    clock_in_refused(till, cashier, password="wrong-Password-1!")
    clock_in(till, cashier)
    assert not AccessAttempt.objects.filter(username="cashier1").exists()


@pytest.mark.parametrize("role", ["fraud_analyst", "system_admin", None])
def test_only_till_roles_may_clock_in(till, make_staff, store_a, role):
    user = make_staff("someone", role, stores=[store_a])
    refusal = clock_in_refused(till, user)
    assert (refusal.code, refusal_status(refusal)) == ("staff_not_permitted", 403)
    assert SecurityEvent.objects.filter(kind="shift_refused", actor=user).exists()


def test_a_cashier_clocks_in_only_at_their_stores(till_for, make_staff, store_b):
    user = make_staff("elsewhere", "cashier", stores=[store_b])
    assert clock_in_refused(till_for(), user).code == "staff_not_at_store"


def test_managers_and_programme_administrators_may_clock_in(till, manager, make_staff):
    admin_user = make_staff("admin1", "program_admin")  # no store: works in every store
    assert clock_in(till, manager).shift.staff == manager
    assert clock_in(till, admin_user).shift.staff == admin_user


def test_clocking_in_again_ends_the_previous_shift(till, till_for, cashier):
    first = clock_in(till, cashier)
    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        second = clock_in(till_for(), cashier)

    first.shift.refresh_from_db()
    assert first.shift.ended_at is not None and first.shift.token_hash is None
    assert StaffShift.objects.filter(staff=cashier, ended_at__isnull=True).get() == second.shift
    assert shift_for_request(TillRequest(till, first.token)) is None


def test_a_code_is_accepted_once(till, till_for, cashier):
    code = current_totp(cashier)
    clock_in(till, cashier, otp=code)
    assert clock_in_refused(till_for(), cashier, otp=code).code == "staff_credentials_invalid"


# --- the shift token -------------------------------------------------------------------------------


def test_the_token_names_the_shift_at_its_own_till_only(till, till_for, cashier):
    started = clock_in(till, cashier)

    assert shift_for_request(TillRequest(till, started.token)) == started.shift
    assert shift_for_request(TillRequest(till_for(), started.token)) is None
    assert shift_for_request(TillRequest(till, started.token + "x")) is None
    assert shift_for_request(TillRequest(till)) is None
    assert shift_for_request(TillRequest(None, started.token)) is None


def test_clocking_out_ends_the_shift_and_its_token(till, cashier):
    started = clock_in(till, cashier)

    ended = shift_end(shift=started.shift)

    assert ended.ended_at is not None and ended.token_hash is None
    assert shift_for_request(TillRequest(till, started.token)) is None
    assert SecurityEvent.objects.filter(kind="shift_ended", actor=cashier).get().detail["reason"] == "clock_out"
    assert shift_end(shift=started.shift).ended_at == ended.ended_at  # ending twice changes nothing


def test_a_shift_ends_by_itself_after_the_maximum_hours(settings, till, cashier):
    settings.VOUCHERS = {**settings.VOUCHERS, "shift_max_hours": 12}
    started = clock_in(till, cashier)
    start = started.shift.started_at

    just_before = start + timedelta(hours=12) - timedelta(microseconds=1)
    assert shift_for_request(TillRequest(till, started.token), now=just_before) == started.shift
    assert shift_for_request(TillRequest(till, started.token), now=start + timedelta(hours=12)) is None

    started.shift.refresh_from_db()
    assert started.shift.ended_at == start + timedelta(hours=12)


def test_losing_the_role_or_the_store_ends_the_tokens_use_at_once(till, cashier, store_a):
    started = clock_in(till, cashier)
    cashier.stores.remove(store_a)
    assert shift_for_request(TillRequest(till, started.token)) is None
    cashier.stores.add(store_a)
    assert shift_for_request(TillRequest(till, started.token)) == started.shift
    cashier.groups.remove(Group.objects.get(name="Cashier"))
    assert shift_for_request(TillRequest(till, started.token)) is None


def test_a_deactivated_user_loses_their_shift(till, cashier):
    started = clock_in(till, cashier)
    cashier.is_active = False
    cashier.save(update_fields=["is_active"])
    assert shift_for_request(TillRequest(till, started.token)) is None


def test_a_shift_left_open_past_its_limit_ends_at_the_limit_on_the_next_clock_in(till, cashier):
    started = clock_in(till, cashier)
    start = started.shift.started_at
    with time_machine.travel(start + timedelta(hours=13), tick=False):
        clock_in(till, cashier)

    started.shift.refresh_from_db()
    assert started.shift.ended_at == start + timedelta(hours=12)
    ended = SecurityEvent.objects.filter(kind="shift_ended", detail__shift_id=started.shift.pk).get()
    assert ended.detail["reason"] == "max_hours"


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_codes_are_counted_exactly(settings, till_for, cashier):
    """Ten guesses at once from one address: axes locks at its limit and no guess gets
    past it (the codes are checked one at a time under the user's row lock)."""
    tills = [till_for() for _ in range(10)]
    code = wrong(current_totp(cashier))

    def guess(till):
        try:
            clock_in(till, cashier, otp=code)
        except ShiftRefused as refusal:
            return refusal.code
        return "ok"

    results = race(*(partial(guess, t) for t in tills))

    limit = settings.AXES_FAILURE_LIMIT
    assert results.count("ok") == 0
    assert results.count("staff_credentials_invalid") == limit - 1
    assert results.count("staff_locked_out") == 10 - (limit - 1)
    assert SecurityEvent.objects.filter(kind="otp_failed", actor=cashier).count() == limit
