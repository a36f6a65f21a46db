"""Member sessions, tokens and devices (issue 5: "Tokens", "Sessions per channel", "Devices").

- A session belongs to one channel (app, web, kiosk) and ends after the channel's idle
  limit without activity or at its absolute limit, whatever the activity (numbers in
  ``settings.MEMBER_AUTH["sessions"]``, in minutes). The limits are checked on every
  access-token use and every refresh; a session found past one is ended there and then.
- Access tokens are short-lived (``access_token_seconds``), signed (``django.core.signing``
  under a salt of their own) and carry the session id and their expiry; verifying one
  also checks that its session is live.
- Refresh tokens are random, stored only as SHA-256, bound to the device the session was
  opened on and rotated at every use within a family (one per session). Presenting a
  token that was already rotated is reuse: the whole family is revoked and the session
  ended.
- Devices are registered at the first login from them (fingerprint stored as a keyed hash);
  a new device alerts the member; a blocked device cannot log in; rapid device changes
  are flagged; impossible travel is refused.

Every security-relevant step is a ``MemberSecurityEvent``; their ``detail`` never holds a
token, a fingerprint, a location or personal data.

A refusal that records something (an ended session, a revoked family, an event) commits
that record before raising: callers must not run these services inside a transaction
they roll back on the refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Required, TypedDict

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from loyalty.kernel.refusals import Refusal
from loyalty.notifications import notify_member
from members import signals
from members.geo import distance_km, geolocation
from members.models import Member, MemberDevice, MemberSecurityEvent, MemberSession, RefreshToken
from members.services.pii import blind_index
from members.services.standing import restriction_notice
from staffauth.models import SecurityEvent
from staffauth.services import security_event_record

Channel = MemberSession.Channel

ACCESS_SIGNING_SALT = "members.sessions.access"  # a signing salt: never renamed with the module
# last_seen_at is written at most this often (idle limits are minutes; writes are not free).
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Geolocation is approximate (city level): two logins closer than this are never "travel".
TRAVEL_SLACK_KM = 100.0
# What a web remember-me session (long-lived, lower privilege) may not do.
REMEMBER_ME_DENIED = frozenset({"redeem", "change_details"})


# --- refusals ---------------------------------------------------------------------------


class SessionRefused(Refusal):
    """A refused login, token or refresh; each kind is a subclass with its stable ``code``."""

    code = "session_refused"
    message = "The session was refused."


class TokenInvalid(SessionRefused):
    code = "token_invalid"
    message = "The token is not valid."


class TokenExpired(SessionRefused):
    code = "token_expired"
    message = "The access token has expired."


class SessionEnded(SessionRefused):
    code = "session_ended"
    message = "The session has ended."


class SessionTimedOut(SessionEnded):
    code = "session_timed_out"
    message = "The session has timed out."


class RefreshTokenReused(SessionRefused):
    code = "refresh_token_reused"
    message = "The refresh token was already used; the session has been ended."


class DeviceMismatch(SessionRefused):
    code = "device_mismatch"
    message = "The refresh token belongs to another device."


class DeviceBlocked(SessionRefused):
    code = "device_blocked"
    message = "This device is blocked."


class ImpossibleTravel(SessionRefused):
    code = "impossible_travel"
    message = "The login was refused: it is too far from the previous one for the time between."


class MemberNotActive(SessionRefused):
    code = "member_not_active"
    message = "The member's account is not active."


class AccountRestricted(SessionRefused):
    """A locked or suspended member (``members.services.restrictions``): the detail names
    the case and what to do (``restriction_notice``), never why."""

    code = "account_restricted"
    message = "Your account is restricted. See detail for what to do."


def _not_active(member: Member) -> SessionRefused:
    if member.status in (Member.Status.LOCKED, Member.Status.SUSPENDED):
        return AccountRestricted(**restriction_notice(member))
    return MemberNotActive()


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionTokens:
    """What a login or a refresh hands to the client. The tokens exist only here."""

    session_id: uuid.UUID
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    session_expires_at: datetime
    device_id: int | None  # None once the session's device is deleted
    new_device: bool = False

    def __repr__(self) -> str:  # never print the tokens
        return f"SessionTokens(session_id={self.session_id}, device_id={self.device_id}, new_device={self.new_device})"


# --- helpers ----------------------------------------------------------------------------


def _sha256(value: str) -> str:
    """For refresh tokens: 256 random bits, so a plain hash cannot be guessed back."""
    return hashlib.sha256(value.encode()).hexdigest()


def _fingerprint_hash(fingerprint: str) -> str:
    """Device fingerprints can be guessable (a few browser traits): keyed, like the
    blind indexes, so the stored hash cannot be tried against likely fingerprints."""
    return blind_index("device_fingerprint", fingerprint)


def _limits(channel: str) -> dict:
    return settings.MEMBER_AUTH["sessions"][channel]


def _idle(channel: str) -> timedelta:
    return timedelta(minutes=_limits(channel)["idle"])


def _absolute(channel: str, *, remember_me: bool, biometric: bool) -> timedelta:
    limits = _limits(channel)
    if remember_me:
        return timedelta(minutes=limits["absolute_remember_me"])
    if biometric:
        return timedelta(minutes=limits["absolute_biometric"])
    return timedelta(minutes=limits["absolute"])


def _event(member: Member | None, kind: str, *, ip: str | None = None, **detail) -> MemberSecurityEvent:
    event = MemberSecurityEvent.objects.create(member=member, kind=kind, ip=ip or None, detail=detail)
    signals.security_event_announce(event)  # fraud's account detectors hear of it after the commit
    return event


def _access_token(session: MemberSession, now: datetime) -> tuple[str, datetime]:
    expires = min(now + timedelta(seconds=settings.MEMBER_AUTH["access_token_seconds"]), session.expires_at)
    token = signing.dumps({"s": str(session.id), "e": expires.timestamp()}, salt=ACCESS_SIGNING_SALT)
    return token, expires


def _refresh_token_issue(session: MemberSession, family: uuid.UUID) -> str:
    raw = secrets.token_urlsafe(32)
    RefreshToken.objects.create(session=session, family=family, token_hash=_sha256(raw))
    return raw


def _tokens(session: MemberSession, *, refresh: str, now: datetime, new_device: bool = False) -> SessionTokens:
    access, access_expires = _access_token(session, now)
    return SessionTokens(
        session_id=session.id,
        access_token=access,
        access_expires_at=access_expires,
        refresh_token=refresh,
        session_expires_at=session.expires_at,
        device_id=session.device_id,
        new_device=new_device,
    )


def _timeout_reason(session: MemberSession, now: datetime) -> str | None:
    """Why a not-yet-ended session is over at ``now``, or None when it is live."""
    if now >= session.expires_at:
        return "absolute_timeout"
    if now - session.last_seen_at > _idle(session.channel):
        return "idle_timeout"
    return None


def sessions_end_among(sessions, *, reason: str, now: datetime) -> list[uuid.UUID]:
    """End the live sessions among ``sessions`` (a queryset) and revoke their refresh
    tokens; returns the ids of those it ended (each ended once, even under races)."""
    ids = list(sessions.filter(ended_at__isnull=True).values_list("pk", flat=True))
    if not ids:
        return []
    ended = list(
        MemberSession.objects.select_for_update()
        .filter(pk__in=ids, ended_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    MemberSession.objects.filter(pk__in=ended).update(ended_at=now, end_reason=reason[:40])
    RefreshToken.objects.filter(session_id__in=ended, revoked_at__isnull=True).update(revoked_at=now)
    return ended


def _check_live(session: MemberSession, now: datetime) -> SessionRefused | None:
    """The refusal for a session that is over (ending it when a limit has just been
    passed), or None. Runs inside a transaction."""
    if session.ended_at is not None:
        return SessionEnded()
    reason = _timeout_reason(session, now)
    if reason is not None:
        if sessions_end_among(MemberSession.objects.filter(pk=session.pk), reason=reason, now=now):
            _event(
                session.member, "session_expired", session_id=str(session.id), channel=session.channel, reason=reason
            )
        return SessionTimedOut()
    if session.member.status != Member.Status.ACTIVE:
        return _not_active(session.member)
    return None


def _raise_or_return(outcome):
    if isinstance(outcome, SessionRefused):
        raise outcome
    return outcome


# --- log in -----------------------------------------------------------------------------


class SessionOpening(TypedDict, total=False):
    """How and where a member whose identity is proven opens a session: ``session_start``'s
    arguments after ``member``, which every sign-in (code, password) takes and passes on."""

    channel: Required[str]
    device_fingerprint: Required[str]
    device_label: str
    ip: str | None
    remember_me: bool
    biometric: bool


def session_start(
    *,
    member: Member,
    channel: str,
    device_fingerprint: str,
    device_label: str = "",
    ip: str | None = None,
    remember_me: bool = False,
    biometric: bool = False,
    now: datetime | None = None,
) -> SessionTokens:
    """Open a session for a member whose identity was just proven (OTP, password).

    Registers the device on its first login (alerting the member, ``new_device`` in the
    result: the caller decides whether it also needs an OTP) and flags the Nth new device
    in 24 hours. Raises ``DeviceBlocked`` for a blocked device, ``ImpossibleTravel`` when
    the previous located login is further away than ``impossible_travel_kmh`` allows in
    the time since (both recorded), ``MemberNotActive``; ``ValueError`` for a bad channel,
    an empty fingerprint or remember-me / biometric on another channel.
    """
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    if remember_me and channel != Channel.WEB:
        raise ValueError("remember-me is for web sessions")
    if biometric and channel != Channel.APP:
        raise ValueError("biometric unlock is for app sessions")
    if not device_fingerprint:
        raise ValueError("a device fingerprint is required")
    now = now or timezone.now()
    location = geolocation().locate(ip) if ip else None
    with transaction.atomic():
        outcome = _session_start(
            member=member, channel=channel, fingerprint_hash=_fingerprint_hash(device_fingerprint),
            label=device_label[:120], ip=ip, location=location,
            remember_me=remember_me, biometric=biometric, now=now,
        )  # fmt: skip
    return _raise_or_return(outcome)


def _session_start(*, member, channel, fingerprint_hash, label, ip, location, remember_me, biometric, now):
    # One login of a member at a time: device counts and travel checks see the previous one.
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status != Member.Status.ACTIVE:
        _event(member, "login_refused", ip=ip, channel=channel, reason="member_not_active")
        return _not_active(member)
    device = MemberDevice.objects.filter(member=member, fingerprint_hash=fingerprint_hash).first()
    if device is not None and device.blocked_at is not None:
        _event(member, "login_refused", ip=ip, channel=channel, reason="device_blocked", device_id=device.pk)
        return DeviceBlocked()

    if location is not None and (refusal := _travel_check(member, location, ip=ip, channel=channel, now=now)):
        return refusal

    new_device = device is None
    if device is None:
        device = MemberDevice.objects.create(
            member=member, fingerprint_hash=fingerprint_hash, label=label, last_ip=ip,
            latitude=location[0] if location else None, longitude=location[1] if location else None,
        )  # fmt: skip
        device.first_seen_at = device.last_seen_at = now  # auto_now_add ignores ``now``
        device.save(update_fields=["first_seen_at", "last_seen_at"])
        _event(member, "device_new", ip=ip, device_id=device.pk, channel=channel)
        recent = MemberDevice.objects.filter(member=member, first_seen_at__gt=now - timedelta(days=1)).count()
        if recent >= settings.MEMBER_AUTH["new_devices_per_day_flag"]:
            _event(member, "devices_rapid_change", ip=ip, new_devices_24h=recent)
        notify_member(
            member=member,
            channel="preferred",
            subject="New device signed in",
            body=(
                f"A new device ({label or 'unnamed'}) signed in to your loyalty account on "
                f"{now:%Y-%m-%d %H:%M} UTC. If this was not you, block the device in the app "
                "and contact us."
            ),
            topic="security",
        )
    else:
        device.last_seen_at, device.last_ip = now, ip
        fields = ["last_seen_at", "last_ip"]
        if location is not None:
            device.latitude, device.longitude = location
            fields += ["latitude", "longitude"]
        if label and label != device.label:
            device.label = label
            fields.append("label")
        device.save(update_fields=fields)

    expires = now + _absolute(channel, remember_me=remember_me, biometric=biometric)
    session = MemberSession.objects.create(
        member=member, device=device, channel=channel, remember_me=remember_me, biometric=biometric,
        last_seen_at=now, expires_at=expires,
    )  # fmt: skip
    refresh = _refresh_token_issue(session, family=uuid.uuid4())
    _event(
        member, "login", ip=ip, session_id=str(session.id), channel=channel, device_id=device.pk,
        new_device=new_device, remember_me=remember_me, biometric=biometric,
    )  # fmt: skip
    return _tokens(session, refresh=refresh, now=now, new_device=new_device)


def _travel_check(member, location, *, ip, channel, now) -> ImpossibleTravel | None:
    """Compare with the member's latest located login (a device's last login)."""
    previous = (
        MemberDevice.objects.filter(member=member, latitude__isnull=False, longitude__isnull=False)
        .order_by("-last_seen_at")
        .first()
    )
    if previous is None:
        return None
    assert previous.latitude is not None and previous.longitude is not None  # filtered on
    km = distance_km((previous.latitude, previous.longitude), location)
    if km <= TRAVEL_SLACK_KM:
        return None
    hours = max((now - previous.last_seen_at).total_seconds(), 0) / 3600
    if km <= settings.MEMBER_AUTH["impossible_travel_kmh"] * hours:
        return None
    _event(
        member, "impossible_travel", ip=ip, channel=channel, distance_km=round(km),
        minutes_since_previous=round(hours * 60), previous_device_id=previous.pk,
    )  # fmt: skip
    notify_member(
        member=member,
        channel="preferred",
        subject="Sign-in blocked",
        body=(
            f"We blocked a sign-in to your loyalty account on {now:%Y-%m-%d %H:%M} UTC from a "
            "place too far from your previous one. If this was you, try again later."
        ),
        topic="security",
    )
    return ImpossibleTravel()


# --- tokens -----------------------------------------------------------------------------


def access_token_authenticate(token: str, *, now: datetime | None = None) -> MemberSession:
    """The live session an access token stands for.

    Checks the signature and the token's expiry, then the session: not ended, not past
    its absolute limit, not idle longer than its channel allows (a session found past a
    limit is ended and recorded). Records activity in ``last_seen_at`` (at most once a
    minute). Raises ``TokenInvalid``, ``TokenExpired``, ``SessionEnded`` (or its
    ``SessionTimedOut``) and ``MemberNotActive``.
    """
    now = now or timezone.now()
    try:
        payload = signing.loads(token, salt=ACCESS_SIGNING_SALT)
        session_id, expires = uuid.UUID(payload["s"]), float(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise TokenInvalid() from None
    if now.timestamp() >= expires:
        raise TokenExpired()
    session = MemberSession.objects.select_related("member").filter(pk=session_id).first()
    if session is None:
        raise TokenInvalid()
    with transaction.atomic():
        refusal = _check_live(session, now)
    if refusal is not None:
        raise refusal
    if now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
        MemberSession.objects.filter(pk=session.pk, last_seen_at__lt=now).update(last_seen_at=now)
        session.last_seen_at = now
    return session


def session_refresh(*, refresh_token: str, device_fingerprint: str, now: datetime | None = None) -> SessionTokens:
    """Trade a refresh token for a new access token and a new refresh token (rotation).

    The token must belong to the device its session was opened on and the session must
    be live (its limits apply here too). A token already rotated is reuse: the whole
    family is revoked, the session ended, ``refresh_token_reused`` recorded. Concurrent
    uses of one token serialise on its row: one rotates, the others are reuse.
    Raises ``TokenInvalid``, ``RefreshTokenReused``, ``DeviceMismatch``, ``DeviceBlocked``,
    ``SessionEnded`` / ``SessionTimedOut``, ``MemberNotActive``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        outcome = _session_refresh(
            token_hash=_sha256(refresh_token or ""),
            fingerprint_hash=_fingerprint_hash(device_fingerprint or ""),
            now=now,
        )
    return _raise_or_return(outcome)


def _session_refresh(*, token_hash, fingerprint_hash, now):
    row = (
        RefreshToken.objects.select_for_update(of=("self",))
        .select_related("session", "session__member", "session__device")
        .filter(token_hash=token_hash)
        .first()
    )
    if row is None:
        return TokenInvalid()
    session = row.session
    member = session.member
    if row.rotated_at is not None:
        RefreshToken.objects.filter(family=row.family, revoked_at__isnull=True).update(revoked_at=now)
        sessions_end_among(MemberSession.objects.filter(pk=session.pk), reason="refresh_token_reused", now=now)
        _event(member, "refresh_token_reused", session_id=str(session.id), channel=session.channel)
        # The security team's log too: a reused refresh token is a likely stolen one.
        security_event_record(
            kind=SecurityEvent.Kind.MEMBER_TOKEN_REUSED,
            detail={"member_id": str(member.member_id), "session_id": str(session.id), "channel": session.channel},
        )
        return RefreshTokenReused()
    if row.revoked_at is not None:
        return SessionEnded()
    device = session.device
    if device is None or not hmac.compare_digest(device.fingerprint_hash, fingerprint_hash):
        _event(member, "refresh_device_mismatch", session_id=str(session.id), channel=session.channel)
        return DeviceMismatch()
    if device.blocked_at is not None:
        return DeviceBlocked()
    if refusal := _check_live(session, now):
        return refusal

    row.rotated_at = now
    row.save(update_fields=["rotated_at"])
    refresh = _refresh_token_issue(session, family=row.family)
    MemberSession.objects.filter(pk=session.pk).update(last_seen_at=now)
    session.last_seen_at = now
    _event(member, "token_refreshed", session_id=str(session.id), channel=session.channel)
    return _tokens(session, refresh=refresh, now=now)


# --- privileges -------------------------------------------------------------------------


def session_may(session: MemberSession, capability: str) -> bool:
    """Whether the session may do ``capability`` (e.g. ``redeem``, ``change_details``).
    Web remember-me sessions are long-lived and hence of lower privilege."""
    low_privilege = session.channel == Channel.WEB and session.remember_me
    return not (low_privilege and capability in REMEMBER_ME_DENIED)


# --- ending sessions, devices ----------------------------------------------------------


@transaction.atomic
def session_end(*, session: MemberSession, reason: str, now: datetime | None = None) -> bool:
    """End one session (logout, revocation) and revoke its refresh tokens. Returns
    False when it had already ended."""
    now = now or timezone.now()
    if not sessions_end_among(MemberSession.objects.filter(pk=session.pk), reason=reason, now=now):
        return False
    _event(session.member, "session_ended", session_id=str(session.id), channel=session.channel, reason=reason)
    return True


@transaction.atomic
def sessions_end_all(
    *, member: Member, reason: str, except_session: MemberSession | None = None, now: datetime | None = None
) -> int:
    """End all of a member's sessions but ``except_session`` (a password, email or phone
    change; suspicious activity). Returns how many were ended."""
    now = now or timezone.now()
    sessions = MemberSession.objects.filter(member=member)
    if except_session is not None:
        sessions = sessions.exclude(pk=except_session.pk)
    ended = sessions_end_among(sessions, reason=reason, now=now)
    _event(member, "sessions_ended", reason=reason, count=len(ended))
    return len(ended)


def member_sessions(member: Member, *, now: datetime | None = None):
    """The member's live sessions (not ended, within both limits), latest activity first."""
    now = now or timezone.now()
    idle = Q()
    for channel in Channel.values:
        idle |= Q(channel=channel, last_seen_at__gte=now - _idle(channel))
    return (
        MemberSession.objects.filter(member=member, ended_at__isnull=True, expires_at__gt=now)
        .filter(idle)
        .select_related("device")
        .order_by("-last_seen_at")
    )


@transaction.atomic
def device_block(*, member: Member, device_id: int, now: datetime | None = None) -> MemberDevice:
    """Block one of the member's devices and end its sessions. Raises
    ``MemberDevice.DoesNotExist`` for a device that is not the member's."""
    now = now or timezone.now()
    device = MemberDevice.objects.select_for_update().get(member=member, pk=device_id)
    if device.blocked_at is None:
        device.blocked_at = now
        device.save(update_fields=["blocked_at"])
    ended = sessions_end_among(MemberSession.objects.filter(device=device), reason="device_blocked", now=now)
    _event(member, "device_blocked", device_id=device.pk, sessions_ended=len(ended))
    return device
