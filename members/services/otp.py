"""Members' SMS one-time codes: request, verify, step-up (issue 5, "SMS OTP login").

The numbers come from ``settings.MEMBER_AUTH``: ``otp_digits`` digits, valid
``otp_valid_seconds``, at most ``otp_max_guesses`` guesses per code,
``otp_codes_per_hour`` codes per number per hour, and ``otp_failures_per_day`` wrong
codes per number per (local) day, after which the number is locked until the end of
that day and the member is told.

Codes anyone may ask for without signing in (log-in and enrolment, to any number) are
also capped per sender, against SMS pumping (toll fraud: many numbers, one sender): at
most ``otp_codes_per_hour_per_address`` requests per client address and
``otp_codes_per_hour_per_device`` per device fingerprint in a clock hour (0: no cap),
counted atomically in Redis (``members.services.otp_caps``).

Invariants:

- a code is stored only as ``HMAC-SHA256(OTP_HMAC_KEY, challenge id | phone index |
  purpose | action | code)``: the database holds neither the code nor the number
  (the number appears only as its blind index), and a code is bound to its challenge,
  number, purpose and action;
- every counter is checked and updated under the number's ``OtpPhoneState`` row lock
  (and a guess also under the challenge's row lock), so parallel requests or guesses
  cannot slip past a limit;
- a request answers the same way (same fields, same work: HMAC and insert) whether or
  not the number is enrolled; only the SMS is skipped for a number that may not
  receive that purpose;
- the code, the number and the HMAC are never logged, nor put in an event or notice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from loyalty.kernel.refusals import Refusal
from loyalty.kernel.timestamps import iso_utc
from loyalty.notifications import notify_member, sms_backend
from members.models import Member, MemberSecurityEvent, OtpChallenge, OtpPhoneState
from members.services import otp_caps
from members.services.pii import blind_index, phone_normalise

logger = logging.getLogger(__name__)

Purpose = OtpChallenge.Purpose
# Purposes a code may be sent for to an enrolled number; the others (enrolment, a new
# phone number) only to a number nobody is enrolled with.
PURPOSES_FOR_ENROLLED = frozenset({Purpose.LOGIN, Purpose.STEP_UP})
PURPOSES_FOR_UNENROLLED = frozenset({Purpose.ENROL, Purpose.CHANGE_PHONE})
# Purposes an anonymous caller may ask codes for, to numbers of their choosing: capped per
# sender (address, device) too. The others need a signed-in member (or a till) and go to
# the member's own number (a step-up; and a till's address serves every customer of the
# store) or to a new number after a step-up to the member's own (change_phone).
PURPOSES_CAPPED_PER_SENDER = frozenset({Purpose.LOGIN, Purpose.ENROL})
SENDER_WINDOW_SECONDS = 3600
ACTION_MAX = 80


class OtpRefused(Refusal):
    """A request or a guess was refused. ``code`` is stable (for the API's error body);
    ``retry_after`` is in seconds when waiting helps (rate limit, lock), else None.

    Codes: ``otp_rate_limited`` (this number), ``otp_sender_rate_limited`` (this client
    address or device), ``otp_locked``, ``otp_invalid`` (unknown challenge, or one for
    another number, purpose or action: deliberately one code), ``otp_expired``,
    ``otp_used``, ``otp_too_many_guesses``, ``otp_wrong_code``.
    """

    message = "The code was refused."
    MESSAGES = {
        "otp_rate_limited": "Too many codes were requested for this number. Try again later.",
        "otp_sender_rate_limited": "Too many codes were requested from this network or device. Try again later.",
        "otp_locked": "Sign-in by SMS code is locked for this number until the end of the day.",
        "otp_invalid": "This code cannot be used here. Request a new one.",
        "otp_expired": "This code has expired. Request a new one.",
        "otp_used": "This code was already used. Request a new one.",
        "otp_too_many_guesses": "Too many wrong guesses for this code. Request a new one.",
        "otp_wrong_code": "The code is not correct.",
    }

    def __init__(self, code: str, *, retry_after: int | None = None):
        super().__init__(code, retry_after=retry_after)


@dataclass(frozen=True)
class OtpRequestResult:
    """What a request answers, enrolled number or not: never the code."""

    challenge_id: uuid.UUID
    expires_at: datetime


def _conf(name: str) -> int:
    return settings.MEMBER_AUTH[name]


def _conf_str(name: str) -> str:
    return settings.MEMBER_AUTH.get(name, "")


def _code_hmac(*, challenge_id: uuid.UUID, phone_index: str, purpose: str, action: str, code: str) -> str:
    message = "|".join((str(challenge_id), phone_index, purpose, action, code))
    return hmac.new(settings.OTP_HMAC_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def _check_purpose(purpose: str, action: str) -> None:
    if purpose not in Purpose.values:
        raise ValueError(f"unknown OTP purpose {purpose!r}")
    if len(action) > ACTION_MAX:
        raise ValueError(f"an OTP action is at most {ACTION_MAX} characters")
    if purpose == Purpose.STEP_UP and not action:
        raise ValueError("a step-up code is bound to an action")


def _state_for_update(phone_index: str, *, create: bool) -> OtpPhoneState | None:
    """The number's state row, locked (created first when ``create``: INSERT ... ON
    CONFLICT DO NOTHING, so two first requests for a number cannot collide)."""
    if create:
        OtpPhoneState.objects.bulk_create([OtpPhoneState(phone_index=phone_index)], ignore_conflicts=True)
    return OtpPhoneState.objects.select_for_update().filter(pk=phone_index).first()


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _end_of_local_day(now: datetime) -> datetime:
    tomorrow = timezone.localtime(now).date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(tomorrow, time.min), timezone.get_current_timezone())


def _locked(state: OtpPhoneState, now: datetime) -> OtpRefused | None:
    if state.locked_until is not None and state.locked_until > now:
        return OtpRefused("otp_locked", retry_after=_seconds_until(state.locked_until, now))
    return None


def _may_receive(purpose: str, member: Member | None) -> bool:
    return purpose in (PURPOSES_FOR_ENROLLED if member is not None else PURPOSES_FOR_UNENROLLED)


def _sender_caps_check(*, ip: str | None, device: str | None, purpose: str) -> None:
    """Count this request against its sender's caps (address, then device); raise
    ``otp_sender_rate_limited`` with ``retry_after`` (the end of the hour) over a cap.

    Every request counts, whatever becomes of it (an enrolled number or not, a refusal
    by the number's own cap), so the answer tells nothing about the number. The first
    refusal in a window records an ``otp_sender_capped`` event (no member: the caller is
    anonymous) and logs a warning; later ones in the same window only log, so a flood
    writes no flood of rows.
    """
    for scope, ident, limit in (
        ("address", ip, _conf("otp_codes_per_hour_per_address")),
        ("device", device, _conf("otp_codes_per_hour_per_device")),
    ):
        if not ident or not limit:
            continue
        hit = otp_caps.window_hit(scope=scope, ident=ident, window_seconds=SENDER_WINDOW_SECONDS)
        if hit.count <= limit:
            continue
        if hit.count == limit + 1:
            MemberSecurityEvent.objects.create(
                member=None,
                kind="otp_sender_capped",
                ip=ip or None,
                detail={"scope": scope, "limit": limit, "window_seconds": SENDER_WINDOW_SECONDS, "purpose": purpose},
            )
            logger.warning("otp requests capped for a sender (%s, ip %s) for %ss", scope, ip, hit.retry_after)
        else:
            logger.info("otp request refused: sender capped (%s, ip %s)", scope, ip)
        raise OtpRefused("otp_sender_rate_limited", retry_after=hit.retry_after)


def otp_request(
    *, phone: str, purpose: str, action: str = "", ip: str | None = None, device: str | None = None
) -> OtpRequestResult:
    """Create a challenge for ``phone`` and send its code by SMS after commit.

    The answer is the same whether or not the number is enrolled (the same fields, the
    same work); the SMS goes only to a number that may receive ``purpose``: log-in and
    step-up codes to an enrolled number, enrolment and new-number (``change_phone``)
    codes to a number nobody is enrolled with.

    ``ip`` (the client address, ``staffauth.net.client_ip``) and ``device`` (the app's
    device fingerprint, when it sent one) identify the sender: for the purposes in
    ``PURPOSES_CAPPED_PER_SENDER`` each is capped per hour (``_sender_caps_check``).

    Raises ``members.services.pii.InvalidMemberData`` for an invalid number, ``ValueError`` for an
    unknown purpose (or a step-up without an action), and ``OtpRefused`` with
    ``otp_sender_rate_limited`` (the address or device asked for too many codes this
    hour), ``otp_locked`` (the number hit the daily failure cap) or ``otp_rate_limited``
    (``otp_codes_per_hour`` codes in the last hour), each with ``retry_after``.
    """
    _check_purpose(purpose, action)
    normalised = phone_normalise(phone)
    phone_index = blind_index("phone", normalised)
    if purpose in PURPOSES_CAPPED_PER_SENDER:
        _sender_caps_check(ip=ip, device=device, purpose=purpose)
    now = timezone.now()
    with transaction.atomic():
        state = _state_for_update(phone_index, create=True)
        assert state is not None  # create=True: the row exists
        if refusal := _locked(state, now):
            logger.info("otp request refused: locked (purpose %s, ip %s)", purpose, ip)
            raise refusal
        window_start = now - timedelta(hours=1)
        recent = list(
            OtpChallenge.objects.filter(phone_index=phone_index, created_at__gt=window_start)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[: _conf("otp_codes_per_hour")]
        )
        if len(recent) >= _conf("otp_codes_per_hour"):
            # The oldest of the last N leaves the window first.
            logger.info("otp request refused: rate limited (purpose %s, ip %s)", purpose, ip)
            raise OtpRefused("otp_rate_limited", retry_after=_seconds_until(recent[-1] + timedelta(hours=1), now))

        member = Member.objects.filter(phone_index=phone_index).first()
        code = f"{secrets.randbelow(10 ** _conf('otp_digits')):0{_conf('otp_digits')}d}"
        challenge = OtpChallenge(phone_index=phone_index, member=member, purpose=purpose, action=action)
        challenge.code_hmac = _code_hmac(
            challenge_id=challenge.id, phone_index=phone_index, purpose=purpose, action=action, code=code
        )
        challenge.expires_at = now + timedelta(seconds=_conf("otp_valid_seconds"))
        challenge.save(force_insert=True)
        recipient = normalised if _may_receive(purpose, member) else ""
        transaction.on_commit(lambda: _sms_dispatch(to=recipient, code=code, challenge_id=challenge.id, action=action))
    logger.info("otp challenge %s created (purpose %s, ip %s)", challenge.id, purpose, ip)
    return OtpRequestResult(challenge_id=challenge.id, expires_at=challenge.expires_at)


def _sms_fernet() -> Fernet:
    """The key that seals a code's SMS on the broker: derived from OTP_HMAC_KEY (HKDF,
    its own label), so the broker holds neither the code nor the number."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"members.otp.sms-queue").derive(
        settings.OTP_HMAC_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _sms_dispatch(*, to: str, code: str, challenge_id: uuid.UUID, action: str = "") -> None:
    """Hand the code's SMS over, the same way whether or not there is a recipient.

    ``queue`` (the default): one Celery task with the number and text sealed (Fernet),
    expiring with the code; the worker drops an empty recipient, so enrolled and
    unenrolled numbers cost the web request the same. ``inline``: sent here, after
    commit, only when there is a recipient (the gateway's latency shows in the answer).
    """
    text = _sms_text(code, action)
    if _conf_str("otp_sms_delivery") == "inline":
        if to:
            otp_sms_send(to=to, text=text, challenge_id=challenge_id)
        return
    from members.tasks import otp_sms_deliver

    sealed = _sms_fernet().encrypt(json.dumps({"to": to, "text": text}).encode()).decode()
    try:
        otp_sms_deliver.apply_async(
            args=[sealed, str(challenge_id)],
            queue=_conf_str("otp_sms_queue") or None,
            expires=_conf("otp_valid_seconds"),
            ignore_result=True,
        )
    except Exception as exc:  # a broker failure must not change the answer (nor leak into logs)
        logger.warning("otp sms for challenge %s not queued (%s)", challenge_id, type(exc).__name__)


def otp_sms_unseal(sealed: str) -> tuple[str, str]:
    """The (recipient, text) of a queued code SMS; raises ``InvalidToken`` once the code
    has expired (the seal's age is checked against the code's validity)."""
    payload = json.loads(_sms_fernet().decrypt(sealed.encode(), ttl=_conf("otp_valid_seconds")))
    return payload["to"], payload["text"]


# A code that approves a points redemption at a till is read to the cashier: its text
# says exactly that, instead of "never share it".
TILL_REDEMPTION_ACTION_PREFIX = "pos_redeem:"


def _sms_text(code: str, action: str = "") -> str:
    minutes = _conf("otp_valid_seconds") // 60
    if action.startswith(TILL_REDEMPTION_ACTION_PREFIX):
        return (
            f"Your loyalty code {code} approves redeeming points at the till. Give it to the cashier only if "
            f"you are at the till now. It expires in {minutes} minutes."
        )
    return f"Your loyalty code is {code}. It expires in {minutes} minutes. Never share it with anyone."


def otp_sms_send(*, to: str, text: str, challenge_id) -> None:
    try:
        sms_backend().send(to=to, text=text)
    except Exception as exc:  # a gateway failure must not change the answer (nor leak into logs)
        logger.warning("otp sms for challenge %s not sent (%s)", challenge_id, type(exc).__name__)


def otp_verify(*, challenge_id, phone: str, code: str, purpose: str, action: str = "") -> OtpChallenge:
    """Check ``code`` for the challenge; on success mark it verified (single use) and
    return it.

    Everything happens under the number's state row lock and the challenge's row lock,
    so parallel guesses are serialised. A wrong code counts a guess on the challenge and
    a failure for the number today (local date); the ``otp_failures_per_day``-th failure
    locks the number until the end of the day, records an ``otp_locked`` event and
    notifies the member. The counters are committed before the refusal is raised, so
    do not call this inside a transaction that an exception rolls back.

    Raises ``members.services.pii.InvalidMemberData`` for an invalid number and ``OtpRefused``:
    ``otp_locked``, ``otp_invalid`` (unknown challenge, or another number, purpose or
    action), ``otp_used``, ``otp_expired``, ``otp_too_many_guesses``, ``otp_wrong_code``.
    """
    phone_index = blind_index("phone", phone_normalise(phone))
    try:
        challenge_id = uuid.UUID(str(challenge_id))
    except ValueError:
        raise OtpRefused("otp_invalid") from None
    now = timezone.now()
    with transaction.atomic():
        # Lock order as in otp_request: the number's state, then the challenge.
        state = _state_for_update(phone_index, create=False)
        if state is None:  # no code was ever requested for this number
            raise OtpRefused("otp_invalid")
        if refusal := _locked(state, now):
            raise refusal
        challenge = OtpChallenge.objects.select_for_update().filter(pk=challenge_id, phone_index=phone_index).first()
        if challenge is None or challenge.purpose != purpose or challenge.action != action:
            raise OtpRefused("otp_invalid")
        if challenge.verified_at is not None:
            raise OtpRefused("otp_used")
        if now >= challenge.expires_at:
            raise OtpRefused("otp_expired")
        if challenge.guesses >= _conf("otp_max_guesses"):
            raise OtpRefused("otp_too_many_guesses")

        challenge.guesses += 1
        expected = _code_hmac(
            challenge_id=challenge.id,
            phone_index=phone_index,
            purpose=challenge.purpose,
            action=challenge.action,
            code=str(code).strip(),
        )
        if hmac.compare_digest(expected, challenge.code_hmac):
            challenge.verified_at = now
            challenge.save(update_fields=["guesses", "verified_at"])
            logger.info("otp challenge %s verified", challenge.id)
            return challenge
        challenge.save(update_fields=["guesses"])
        refusal = _failure_record(state=state, challenge=challenge, now=now)
    # Outside the atomic block: the counters above are committed, then the refusal raised.
    raise refusal


def _failure_count(state: OtpPhoneState, now: datetime) -> bool:
    """Count one failure for the number today (local date), locking it until the end of
    the day at the daily cap; the state row is locked by the caller. True when it locks."""
    today = timezone.localdate(now)
    if state.failures_on != today:
        state.failures_on, state.failures = today, 0
    state.failures += 1
    locks = state.failures >= _conf("otp_failures_per_day")
    if locks:
        state.locked_until = _end_of_local_day(now)
    state.save(update_fields=["failures_on", "failures", "locked_until"])
    return locks


def _failure_record(*, state: OtpPhoneState, challenge: OtpChallenge, now: datetime) -> OtpRefused:
    """Count a wrong code for the number today; lock it at the daily cap. Returns the
    refusal to raise."""
    locks = _failure_count(state, now)
    logger.info("otp challenge %s: wrong code (guess %s)", challenge.id, challenge.guesses)

    member = challenge.member
    if member is not None:
        MemberSecurityEvent.objects.create(
            member=member,
            kind="otp_failed",
            detail={
                "challenge": str(challenge.id),
                "purpose": challenge.purpose,
                "guesses": challenge.guesses,
                "failures_today": state.failures,
            },
        )
    return _failure_answer(locks, member=member, state=state, now=now, notice=CODE_LOCK_NOTICE)


# What a member is told when their number locks (after the daily cap of wrong codes, or of
# failed sign-ins of any kind): the subject, the body (``{failures}``: today's count) and
# the log's name for it.
CODE_LOCK_NOTICE = (
    "otp",
    "Sign-in by SMS code locked",
    "Someone entered a wrong sign-in code for your number {failures} times today, "
    "so sign-in by SMS code is locked until the end of the day. If this was not you, "
    "please contact us; nobody from the programme will ever ask you for a code.",
)
SIGN_IN_LOCK_NOTICE = (
    "sign-in",
    "Sign-in locked",
    "Someone failed to sign in to your loyalty account {failures} times today (a wrong "
    "password or code), so sign-in is locked until the end of the day. If this was not you, "
    "please contact us; nobody from the programme will ever ask you for a code or password.",
)


def _failure_answer(
    locks: bool, *, member: Member | None, state: OtpPhoneState, now: datetime, notice: tuple, ip=None, **detail
) -> OtpRefused:
    """The refusal after a counted failure: ``otp_wrong_code``; or, when it ``locks`` the
    number, ``otp_locked``, recorded for ``member`` (when known) and told them (``notice``)."""
    if not locks:
        return OtpRefused("otp_wrong_code")
    what, subject, body = notice
    logger.warning("%s locked for a number until %s after %s failures", what, state.locked_until, state.failures)
    assert state.locked_until is not None  # set by _failure_count when it locks
    if member is not None:
        MemberSecurityEvent.objects.create(
            member=member,
            kind="otp_locked",
            ip=ip or None,
            detail={"until": iso_utc(state.locked_until), "failures_today": state.failures, **detail},
        )
        body = body.format(failures=state.failures)
        notify_member(member=member, channel="preferred", subject=subject, body=body, topic="security")
    return OtpRefused("otp_locked", retry_after=_seconds_until(state.locked_until, now))


def _step_ups(*, member: Member, action: str, now: datetime):
    """The member's verified, unused step-ups for ``action`` (sent to their current
    number) that are less than ``step_up_seconds`` old."""
    return OtpChallenge.objects.filter(
        member=member,
        phone_index=member.phone_index,
        purpose=Purpose.STEP_UP,
        action=action,
        verified_at__gt=now - timedelta(seconds=_conf("step_up_seconds")),
        verified_at__lte=now,
        consumed_at__isnull=True,
    )


def otp_step_up_valid(*, member: Member, action: str, now: datetime | None = None) -> bool:
    """True when ``member`` verified a step-up code for ``action`` (sent to their current
    number) less than ``step_up_seconds`` ago and has not used it yet."""
    if not member.phone_index:
        return False
    return _step_ups(member=member, action=action, now=now or timezone.now()).exists()


def otp_step_up_consume(*, member: Member, action: str, now: datetime | None = None) -> bool:
    """Use up one valid step-up for ``action``: True when there was one (now spent), else
    False. One conditional UPDATE, so two requests cannot spend the same step-up; call it
    inside the transaction that carries out the action, so a rollback gives it back."""
    now = now or timezone.now()
    if not member.phone_index:
        return False
    challenge_id = _step_ups(member=member, action=action, now=now).order_by("-verified_at").values("pk")[:1]
    return OtpChallenge.objects.filter(pk__in=challenge_id, consumed_at__isnull=True).update(consumed_at=now) == 1


def otp_phone_credential_check(
    *,
    phone_index: str,
    check: Callable[[], bool],
    member: Member | None,
    kind: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> OtpRefused | None:
    """Check another sign-in credential of a number (a password) against the same daily
    failure cap as wrong codes, under the number's ``OtpPhoneState`` row lock.

    In its own transaction: lock (create) the number's state row; when the number is
    locked, return ``otp_locked`` with ``retry_after`` without calling ``check``; else
    call ``check()`` with the lock held (parallel guesses for one number are serialised,
    so none slips past the cap). True: return None. False: count a failure for the number
    today (one counter with wrong codes), record a ``kind`` event for ``member`` (when
    given) and return ``otp_wrong_code``; the ``otp_failures_per_day``-th failure locks
    the number until the end of the day (sign-in by code too), records ``otp_locked``,
    notifies the member and returns ``otp_locked``.

    Returns the refusal instead of raising it, so the caller answers in its own words;
    the counters are committed when it returns (do not call it inside a transaction that
    the refusal rolls back). The credential is never logged nor put in an event.
    """
    now = now or timezone.now()
    with transaction.atomic():
        state = _state_for_update(phone_index, create=True)
        assert state is not None  # create=True: the row exists
        if refusal := _locked(state, now):
            return refusal
        if check():
            return None
        locks = _failure_count(state, now)
        logger.info("sign-in credential refused (%s, ip %s)", kind, ip)
        if member is not None:
            MemberSecurityEvent.objects.create(
                member=member, kind=kind, ip=ip or None, detail={"failures_today": state.failures}
            )
        notice = SIGN_IN_LOCK_NOTICE
        return _failure_answer(locks, member=member, state=state, now=now, notice=notice, ip=ip, cause=kind)
