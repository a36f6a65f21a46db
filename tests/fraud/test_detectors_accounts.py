"""Account and staff detectors (FRAUD.md rows 20-24, 26, 27): each at its threshold, one
below, one above; a re-run raises nothing new; no address in any fact."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine

from fraud import config as fraud_config
from fraud.detectors import REGISTRY
from fraud.detectors.accounts import (
    enrolment_farm_check,
    many_ips_check,
    network_hash,
    network_of,
    refresh_token_reuse_followups,
    security_event_assess,
)
from fraud.detectors.staff import TILL_ALERTS, staff_linked_accounts
from fraud.models import FraudAlert, FraudCase, RiskSignal
from fraud.services import Subject, risk_score
from loyalty.kernel.models import Till
from members.models import Member, MemberDevice, MemberSecurityEvent
from members.services.sessions import (
    ImpossibleTravel,
    RefreshTokenReused,
    session_end,
    session_refresh,
    session_start,
)
from vouchers.models import Reward, Voucher, VoucherRedemption

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


def login(member, ip, fingerprint="fp-phone", **kwargs):
    return session_start(member=member, channel="app", device_fingerprint=fingerprint, ip=ip, **kwargs)


def last_event(member, kind):
    return MemberSecurityEvent.objects.filter(member=member, kind=kind).order_by("-pk").first()


def alerts(detector):
    return list(FraudAlert.objects.filter(kind=detector).order_by("pk"))


def signals(detector):
    return list(RiskSignal.objects.filter(detector=detector).order_by("pk"))


def assert_no_addresses(*addresses):
    """No raw address (nor its network's text) in any signal's facts or alert's detail."""
    stored = json.dumps(
        [
            list(RiskSignal.objects.values_list("facts", flat=True)),
            list(FraudAlert.objects.values_list("detail", flat=True)),
        ]
    )
    for address in addresses:
        assert address not in stored
        assert network_of(address).split("/")[0] not in stored


# --- networks ---------------------------------------------------------------------------


def test_networks_are_slash_24_and_slash_48_and_hashed_with_a_key():
    assert network_of("10.1.2.3") == network_of("10.1.2.250") == "10.1.2.0/24"
    assert network_of("2001:db8:1::1") == network_of("2001:db8:1:ffff::9") == "2001:db8:1::/48"
    assert network_of("not an address") is None and network_of(None) is None
    hashed = network_hash("10.1.2.0/24")
    assert len(hashed) == 16 and "10.1.2" not in hashed and hashed != network_hash("10.1.3.0/24")


# --- row 20: many_ips -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("networks", "signalled"), [(4, False), (5, True), (6, True)])
def test_many_ips_signals_from_five_networks_a_day(member, clock, networks, signalled):
    for n in range(networks):
        login(member, f"10.{n}.0.7")
        login(member, f"10.{n}.0.99")  # the same /24: one network (carrier NAT)

    security_event_assess(event_id=last_event(member, "login").pk)

    found = signals("many_ips")
    assert len(found) == int(signalled)
    assert not alerts("many_ips")  # below 10 networks: a signal, no alert or case
    if signalled:
        assert found[0].facts["networks"] == networks and found[0].weight == 20
        assert risk_score(Subject.member(member.pk), START).forced_outcome == "step_up"
    assert_no_addresses(*(f"10.{n}.0.7" for n in range(networks)))


@pytest.mark.django_db
def test_many_ips_counts_ipv6_by_slash_48_and_ignores_logins_older_than_24_hours(member, clock):
    for n in range(3):
        login(member, f"10.{n}.0.1")
    clock.shift(timedelta(hours=25))
    login(member, "2001:db8:a::1")
    login(member, "2001:db8:a:ffff::1")
    login(member, "2001:db8:b::1")
    assert many_ips_check(member_id=member.pk, as_of=START + timedelta(hours=25)) is None  # 2 networks in 24 h


@pytest.mark.django_db
def test_many_ips_is_idempotent(member, clock):
    for n in range(5):
        login(member, f"10.{n}.0.1")
    event = last_event(member, "login")
    security_event_assess(event_id=event.pk)
    security_event_assess(event_id=event.pk)
    login(member, "10.9.0.1")  # a later login of the same day finds the day's signal
    security_event_assess(event_id=last_event(member, "login").pk)
    assert len(signals("many_ips")) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("networks", "alerted"), [(9, False), (10, True), (11, True)])
def test_many_ips_with_overlapping_sessions_from_ten_networks_opens_a_case(member, clock, networks, alerted):
    for n in range(networks):
        login(member, f"10.{n}.0.1")  # every session still live: they overlap
        clock.shift(timedelta(minutes=5))

    security_event_assess(event_id=last_event(member, "login").pk)
    security_event_assess(event_id=last_event(member, "login").pk)

    found = alerts("many_ips")
    assert len(found) == int(alerted)
    if alerted:
        assert found[0].detail["overlapping_sessions"] is True and found[0].severity == "high"
        assert FraudCase.objects.filter(member=member).count() == 1
        assert {s.weight for s in signals("many_ips")} == {20, fraud_config.threshold("many_ips", "high_weight")}


@pytest.mark.django_db
def test_many_ips_from_ten_networks_one_after_another_is_no_case(member, clock):
    for n in range(10):
        tokens = login(member, f"10.{n}.0.1")
        clock.shift(timedelta(minutes=5))
        session_end(session=member.sessions.get(pk=tokens.session_id), reason="logout")
        clock.shift(timedelta(minutes=1))
    security_event_assess(event_id=last_event(member, "login").pk)
    assert len(signals("many_ips")) == 1 and not alerts("many_ips")


# --- row 21: devices_rapid_change -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("count", "alerted"), [(2, False), (3, True), (4, True)])
def test_devices_rapid_change_alerts_at_three_new_devices(member, clock, count, alerted):
    event = MemberSecurityEvent.objects.create(
        member=member, kind="devices_rapid_change", detail={"new_devices_24h": count}
    )
    security_event_assess(event_id=event.pk)
    security_event_assess(event_id=event.pk)
    assert len(alerts("devices_rapid_change")) == int(alerted)
    assert FraudCase.objects.filter(member=member).exists() is alerted


@pytest.mark.django_db
def test_devices_rapid_change_from_real_logins_is_one_alert_a_day(member, clock):
    for n in range(4):
        login(member, "10.0.0.1", fingerprint=f"fp-{n}")
    for event in MemberSecurityEvent.objects.filter(member=member, kind="devices_rapid_change"):
        security_event_assess(event_id=event.pk)
    (alert,) = alerts("devices_rapid_change")
    assert alert.detail["new_devices_24h"] == 3 and len(alert.detail["device_ids"]) == 4
    assert_no_addresses("10.0.0.1")


# --- row 22: impossible_travel ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("km", "minutes", "alerted"),
    [(1000, 60, False), (1001, 60, True), (100, 1, False), (101, 1, True)],
)
def test_impossible_travel_alerts_above_1000_kmh_beyond_100_km(member, clock, km, minutes, alerted):
    event = MemberSecurityEvent.objects.create(
        member=member, kind="impossible_travel", detail={"distance_km": km, "minutes_since_previous": minutes}
    )
    security_event_assess(event_id=event.pk)
    security_event_assess(event_id=event.pk)
    assert len(alerts("impossible_travel")) == int(alerted)
    if alerted:
        assert risk_score(Subject.member(member.pk), START).forced_outcome == "block_and_review"
        assert FraudCase.objects.get(member=member).severity == "high"


@pytest.mark.django_db
def test_impossible_travel_from_a_refused_login_raises_the_alert(member, clock, settings):
    settings.GEOLOCATION_BACKEND = "members.geo.TestGeolocation"
    login(member, "192.0.2.10")  # Kuala Lumpur
    clock.shift(timedelta(minutes=30))
    with pytest.raises(ImpossibleTravel):
        login(member, "203.0.113.10", fingerprint="fp-laptop")  # London, 30 minutes later
    security_event_assess(event_id=last_event(member, "impossible_travel").pk)
    (alert,) = alerts("impossible_travel")
    assert alert.member_id == member.pk and alert.detail["distance_km"] > 10_000
    assert_no_addresses("192.0.2.10", "203.0.113.10")


# --- row 23: refresh_token_reuse --------------------------------------------------------


def reuse_a_token(member):
    tokens = login(member, "10.0.0.1")
    session_refresh(refresh_token=tokens.refresh_token, device_fingerprint="fp-phone")
    with pytest.raises(RefreshTokenReused):
        session_refresh(refresh_token=tokens.refresh_token, device_fingerprint="fp-phone")
    event = last_event(member, "refresh_token_reused")
    security_event_assess(event_id=event.pk)
    return event


def redeem_voucher(member, store, at, staff=None):
    reward = Reward.objects.create(name="RM5 off", kind=Reward.Kind.FIXED_VALUE, value_minor=500, points_price=500)
    voucher = Voucher.objects.create(
        code=uuid.uuid4().hex[:12].upper(), reward=reward, member=member, source=Voucher.Source.GOODWILL,
        issued_at=at - timedelta(days=1), expires_at=at + timedelta(days=30),
    )  # fmt: skip
    till = Till.objects.filter(store=store).first() or Till.objects.create(
        store=store, code="T1", key_id=f"till-{uuid.uuid4().hex[:8]}", secret_encrypted="-"
    )
    return VoucherRedemption.objects.create(
        voucher=voucher, till=till, store=store, staff=staff, idempotency_key=uuid.uuid4().hex, redeemed_at=at
    )


@pytest.mark.django_db
def test_refresh_token_reuse_is_a_step_up_signal_without_a_case(member, clock):
    reuse_a_token(member)
    security_event_assess(event_id=last_event(member, "refresh_token_reused").pk)
    (signal,) = signals("refresh_token_reuse")
    assert signal.weight == 50 and not alerts("refresh_token_reuse")
    assert not FraudCase.objects.filter(member=member).exists()
    assert risk_score(Subject.member(member.pk), START).forced_outcome == "step_up"


@pytest.mark.django_db
@pytest.mark.parametrize(("hours", "alerted"), [(24, True), (25, False), (23, True)])
def test_refresh_token_reuse_followed_by_a_redemption_within_24_hours_opens_a_case(
    member, store_a, clock, hours, alerted
):
    reuse_a_token(member)
    redeem_voucher(member, store_a, START + timedelta(hours=hours))
    as_of = START + timedelta(hours=30)

    assert refresh_token_reuse_followups(as_of) == int(alerted)
    assert refresh_token_reuse_followups(as_of) == int(alerted)  # again: nothing new

    assert len(alerts("refresh_token_reuse")) == int(alerted)
    assert FraudCase.objects.filter(member=member).exists() is alerted


@pytest.mark.django_db
def test_refresh_token_reuse_without_a_redemption_raises_no_alert(member, clock):
    reuse_a_token(member)
    assert REGISTRY["refresh_token_reuse"](START + timedelta(hours=24)) == 0
    assert not alerts("refresh_token_reuse")


# --- row 24: enrolment_farm -------------------------------------------------------------


def enrol(store, ip, fingerprint_hash):
    member = Member.objects.create(home_store=store)
    MemberSecurityEvent.objects.create(
        member=member, kind="consent_changed", ip=ip, detail={"purposes": ["essential"], "source": "enrolment"}
    )
    device = MemberDevice.objects.create(member=member, fingerprint_hash=fingerprint_hash)
    return member, device


@pytest.mark.django_db
@pytest.mark.parametrize(("count", "alerted"), [(2, False), (3, True), (4, True)])
def test_enrolment_farm_alerts_at_three_enrolments_from_one_device(store_a, clock, count, alerted):
    enrolled = [enrol(store_a, f"10.{n}.0.1", "f" * 64) for n in range(count)]
    member, device = enrolled[-1]
    for _ in range(2):
        keys = enrolment_farm_check(member_id=member.pk, device_id=device.pk, as_of=START)
    assert keys == (["device:" + "f" * 16] if alerted else [])
    found = alerts("enrolment_farm")
    assert len(found) == int(alerted)
    if alerted:
        assert found[0].detail["enrolments_24h"] == count and found[0].detail["via"] == "device"
        assert sorted(found[0].detail["member_ids"]) == sorted(m.pk for m, _ in enrolled)


@pytest.mark.django_db
@pytest.mark.parametrize(("count", "alerted"), [(2, False), (3, True), (4, True)])
def test_enrolment_farm_alerts_at_three_enrolments_from_one_network(store_a, clock, count, alerted):
    enrolled = [enrol(store_a, f"10.7.7.{10 + n}", f"{n:064x}") for n in range(count)]
    enrol(store_a, "10.7.8.1", "e" * 64)  # another /24
    member, device = enrolled[-1]
    enrolment_farm_check(member_id=member.pk, device_id=device.pk, as_of=START)
    enrolment_farm_check(member_id=member.pk, device_id=device.pk, as_of=START)
    found = alerts("enrolment_farm")
    assert len(found) == int(alerted)
    if alerted:
        assert found[0].detail["via"] == "network" and found[0].detail["enrolments_24h"] == count
        assert found[0].signals.get().subject_key == f"client:network:{network_hash('10.7.7.0/24')}"
    assert_no_addresses("10.7.7.10", "10.7.8.1")


@pytest.mark.django_db
def test_enrolment_farm_ignores_enrolments_older_than_a_day(store_a, clock):
    for _ in range(2):
        enrol(store_a, "10.5.5.1", "a" * 64)
    clock.shift(timedelta(hours=25))
    member, device = enrol(store_a, "10.5.5.1", "a" * 64)
    assert enrolment_farm_check(member_id=member.pk, device_id=device.pk, as_of=START + timedelta(hours=25)) == []


@pytest.mark.django_db
def test_a_new_members_first_login_runs_the_enrolment_check(store_a, clock):
    for _ in range(3):
        member = Member.objects.create(home_store=store_a)
        MemberSecurityEvent.objects.create(
            member=member, kind="consent_changed", ip="10.3.3.3", detail={"source": "enrolment"}
        )
        login(member, "10.3.3.3", fingerprint="fp-farm")
        security_event_assess(event_id=last_event(member, "login").pk)
    assert {a.detail["via"] for a in alerts("enrolment_farm")} == {"device", "network"}


# --- the hook: members announces, fraud enqueues ----------------------------------------


@pytest.mark.django_db
def test_a_committed_login_enqueues_its_assessment(member, clock, django_capture_on_commit_callbacks):
    with (
        mock.patch("fraud.receivers.security_event_assess_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        login(member, "10.0.0.1")
    enqueued = {call.args[0] for call in delay.call_args_list}
    assert last_event(member, "login").pk in enqueued
    assert last_event(member, "device_new").pk not in enqueued  # a kind fraud does not read


# --- row 26: the till's alerts ----------------------------------------------------------


def test_till_alerts_are_registered_with_their_weights():
    assert {code: fraud_config.detector(code).weight for code in TILL_ALERTS} == {
        "voucher_rescan": 40,
        "cashier_redemption_frequency": 25,
        "redemption_irregular": 40,
    }


@pytest.mark.django_db
def test_a_till_alert_signals_staff_and_store_with_its_weight(store_a, make_staff):
    cashier = make_staff("cashier-26", "cashier", stores=[store_a])
    alert = TILL_ALERTS["cashier_redemption_frequency"](
        staff_id=cashier.pk, store_id=store_a.pk, redemptions=21, threshold=20, window_minutes=60, now=START
    )
    assert {(s.subject_key, s.weight) for s in alert.signals.all()} == {
        (f"staff:{cashier.pk}", 25),
        (f"store:{store_a.pk}", 25),
    }


# --- row 27: staff_linked_accounts ------------------------------------------------------


def goodwill(staff, member, at):
    reward = Reward.objects.create(name="Sorry", kind=Reward.Kind.FIXED_VALUE, value_minor=500, points_price=500)
    return Voucher.objects.create(
        code=uuid.uuid4().hex[:12].upper(), reward=reward, member=member, source=Voucher.Source.GOODWILL,
        issued_by=staff, issue_reason="goodwill", issued_at=at, expires_at=at + timedelta(days=30),
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("count", "alerted"), [(2, False), (3, True), (4, True)])
def test_staff_linked_accounts_alerts_at_three_acts_for_one_member(store_a, make_staff, count, alerted):
    staff = make_staff("linked-27", "store_manager", stores=[store_a])
    friend = Member.objects.create(home_store=store_a)
    for n in range(count):
        goodwill(staff, friend, START - timedelta(days=n))
    goodwill(staff, friend, START - timedelta(days=91))  # outside the 90 days

    assert staff_linked_accounts(START) == int(alerted)
    assert staff_linked_accounts(START) == int(alerted)  # again: the same alert

    found = alerts("staff_linked_accounts")
    assert len(found) == int(alerted)
    if alerted:
        assert found[0].detail["goodwill"] == count and found[0].member_id == friend.pk
        case = FraudCase.objects.get(staff=staff)
        assert case.inbox == "insider" and found[0].case_id == case.pk


@pytest.mark.django_db
def test_staff_linked_accounts_counts_redemptions_and_leaves_out_the_own_account(store_a, make_staff):
    own = Member.objects.create(home_store=store_a)
    staff = make_staff("own-27", "cashier", stores=[store_a], member_account=own)
    for n in range(3):
        goodwill(staff, own, START - timedelta(days=n))  # refused by the services; ignored here too
    friend = Member.objects.create(home_store=store_a)
    for n in range(3):
        redeem_voucher(friend, store_a, START - timedelta(days=n), staff=staff)
    assert staff_linked_accounts(START) == 1
    (alert,) = alerts("staff_linked_accounts")
    assert alert.member_id == friend.pk and alert.detail["redemptions"] == 3


@pytest.mark.django_db
def test_staff_linked_accounts_alerts_a_device_shared_with_the_staff_members_own_account(store_a, make_staff, clock):
    own = Member.objects.create(home_store=store_a)
    staff = make_staff("device-27", "cashier", stores=[store_a], member_account=own)
    friend, stranger = Member.objects.create(home_store=store_a), Member.objects.create(home_store=store_a)
    login(own, "10.0.0.1", fingerprint="fp-shared")
    login(friend, "10.0.0.2", fingerprint="fp-shared")
    login(stranger, "10.0.0.3", fingerprint="fp-other")

    assert REGISTRY["staff_linked_accounts"](START + timedelta(hours=1)) == 1
    (alert,) = alerts("staff_linked_accounts")
    assert alert.member_id == friend.pk and alert.staff_id == staff.pk and alert.detail["shared_devices"] == 1
    assert FraudCase.objects.get(staff=staff).status == "new"


# --- the tasks (called directly) --------------------------------------------------------


@pytest.mark.django_db
def test_the_assessment_task_runs_the_events_detector(member, clock):
    from fraud.tasks import security_event_assess_task

    event = MemberSecurityEvent.objects.create(
        member=member, kind="impossible_travel", detail={"distance_km": 9000, "minutes_since_previous": 30}
    )
    security_event_assess_task(event.pk)
    security_event_assess_task(event.pk)
    security_event_assess_task(0)  # gone or never existed: nothing
    assert len(alerts("impossible_travel")) == 1


@pytest.mark.django_db
def test_the_scheduled_tasks_run_their_detectors(member, store_a, clock):
    from fraud.tasks import refresh_token_reuse_followups_task, staff_linked_accounts_task

    reuse_a_token(member)
    redeem_voucher(member, store_a, START + timedelta(minutes=5))
    clock.shift(timedelta(minutes=10))
    assert refresh_token_reuse_followups_task() == 1
    assert staff_linked_accounts_task() == 0


@pytest.mark.django_db
def test_many_ips_sessions_left_idle_do_not_overlap_later_ones(member, clock):
    for n in range(10):
        login(member, f"10.{n}.0.1")  # never used again: each idles out after 30 minutes
        clock.shift(timedelta(minutes=31))
    security_event_assess(event_id=last_event(member, "login").pk)
    assert len(signals("many_ips")) == 1 and not alerts("many_ips")
