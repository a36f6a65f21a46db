"""Members' SMS one-time codes (members.services.otp): every number at its boundary, single use,
binding, storage as HMAC only, enumeration resistance, parallel guesses, step-up."""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from loyalty.celery import app as celery_app
from loyalty.kernel.models import OutboundMessage
from loyalty.notifications import LocmemSmsBackend
from members.models import MemberSecurityEvent, OtpChallenge
from members.services import otp
from members.services.membership import member_create
from members.services.otp import OtpRefused, otp_request, otp_step_up_consume, otp_step_up_valid, otp_verify
from members.services.pii import InvalidMemberData
from members.tasks import otp_sms_deliver
from tests.concurrency import race

# 10:00 UTC is 18:00 in Kuala Lumpur: the local day ends at 16:00 UTC.
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PHONE = "+60 12-555 0101"
STRANGER = "+60 13-555 0202"  # nobody is enrolled with this number
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


@pytest.fixture
def request_code(django_capture_on_commit_callbacks):
    """Request a code (running the after-commit SMS); return (result, code or None).
    Each request comes from an address of its own: these tests are about the number's
    limits, not the sender's (see "per-sender caps")."""
    addresses = (f"10.0.{n // 250}.{n % 250 + 1}" for n in itertools.count())

    def request(phone=PHONE, purpose="login", action=""):
        before = len(LocmemSmsBackend.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            result = otp_request(phone=phone, purpose=purpose, action=action, ip=next(addresses))
        sent = LocmemSmsBackend.outbox[before:]
        return result, (_code_in(sent[-1]["text"]) if sent else None)

    return request


def _code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def refusal(call) -> str:
    with pytest.raises(OtpRefused) as caught:
        call()
    return caught.value.code


# --- request ---------------------------------------------------------------------------


def test_request_sends_six_digits_to_the_member_and_answers_id_and_expiry_only(clock, member, request_code):
    result, code = request_code()

    assert re.fullmatch(r"\d{6}", code)
    assert LocmemSmsBackend.outbox[0]["to"] == "+60125550101"
    assert [f.name for f in dataclasses.fields(result)] == ["challenge_id", "expires_at"]
    assert result.expires_at == START + timedelta(minutes=5)
    challenge = OtpChallenge.objects.get(pk=result.challenge_id)
    assert challenge.member == member
    assert challenge.code_hmac != code and len(challenge.code_hmac) == 64


def test_an_invalid_number_is_refused_as_members_refuse_it(db):
    with pytest.raises(InvalidMemberData) as caught:
        otp_request(phone="12345", purpose="login")

    assert caught.value.errors["phone"][0] == "invalid_phone"
    assert not OtpChallenge.objects.exists()


def test_the_fifth_code_in_an_hour_is_sent_the_sixth_refused_then_allowed_after_the_hour(clock, member, request_code):
    for minute in range(5):
        clock.move_to(START + timedelta(minutes=minute * 10))
        assert request_code()[1] is not None  # the fifth, at 10:40, still goes out

    clock.move_to(START + timedelta(minutes=59))
    with pytest.raises(OtpRefused) as caught:
        request_code()

    assert caught.value.code == "otp_rate_limited"
    assert caught.value.retry_after == 60  # when the 10:00 code leaves the window
    assert OtpChallenge.objects.count() == 5
    assert len(LocmemSmsBackend.outbox) == 5

    clock.move_to(START + timedelta(hours=1, seconds=1))
    assert request_code()[1] is not None


def test_the_hourly_cap_counts_every_purpose_and_does_not_depend_on_enrolment(clock, db, request_code):
    for purpose in ["login", "enrol", "login", "enrol", "login"]:
        request_code(phone=STRANGER, purpose=purpose)

    assert refusal(lambda: request_code(phone=STRANGER, purpose="enrol")) == "otp_rate_limited"


# --- verify: expiry, guesses, single use, binding ---------------------------------------


def test_a_code_is_valid_at_4_59(clock, member, request_code):
    result, code = request_code()
    clock.move_to(START + timedelta(minutes=4, seconds=59))

    challenge = otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login")

    assert challenge.verified_at == START + timedelta(minutes=4, seconds=59)
    assert challenge.member == member


def test_a_code_is_refused_at_5_01(clock, member, request_code):
    result, code = request_code()
    clock.move_to(START + timedelta(minutes=5, seconds=1))

    assert refusal(lambda: otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login")) == (
        "otp_expired"
    )
    assert OtpChallenge.objects.get(pk=result.challenge_id).verified_at is None


def test_the_third_guess_is_allowed_and_the_fourth_refused_even_with_the_right_code(clock, member, request_code):
    result, code = request_code()

    def verify(guess):
        return otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=guess, purpose="login")

    assert [refusal(lambda: verify(_wrong(code))) for _ in range(2)] == ["otp_wrong_code"] * 2
    assert verify(code).verified_at is not None  # the third guess still counts

    other, other_code = request_code()
    for _ in range(3):
        refusal(
            lambda: otp_verify(challenge_id=other.challenge_id, phone=PHONE, code=_wrong(other_code), purpose="login")
        )
    assert (
        refusal(lambda: otp_verify(challenge_id=other.challenge_id, phone=PHONE, code=other_code, purpose="login"))
        == "otp_too_many_guesses"
    )
    assert OtpChallenge.objects.get(pk=other.challenge_id).guesses == 3


def test_a_code_is_single_use(clock, member, request_code):
    result, code = request_code()
    otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login")

    again = refusal(lambda: otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login"))

    assert again == "otp_used"


@pytest.mark.parametrize(
    "change",
    [
        {"purpose": "step_up", "action": "redeem"},
        {"purpose": "enrol"},
        {"phone": STRANGER},
        {"challenge_id": "00000000-0000-4000-8000-000000000000"},
        {"challenge_id": "not-a-uuid"},
    ],
    ids=["other purpose", "enrol", "other phone", "unknown challenge", "malformed id"],
)
def test_a_code_is_bound_to_its_challenge_phone_purpose_and_action(clock, member, request_code, change):
    result, code = request_code()
    request_code(phone=STRANGER, purpose="enrol")  # the other number has a state row too
    attempt = {"challenge_id": result.challenge_id, "phone": PHONE, "code": code, "purpose": "login", "action": ""}

    assert refusal(lambda: otp_verify(**{**attempt, **change})) == "otp_invalid"
    assert otp_verify(**attempt).verified_at is not None  # the code itself was not spent


def test_a_step_up_code_is_bound_to_its_action(clock, member, request_code):
    result, code = request_code(purpose="step_up", action="change_email")
    attempt = {"challenge_id": result.challenge_id, "phone": PHONE, "code": code, "purpose": "step_up"}

    assert refusal(lambda: otp_verify(**attempt, action="redeem")) == "otp_invalid"
    assert otp_verify(**attempt, action="change_email").action == "change_email"


# --- the daily failure cap ----------------------------------------------------------------


def _without_uuids(text: str) -> str:
    """``text`` with each UUID (a challenge's, a session's id) blanked: its random hex
    digits can hold "555" or a code by chance, and a UUID is no phone number or code."""
    return UUID_PATTERN.sub("<uuid>", text)


def _fail(times: int, request_code, phone=PHONE) -> list[str]:
    """``times`` wrong codes for ``phone``, three per challenge; the refusal codes."""
    codes = []
    while len(codes) < times:
        challenge_id = request_code(phone=phone)[0].challenge_id
        for _ in range(min(3, times - len(codes))):
            try:
                otp_verify(challenge_id=challenge_id, phone=phone, code="abcdef", purpose="login")
            except OtpRefused as exc:
                codes.append(exc.code)
    return codes


def test_the_tenth_failure_locks_the_number_and_tells_the_member_the_eleventh_is_refused(clock, member, request_code):
    outcomes = _fail(9, request_code)
    assert outcomes == ["otp_wrong_code"] * 9

    result, code = request_code()  # the fourth code this hour
    with pytest.raises(OtpRefused) as tenth:
        otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=_wrong(code), purpose="login")
    assert tenth.value.code == "otp_locked"
    assert tenth.value.retry_after == 6 * 3600  # until midnight in Kuala Lumpur (16:00 UTC)

    # the 11th attempt, with the right code, is refused as locked; so is a new code
    assert refusal(lambda: otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login")) == (
        "otp_locked"
    )
    assert refusal(lambda: request_code()) == "otp_locked"

    notice = OutboundMessage.objects.get(member=member, topic="security")
    assert notice.channel == "preferred"
    assert code not in _without_uuids(notice.body) and "555" not in _without_uuids(notice.body)
    kinds = list(MemberSecurityEvent.objects.filter(member=member).values_list("kind", flat=True))
    assert kinds.count("otp_failed") == 10 and kinds.count("otp_locked") == 1
    for event in MemberSecurityEvent.objects.filter(member=member):
        detail = _without_uuids(str(event.detail))
        assert "555" not in detail and code not in detail


def test_the_lock_lasts_until_the_end_of_the_local_day_then_it_works_again(clock, member, request_code):
    _fail(10, request_code)

    clock.move_to(datetime(2026, 3, 2, 15, 59, tzinfo=UTC))  # 23:59 in Kuala Lumpur
    assert refusal(lambda: request_code()) == "otp_locked"

    clock.move_to(datetime(2026, 3, 2, 16, 0, 1, tzinfo=UTC))  # the next local day
    result, code = request_code()
    # a fresh day's count: one failure no longer locks
    assert refusal(
        lambda: otp_verify(challenge_id=result.challenge_id, phone=PHONE, code="000000x", purpose="login")
    ) == ("otp_wrong_code")
    assert otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login").verified_at


def test_failures_for_a_number_nobody_is_enrolled_with_lock_it_too_without_events(clock, db, request_code):
    assert _fail(10, request_code, phone=STRANGER)[-1] == "otp_locked"

    assert refusal(lambda: request_code(phone=STRANGER, purpose="enrol")) == "otp_locked"
    assert not MemberSecurityEvent.objects.exists()
    assert not OutboundMessage.objects.exists()


# --- storage and enumeration --------------------------------------------------------------


def test_the_database_holds_no_code_nor_number(clock, member, request_code):
    codes = [request_code(purpose=purpose, action=action)[1] for purpose, action in [("login", ""), ("step_up", "x")]]
    codes += [request_code(phone=STRANGER, purpose="enrol")[1]]
    result, _ = request_code()
    refusal(lambda: otp_verify(challenge_id=result.challenge_id, phone=PHONE, code="999999", purpose="login"))

    dump = []
    with connection.cursor() as cursor:
        for table in ["members_otpchallenge", "members_otpphonestate", "members_membersecurityevent"]:
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed table names)
            dump += [str(row) for row in cursor.fetchall()]
    text = "\n".join(dump)

    assert len(codes) == 3 and all(codes)
    for secret in [*codes, "60125550101", "60135550202", "125550101"]:
        assert secret not in text


def test_request_answers_the_same_whether_or_not_the_number_is_enrolled(clock, member, request_code):
    enrolled, enrolled_code = request_code(phone=PHONE, purpose="login")
    stranger, stranger_code = request_code(phone=STRANGER, purpose="login")

    assert type(enrolled) is type(stranger) is otp.OtpRequestResult
    assert {k: type(v) for k, v in dataclasses.asdict(enrolled).items()} == {
        k: type(v) for k, v in dataclasses.asdict(stranger).items()
    }
    assert enrolled.expires_at == stranger.expires_at
    # the same work was done (a challenge each), but no SMS to the stranger for log-in
    assert OtpChallenge.objects.filter(pk__in=[enrolled.challenge_id, stranger.challenge_id]).count() == 2
    assert enrolled_code is not None and stranger_code is None
    assert [m["to"] for m in LocmemSmsBackend.outbox] == ["+60125550101"]
    # and the stranger's challenge behaves like any other: a wrong code is just wrong
    assert refusal(
        lambda: otp_verify(challenge_id=stranger.challenge_id, phone=STRANGER, code="123456", purpose="login")
    ) in {"otp_wrong_code"}


@pytest.mark.parametrize(
    ("purpose", "to_member", "to_stranger"),
    [("login", True, False), ("step_up", True, False), ("enrol", False, True), ("change_phone", False, True)],
)
def test_a_code_goes_only_to_a_number_that_may_receive_the_purpose(
    clock, member, request_code, purpose, to_member, to_stranger
):
    action = "change_email" if purpose == "step_up" else ""

    assert (request_code(phone=PHONE, purpose=purpose, action=action)[1] is not None) is to_member
    assert (request_code(phone=STRANGER, purpose=purpose, action=action)[1] is not None) is to_stranger


def test_request_timing_does_not_tell_enrolled_numbers_apart(clock, store_a, request_code):
    # Four numbers of each kind, five requests each (the hourly cap): 20 + 20, interleaved.
    enrolled = [f"+60 12-777 01{i:02d}" for i in range(4)]
    strangers = [f"+60 12-777 02{i:02d}" for i in range(4)]
    for phone in enrolled:
        member_create(home_store=store_a, phone=phone)
    request_code(phone=strangers[0])  # warm-up
    timings = {"enrolled": [], "stranger": []}
    for round_ in range(5):
        for kind, phones in [("enrolled", enrolled), ("stranger", strangers)]:
            for phone in phones:
                if kind == "stranger" and phone == strangers[0] and round_ == 4:
                    continue  # its warm-up request used one of the five
                started = time.perf_counter()
                request_code(phone=phone)
                timings[kind].append(time.perf_counter() - started)

    ratio = statistics.median(timings["enrolled"]) / statistics.median(timings["stranger"])
    assert 1 / 3 < ratio < 3, timings


# --- parallel guesses ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_never_exceed_three_on_a_code(store_a):
    member_create(home_store=store_a, phone=PHONE)
    result = otp_request(phone=PHONE, purpose="login")  # autocommit: the SMS goes at once
    code = _code_in(LocmemSmsBackend.outbox[-1]["text"])

    def guess(n):
        def call():
            try:
                otp_verify(
                    challenge_id=result.challenge_id,
                    phone=PHONE,
                    code=f"{(int(code) + n) % 10**6:06d}",
                    purpose="login",
                )
            except OtpRefused as exc:
                return exc.code
            return "verified"

        return call

    outcomes = race(*(guess(n) for n in range(1, 9)))

    assert sorted(outcomes) == ["otp_too_many_guesses"] * 5 + ["otp_wrong_code"] * 3
    assert OtpChallenge.objects.get(pk=result.challenge_id).guesses == 3


# --- per-sender caps (issue 11, D8) ---------------------------------------------------------


def _pumped_numbers(count: int) -> list[str]:
    return [f"+6017{4000000 + n:07d}" for n in range(count)]


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_from_one_address_never_exceed_its_cap(store_a):
    # given 20 enrolment requests from one address at once, to 20 numbers
    def ask(phone):
        def call():
            try:
                otp_request(phone=phone, purpose="enrol", ip="203.0.113.50")
            except OtpRefused as exc:
                return exc.code
            return "sent"

        return call

    outcomes = race(*(ask(phone) for phone in _pumped_numbers(20)))

    # then exactly the cap gets codes: the counter is one atomic increment, not read-then-write
    assert sorted(outcomes) == ["otp_sender_rate_limited"] * 10 + ["sent"] * 10
    assert OtpChallenge.objects.count() == 10
    assert MemberSecurityEvent.objects.filter(kind="otp_sender_capped").count() == 1


def test_the_address_cap_holds_per_process_when_redis_does_not_answer(db, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    outcomes = []
    for phone in _pumped_numbers(11):
        try:
            otp_request(phone=phone, purpose="login", ip="203.0.113.51")
            outcomes.append("sent")
        except OtpRefused as exc:
            outcomes.append(exc.code)
    assert outcomes == ["sent"] * 10 + ["otp_sender_rate_limited"]
    assert "Redis unavailable" in caplog.text


def test_the_address_cap_window_is_the_clock_hour(clock, db):
    for phone in _pumped_numbers(10):
        otp_request(phone=phone, purpose="enrol", ip="203.0.113.52")
    with pytest.raises(OtpRefused) as refused:
        otp_request(phone="+60174999999", purpose="enrol", ip="203.0.113.52")
    assert refused.value.code == "otp_sender_rate_limited"
    assert refused.value.retry_after == 3600  # START is 10:00:00: the window ends at 11:00:00

    clock.move_to(START + timedelta(hours=1))
    otp_request(phone="+60174999999", purpose="enrol", ip="203.0.113.52")


def test_step_ups_are_not_capped_per_address(member, db):
    # A till's (or a household's) address asks step-up codes for many members: only the
    # number's own cap applies to codes that go to the member's registered number.
    for phone in _pumped_numbers(10):
        otp_request(phone=phone, purpose="enrol", ip="203.0.113.53")
    otp_request(phone=PHONE, purpose="step_up", action="change_email", ip="203.0.113.53")
    with pytest.raises(OtpRefused) as refused:
        otp_request(phone=PHONE, purpose="login", ip="203.0.113.53")
    assert refused.value.code == "otp_sender_rate_limited"


# --- step-up ------------------------------------------------------------------------------


def test_a_step_up_is_valid_for_its_action_less_than_five_minutes_after_verification(
    clock, member, store_a, request_code
):
    result, code = request_code(purpose="step_up", action="change_email")
    clock.move_to(START + timedelta(minutes=2))
    otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="step_up", action="change_email")
    verified = START + timedelta(minutes=2)
    other = member_create(home_store=store_a, phone=STRANGER)

    assert otp_step_up_valid(member=member, action="change_email", now=verified + timedelta(minutes=4, seconds=59))
    assert not otp_step_up_valid(member=member, action="change_email", now=verified + timedelta(minutes=5, seconds=1))
    assert not otp_step_up_valid(member=member, action="redeem", now=verified + timedelta(minutes=1))
    assert not otp_step_up_valid(member=other, action="change_email", now=verified + timedelta(minutes=1))
    clock.move_to(verified + timedelta(minutes=1))
    assert otp_step_up_valid(member=member, action="change_email")


def test_an_unverified_or_login_code_is_no_step_up(clock, member, request_code):
    request_code(purpose="step_up", action="redeem")
    result, code = request_code(purpose="login")
    otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login")

    assert not otp_step_up_valid(member=member, action="redeem")
    assert not otp_step_up_valid(member=member, action="")


def test_logs_hold_no_code_number_or_hmac(clock, member, request_code, caplog):
    caplog.set_level("DEBUG")
    result, code = request_code()
    refusal(lambda: otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=_wrong(code), purpose="login"))
    otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="login")
    _fail(10, request_code, phone=STRANGER)
    code_hmac = OtpChallenge.objects.get(pk=result.challenge_id).code_hmac

    assert caplog.records  # something was logged
    for secret in [code, code_hmac, "125550101", "135550202"]:
        assert secret not in caplog.text


def _step_up(request_code, action="change_email"):
    result, code = request_code(purpose="step_up", action=action)
    otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="step_up", action=action)
    return result.challenge_id


def test_a_step_up_is_spent_once_and_only_for_its_action(clock, member, request_code):
    challenge_id = _step_up(request_code)

    assert not otp_step_up_consume(member=member, action="redeem")
    assert otp_step_up_consume(member=member, action="change_email")
    assert OtpChallenge.objects.get(pk=challenge_id).consumed_at == START
    assert not otp_step_up_valid(member=member, action="change_email")
    assert not otp_step_up_consume(member=member, action="change_email")


def test_an_expired_step_up_cannot_be_spent(clock, member, request_code):
    _step_up(request_code)
    clock.move_to(START + timedelta(minutes=5, seconds=1))
    assert not otp_step_up_consume(member=member, action="change_email")


def test_a_rolled_back_action_gives_its_step_up_back(clock, member, request_code):
    _step_up(request_code)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert otp_step_up_consume(member=member, action="change_email")
        raise RuntimeError("the action failed")
    assert otp_step_up_valid(member=member, action="change_email")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_actions_racing_spend_one_step_up_once(store_a):
    member = member_create(home_store=store_a, phone=PHONE)
    result = otp_request(phone=PHONE, purpose="step_up", action="change_email")
    code = _code_in(LocmemSmsBackend.outbox[-1]["text"])
    otp_verify(challenge_id=result.challenge_id, phone=PHONE, code=code, purpose="step_up", action="change_email")

    outcomes = race(*[lambda: otp_step_up_consume(member=member, action="change_email")] * 6)

    assert sorted(outcomes) == [False] * 5 + [True]


# --- delivery through the queue --------------------------------------------------------------


class SlowSmsBackend:
    """A gateway that takes a second to accept a message."""

    sent: list = []

    def send(self, *, to: str, text: str) -> None:
        time.sleep(1.0)
        self.sent.append({"to": to, "text": text})


def _drain(queue: str) -> list[dict]:
    """Every message on ``queue`` (taken off it): Celery's protocol-2 message bodies."""
    messages = []
    with celery_app.connection_for_read() as conn:
        simple = conn.SimpleQueue(queue, no_ack=True)
        try:
            while True:
                message = simple.get(timeout=1)
                messages.append({"headers": message.headers, "body": message.body, "args": message.decode()[0]})
        except simple.Empty:
            pass
        finally:
            simple.queue.delete()
            simple.close()
    return messages


@pytest.mark.redis
def test_queued_codes_cost_the_request_nothing_of_the_gateway_and_tell_no_enrolment(
    clock, settings, store_a, django_capture_on_commit_callbacks
):
    queue = f"test-sms-{uuid.uuid4().hex[:8]}"
    settings.SMS_BACKEND = "tests.members.test_otp.SlowSmsBackend"
    settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "otp_sms_delivery": "queue", "otp_sms_queue": queue}
    member_create(home_store=store_a, phone=PHONE)
    timings = {"enrolled": [], "stranger": []}
    for _ in range(4):
        for kind, phone in (("enrolled", PHONE), ("stranger", STRANGER)):
            started = time.perf_counter()
            with django_capture_on_commit_callbacks(execute=True):
                otp_request(phone=phone, purpose="login")
            timings[kind].append(time.perf_counter() - started)

    # The gateway's second is in no answer: the code left through the queue.
    assert max(timings["enrolled"] + timings["stranger"]) < 1.0, timings
    assert SlowSmsBackend.sent == []
    messages = _drain(queue)
    assert len(messages) == 8 and {m["headers"]["task"] for m in messages} == {"members.otp_sms_deliver"}
    # The broker holds neither the number nor a code: the payload is sealed.
    raw = b"".join(m["body"] if isinstance(m["body"], bytes) else m["body"].encode() for m in messages)
    assert b"60125550101" not in raw and b"Your loyalty code" not in raw

    settings.SMS_BACKEND = "loyalty.notifications.LocmemSmsBackend"
    LocmemSmsBackend.outbox.clear()
    for message in messages:
        otp_sms_deliver(*message["args"])
    # Only the enrolled number's four codes were sent; the stranger's were dropped.
    assert [sms["to"] for sms in LocmemSmsBackend.outbox] == ["+60125550101"] * 4


@pytest.mark.redis
def test_a_queued_code_that_waited_past_its_validity_is_dropped(
    clock, settings, member, caplog, django_capture_on_commit_callbacks
):
    queue = f"test-sms-{uuid.uuid4().hex[:8]}"
    settings.MEMBER_AUTH = {**settings.MEMBER_AUTH, "otp_sms_delivery": "queue", "otp_sms_queue": queue}
    with django_capture_on_commit_callbacks(execute=True):
        otp_request(phone=PHONE, purpose="login")
    (message,) = _drain(queue)

    clock.move_to(START + timedelta(minutes=5, seconds=1))
    caplog.set_level("INFO")
    otp_sms_deliver(*message["args"])
    assert LocmemSmsBackend.outbox == []
    assert "dropped" in caplog.text and "6012" not in caplog.text

    clock.move_to(START + timedelta(minutes=4, seconds=59))
    otp_sms_deliver(*message["args"])
    assert [sms["to"] for sms in LocmemSmsBackend.outbox] == ["+60125550101"]


def test_an_sms_sealed_before_a_module_move_still_opens(settings):
    """The HKDF label of the SMS queue's key is a stored contract, not a module path: an
    SMS sealed under the label every release so far has used (one queued on the broker
    during an upgrade) still opens (issue 12 moved the module; the label stays)."""
    import base64

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from members.services import otp

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"members.otp.sms-queue").derive(
        settings.OTP_HMAC_KEY.encode()
    )
    sealed = Fernet(base64.urlsafe_b64encode(key)).encrypt(b"queued before the upgrade")
    assert otp._sms_fernet().decrypt(sealed) == b"queued before the upgrade"
