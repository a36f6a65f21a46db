"""Member sessions, tokens and devices (issue 5), with a frozen clock."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from loyalty.kernel.models import OutboundMessage
from members.geo import TestGeolocation, distance_km, geolocation
from members.models import Member, MemberDevice, MemberSecurityEvent, MemberSession, RefreshToken
from members.services.sessions import (
    DeviceBlocked,
    DeviceMismatch,
    ImpossibleTravel,
    RefreshTokenReused,
    SessionEnded,
    SessionRefused,
    SessionTimedOut,
    SessionTokens,
    TokenExpired,
    TokenInvalid,
    access_token_authenticate,
    device_block,
    member_sessions,
    session_end,
    session_may,
    session_refresh,
    session_start,
    sessions_end_all,
)
from staffauth.models import SecurityEvent
from tests.concurrency import race

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PHONE_FP = "fp-phone-7c1e2a"
KL, SINGAPORE, LONDON = "192.0.2.10", "198.51.100.20", "203.0.113.30"


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def test_geo(settings):
    settings.GEOLOCATION_BACKEND = "members.geo.TestGeolocation"


def login(member, channel="app", fingerprint=PHONE_FP, **kwargs) -> SessionTokens:
    return session_start(member=member, channel=channel, device_fingerprint=fingerprint, **kwargs)


def kinds(member) -> list[str]:
    return list(MemberSecurityEvent.objects.filter(member=member).order_by("pk").values_list("kind", flat=True))


def keep_active(tokens: SessionTokens, clock, at: timedelta) -> None:
    """Given the session was used a moment before ``at`` (so only the absolute limit can end it)."""
    clock.move_to(START + at)
    MemberSession.objects.filter(pk=tokens.session_id).update(last_seen_at=START + at - timedelta(seconds=30))


# --- geolocation ------------------------------------------------------------------------


def test_distance_is_great_circle_and_test_backend_maps_documentation_addresses(settings):
    geo = TestGeolocation()
    assert 300 < distance_km(geo.locate(KL), geo.locate(SINGAPORE)) < 330
    assert 10_000 < distance_km(geo.locate(KL), geo.locate(LONDON)) < 11_000
    assert geo.locate("10.0.0.1") is None and geo.locate("not an ip") is None
    assert geolocation().locate(KL) is None  # default backend locates nothing
    settings.GEOLOCATION_BACKEND = "members.geo.TestGeolocation"
    assert geolocation().locate(KL) == geo.locate(KL)


# --- idle and absolute limits per channel -----------------------------------------------

IDLE = [
    ("app", {}, 30),
    ("app", {"biometric": True}, 30),
    ("web", {}, 15),
    ("web", {"remember_me": True}, 15),
    ("kiosk", {}, 3),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("channel", "flags", "minutes"), IDLE)
def test_idle_session_is_accepted_until_its_channels_limit(member, clock, channel, flags, minutes):
    tokens = login(member, channel, **flags)
    clock.shift(timedelta(minutes=minutes) - timedelta(seconds=1))

    renewed = session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)

    assert access_token_authenticate(renewed.access_token).pk == tokens.session_id


@pytest.mark.django_db
@pytest.mark.parametrize(("channel", "flags", "minutes"), IDLE)
def test_idle_session_is_refused_and_ended_after_its_channels_limit(member, clock, channel, flags, minutes):
    tokens = login(member, channel, **flags)
    clock.shift(timedelta(minutes=minutes, seconds=1))

    with pytest.raises(SessionTimedOut):
        session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)

    session = MemberSession.objects.get(pk=tokens.session_id)
    assert session.ended_at == START + timedelta(minutes=minutes, seconds=1)
    assert session.end_reason == "idle_timeout"
    assert "session_expired" in kinds(member)
    assert not RefreshToken.objects.filter(session=session, revoked_at__isnull=True).exists()


@pytest.mark.django_db
def test_access_token_use_also_ends_an_idle_session(member, clock):
    tokens = login(member, "kiosk")
    clock.shift(timedelta(minutes=2, seconds=59))
    assert access_token_authenticate(tokens.access_token)  # activity: idle counts from here
    clock.shift(timedelta(minutes=3))
    assert access_token_authenticate(tokens.access_token)
    clock.shift(timedelta(minutes=3, seconds=1))

    with pytest.raises(SessionTimedOut):
        access_token_authenticate(tokens.access_token)
    assert MemberSession.objects.get(pk=tokens.session_id).end_reason == "idle_timeout"


ABSOLUTE = [
    ("app", {}, timedelta(hours=24)),
    ("app", {"biometric": True}, timedelta(days=7)),
    ("web", {}, timedelta(hours=4)),
    ("web", {"remember_me": True}, timedelta(days=30)),
    ("kiosk", {}, timedelta(minutes=10)),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("channel", "flags", "limit"), ABSOLUTE)
def test_session_ends_at_its_absolute_limit_however_active(member, clock, channel, flags, limit):
    tokens = login(member, channel, **flags)
    assert tokens.session_expires_at == START + limit

    keep_active(tokens, clock, limit - timedelta(seconds=1))
    renewed = session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)
    assert renewed.access_expires_at == START + limit  # never outlives the session
    keep_active(tokens, clock, limit)

    with pytest.raises(SessionTimedOut):
        session_refresh(refresh_token=renewed.refresh_token, device_fingerprint=PHONE_FP)
    assert MemberSession.objects.get(pk=tokens.session_id).end_reason == "absolute_timeout"


@pytest.mark.django_db
def test_absolute_limit_also_refuses_the_access_token(member, clock):
    tokens = login(member, "kiosk")
    keep_active(tokens, clock, timedelta(minutes=9, seconds=59))
    assert access_token_authenticate(tokens.access_token)
    keep_active(tokens, clock, timedelta(minutes=10))

    with pytest.raises(TokenExpired):  # access tokens never outlive their session
        access_token_authenticate(tokens.access_token)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("channel", "flags"), [("app", {"remember_me": True}), ("web", {"biometric": True}), ("tv", {})]
)
def test_flags_of_another_channel_are_a_programming_error(member, channel, flags):
    with pytest.raises(ValueError):
        login(member, channel, **flags)
    assert not MemberSession.objects.exists()


@pytest.mark.django_db
def test_access_token_expires_after_15_minutes(member, clock):
    tokens = login(member, "app")
    assert tokens.access_expires_at == START + timedelta(minutes=15)
    clock.shift(timedelta(seconds=899))
    assert access_token_authenticate(tokens.access_token).pk == tokens.session_id
    clock.shift(timedelta(seconds=1))

    with pytest.raises(TokenExpired):
        access_token_authenticate(tokens.access_token)


@pytest.mark.django_db
def test_access_tokens_issued_before_a_module_move_still_verify(member, clock):
    """The signing salt is a stored contract, not a module path: a token signed under the
    salt every release so far has used verifies (issue 12 moved the module; the salt stays)."""
    from django.core import signing

    tokens = login(member)
    issued_earlier = signing.dumps(
        {"s": str(tokens.session_id), "e": (START + timedelta(minutes=15)).timestamp()}, salt="members.sessions.access"
    )
    assert access_token_authenticate(issued_earlier).pk == tokens.session_id


@pytest.mark.django_db
def test_tampered_access_token_is_refused(member, clock):
    tokens = login(member)
    with pytest.raises(TokenInvalid):
        access_token_authenticate(tokens.access_token[:-2] + "xx")
    with pytest.raises(TokenInvalid):
        access_token_authenticate(tokens.refresh_token)


@pytest.mark.django_db
def test_activity_is_written_at_most_once_a_minute(member, clock):
    tokens = login(member, "app")
    clock.shift(timedelta(seconds=59))
    access_token_authenticate(tokens.access_token)
    assert MemberSession.objects.get(pk=tokens.session_id).last_seen_at == START
    clock.shift(timedelta(seconds=1))
    access_token_authenticate(tokens.access_token)
    assert MemberSession.objects.get(pk=tokens.session_id).last_seen_at == START + timedelta(minutes=1)


@pytest.mark.django_db
def test_remember_me_web_session_has_lower_privilege(member, clock):
    remembered = access_token_authenticate(login(member, "web", remember_me=True).access_token)
    ordinary = access_token_authenticate(login(member, "web").access_token)

    assert not session_may(remembered, "redeem") and not session_may(remembered, "change_details")
    assert session_may(remembered, "view_balance")
    assert session_may(ordinary, "redeem") and session_may(ordinary, "change_details")


# --- refresh tokens ---------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_rotates_the_token_within_its_family(member, clock):
    tokens = login(member)
    clock.shift(timedelta(minutes=10))

    renewed = session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)

    old, new = RefreshToken.objects.filter(session_id=tokens.session_id).order_by("pk")
    assert old.rotated_at == START + timedelta(minutes=10) and new.rotated_at is None
    assert old.family == new.family
    assert renewed.refresh_token != tokens.refresh_token and renewed.session_id == tokens.session_id
    assert session_refresh(refresh_token=renewed.refresh_token, device_fingerprint=PHONE_FP)


@pytest.mark.django_db
def test_reusing_a_rotated_refresh_token_revokes_the_family_and_ends_the_session(member, clock):
    tokens = login(member)
    renewed = session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)
    newest = session_refresh(refresh_token=renewed.refresh_token, device_fingerprint=PHONE_FP)

    with pytest.raises(RefreshTokenReused):
        session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)

    assert not RefreshToken.objects.filter(session_id=tokens.session_id, revoked_at__isnull=True).exists()
    assert MemberSession.objects.get(pk=tokens.session_id).end_reason == "refresh_token_reused"
    assert "refresh_token_reused" in kinds(member)
    # The security team sees it too, by pseudonymous member id and session, never a token.
    (event,) = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.MEMBER_TOKEN_REUSED)
    assert event.detail == {
        "member_id": str(member.member_id), "session_id": str(tokens.session_id), "channel": "app",
    }  # fmt: skip
    with pytest.raises(SessionRefused):
        session_refresh(refresh_token=newest.refresh_token, device_fingerprint=PHONE_FP)
    with pytest.raises(SessionEnded):
        access_token_authenticate(newest.access_token)


@pytest.mark.django_db
def test_refresh_token_is_bound_to_its_device(member, clock):
    tokens = login(member)

    with pytest.raises(DeviceMismatch):
        session_refresh(refresh_token=tokens.refresh_token, device_fingerprint="fp-attacker-laptop")

    assert "refresh_device_mismatch" in kinds(member)
    assert session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)


@pytest.mark.django_db
def test_unknown_refresh_token_is_refused(member, clock):
    login(member)
    with pytest.raises(TokenInvalid):
        session_refresh(refresh_token="made-up-token", device_fingerprint=PHONE_FP)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_with_one_token_never_give_two_valid_successors(member):
    tokens = login(member)

    def refresh():
        try:
            return session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)
        except SessionRefused as refusal:
            return refusal

    results = race(refresh, refresh)

    # The uses serialise on the token's row: one rotates, the other is reuse.
    successes = [r for r in results if isinstance(r, SessionTokens)]
    assert len(successes) == 1
    assert len([r for r in results if isinstance(r, RefreshTokenReused)]) == 1
    assert "refresh_token_reused" in kinds(member)
    live = RefreshToken.objects.filter(session_id=tokens.session_id, rotated_at__isnull=True, revoked_at__isnull=True)
    assert live.count() <= 1
    for success in successes:  # the other use was reuse: the successor died with its family
        with pytest.raises(SessionRefused):
            session_refresh(refresh_token=success.refresh_token, device_fingerprint=PHONE_FP)


# --- devices ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_first_login_from_a_device_registers_it_and_alerts_the_member(member, clock):
    tokens = login(member, device_label="Android 15, Loyalty app 3.2", ip=KL)

    device = MemberDevice.objects.get(member=member)
    assert tokens.new_device and tokens.device_id == device.pk
    assert device.fingerprint_hash != PHONE_FP and len(device.fingerprint_hash) == 64
    # Keyed: not the plain hash anyone could compute from a guessed fingerprint.
    assert device.fingerprint_hash != hashlib.sha256(PHONE_FP.encode()).hexdigest()
    assert device.label == "Android 15, Loyalty app 3.2" and device.last_ip == KL
    alert = OutboundMessage.objects.get(member=member)
    assert alert.topic == "security" and alert.channel == "preferred"
    assert kinds(member) == ["device_new", "login"]

    again = login(member, ip=KL)
    assert not again.new_device
    assert OutboundMessage.objects.filter(member=member).count() == 1


@pytest.mark.django_db
def test_blocked_device_is_refused_and_its_sessions_end(member, clock):
    tokens = login(member)
    other = login(member, fingerprint="fp-tablet")

    device_block(member=member, device_id=tokens.device_id)

    assert MemberSession.objects.get(pk=tokens.session_id).end_reason == "device_blocked"
    assert MemberSession.objects.get(pk=other.session_id).ended_at is None
    with pytest.raises(SessionEnded):
        access_token_authenticate(tokens.access_token)
    with pytest.raises(SessionRefused):
        session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)
    with pytest.raises(DeviceBlocked):
        login(member)
    assert {"device_blocked", "login_refused"} <= set(kinds(member))


@pytest.mark.django_db
def test_device_of_another_member_cannot_be_blocked(member, store_a, clock):
    tokens = login(member)
    with pytest.raises(MemberDevice.DoesNotExist):
        device_block(member=Member.objects.create(home_store=store_a), device_id=tokens.device_id)


@pytest.mark.django_db
def test_third_new_device_in_a_day_is_flagged(member, clock):
    login(member, fingerprint="fp-1")
    clock.shift(timedelta(hours=6))
    login(member, fingerprint="fp-2")
    login(member, fingerprint="fp-1")  # a known device is no change
    assert "devices_rapid_change" not in kinds(member)
    clock.shift(timedelta(hours=17))

    login(member, fingerprint="fp-3")

    event = MemberSecurityEvent.objects.get(member=member, kind="devices_rapid_change")
    assert event.detail == {"new_devices_24h": 3}


@pytest.mark.django_db
def test_new_devices_spread_over_days_are_not_flagged(member, clock):
    for n in range(3):
        login(member, fingerprint=f"fp-{n}")
        clock.shift(timedelta(hours=13))
    assert "devices_rapid_change" not in kinds(member)


@pytest.mark.django_db
@pytest.mark.usefixtures("test_geo")
def test_impossible_travel_is_refused_and_recorded(member, clock):
    login(member, ip=KL)
    clock.shift(timedelta(hours=1))

    with pytest.raises(ImpossibleTravel) as refused:
        login(member, fingerprint="fp-london-laptop", ip=LONDON)

    assert refused.value.code == "impossible_travel"
    event = MemberSecurityEvent.objects.get(member=member, kind="impossible_travel")
    assert event.detail["minutes_since_previous"] == 60 and event.detail["distance_km"] > 10_000
    assert not MemberDevice.objects.filter(member=member, last_ip=LONDON).exists()
    assert MemberSession.objects.filter(member=member).count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("test_geo")
def test_plausible_travel_is_allowed(member, clock):
    login(member, ip=KL)
    clock.shift(timedelta(hours=1))
    assert login(member, ip=SINGAPORE)  # about 315 km in an hour
    clock.shift(timedelta(hours=12))
    assert login(member, fingerprint="fp-hotel", ip=LONDON)  # about 10,800 km in 12 hours
    assert "impossible_travel" not in kinds(member)


# --- ending sessions --------------------------------------------------------------------


@pytest.mark.django_db
def test_sessions_end_all_keeps_only_the_given_session(member, clock):
    here = login(member)
    others = [login(member, "web", fingerprint="fp-laptop"), login(member, "kiosk", fingerprint="fp-kiosk")]
    current = MemberSession.objects.get(pk=here.session_id)

    assert sessions_end_all(member=member, reason="password_changed", except_session=current) == 2

    assert [s.pk for s in member_sessions(member)] == [here.session_id]
    for tokens in others:
        assert MemberSession.objects.get(pk=tokens.session_id).end_reason == "password_changed"
        with pytest.raises(SessionEnded):
            access_token_authenticate(tokens.access_token)
    assert access_token_authenticate(here.access_token)


@pytest.mark.django_db
def test_logout_ends_the_session_at_once(member, clock):
    tokens = login(member)
    session = MemberSession.objects.get(pk=tokens.session_id)

    assert session_end(session=session, reason="logout")
    assert not session_end(session=session, reason="logout")

    with pytest.raises(SessionEnded):
        access_token_authenticate(tokens.access_token)
    with pytest.raises(SessionEnded):
        session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=PHONE_FP)


@pytest.mark.django_db
def test_member_sessions_lists_only_live_ones(member, clock):
    app = login(member, "app")
    login(member, "kiosk", fingerprint="fp-kiosk")
    clock.shift(timedelta(minutes=5))  # the kiosk session idled out

    assert [s.pk for s in member_sessions(member)] == [app.session_id]


# --- no secrets at rest -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_holds_no_token_or_fingerprint(member, clock):
    first = login(member, device_label="iPhone", ip=KL)
    issued = [first, session_refresh(refresh_token=first.refresh_token, device_fingerprint=PHONE_FP)]
    secrets = [PHONE_FP] + [t.refresh_token for t in issued] + [t.access_token for t in issued]
    tables = [m._meta.db_table for m in (MemberDevice, MemberSession, RefreshToken, MemberSecurityEvent)]
    tables.append(OutboundMessage._meta.db_table)

    with connection.cursor() as cursor:
        dump = []
        for table in tables:
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")  # noqa: S608 (model table names)
            dump += [row[0] for row in cursor.fetchall()]

    assert dump
    assert not [s for s in secrets if any(s in row for row in dump)]
