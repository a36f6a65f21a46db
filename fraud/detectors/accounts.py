"""Account detectors (FRAUD.md rows 20-24): logins, devices, tokens and enrolments.

Members records what happens to an account as ``MemberSecurityEvent`` rows and, after
each commit, sends ``members.signals.security_event_recorded``; ``fraud.receivers`` hands
the kinds below to ``security_event_assess_task``, which calls ``security_event_assess``.
Each check reads the member's own recent rows (a handful), so it runs per event:

- ``login``: ``many_ips`` (row 20) and, for a member enrolled in the last 24 h,
  ``enrolment_farm`` (row 24);
- ``devices_rapid_change`` (row 21), ``impossible_travel`` (row 22): the event is the
  incident (members already refused the login or flagged the device);
- ``refresh_token_reused`` (row 23): a signal (forced step-up), and an alert with its
  case once a redemption follows within 24 h (``refresh_token_reuse_followups``, every
  5 minutes).

Every raise is idempotent by its ``dedupe_key`` (a re-run, a redelivered task and a later
event of the same window find the first). Facts are ids, counts and keyed hashes: an IP
address never leaves members; networks (/24 IPv4, /48 IPv6) are compared as
``network_hash`` (HMAC under a key of their own).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from fraud import config as fraud_config
from fraud.models import RiskSignal
from fraud.scoring import Subject, signal_raise
from fraud.services import alert_raise
from loyalty.ledger.selectors import operations
from members.models import Member, MemberDevice, MemberSecurityEvent, MemberSession
from members.services.pii import blind_index
from vouchers.models import VoucherRedemption

HASH_CHARS = 16  # of a keyed hash in facts: enough to tell networks apart, not to invert
MAX_LISTED = 20  # ids or hashes listed in one alert's facts
REDEMPTION_KINDS = ("redeem", "capture")  # ledger operations that spend points


# --- networks ---------------------------------------------------------------------------


def network_of(ip: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of ``ip`` as CIDR text (count networks, not
    addresses: carrier NAT moves a member between addresses of one network); None for
    no or a malformed address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def network_hash(network: str) -> str:
    """The keyed hash of a network (a blind index of its own purpose): what facts and
    subjects carry instead of the network."""
    return blind_index("fraud_ip_network", network)[:HASH_CHARS]


def _day(as_of: datetime) -> str:
    return as_of.date().isoformat()


# --- row 20: many_ips -------------------------------------------------------------------


def _spans_overlap(spans: list[tuple[datetime, datetime, str]]) -> bool:
    """True when two sessions from different networks were live at once."""
    spans = sorted(spans)
    for index, (_start, end, network) in enumerate(spans):
        for other_start, _other_end, other_network in spans[index + 1 :]:
            if other_start >= end:
                break
            if other_network != network:
                return True
    return False


def _session_end(session: MemberSession, as_of: datetime) -> datetime:
    """When a session stopped being live: its recorded end, else the first of its absolute
    limit, its idle limit after the last recorded activity, and ``as_of``."""
    if session.ended_at is not None:
        return session.ended_at
    idle = timedelta(minutes=settings.MEMBER_AUTH["sessions"][session.channel]["idle"])
    return min(session.expires_at, session.last_seen_at + idle, as_of)


def many_ips_check(*, member_id: int, as_of: datetime) -> RiskSignal | None:
    """Row 20: distinct networks the member logged in from in the ``window_hours`` up to
    ``as_of``. At ``networks`` (5) a step-up signal (weight W, one per member and day);
    at ``networks_overlapping`` (10) with two sessions from different networks live at
    once, an alert and a case too (weight ``high_weight``). Returns the day's signal."""
    code = "many_ips"
    start = as_of - timedelta(hours=fraud_config.threshold(code, "window_hours"))
    logins = list(
        MemberSecurityEvent.objects.filter(
            member_id=member_id, kind="login", ip__isnull=False, created_at__gt=start, created_at__lte=as_of
        ).values_list("ip", "detail__session_id")
    )
    by_session = {session_id: network for ip, session_id in logins if (network := network_of(ip))}
    networks = {network for ip, _ in logins if (network := network_of(ip))}
    if len(networks) < fraud_config.threshold(code, "networks"):
        return None
    hashes = sorted(network_hash(network) for network in networks)
    facts: dict[str, Any] = {
        "networks": len(networks),
        "window_hours": fraud_config.threshold(code, "window_hours"),
        "network_hashes": hashes[:MAX_LISTED],
    }
    base = f"{code}:member:{member_id}:{_day(as_of)}"
    subject = Subject.member(member_id)
    result = signal_raise(detector=code, subject=subject, facts=facts, occurred_at=as_of, dedupe_key=base)
    if len(networks) >= fraud_config.threshold(code, "networks_overlapping"):
        spans = [
            (session.created_at, _session_end(session, as_of), by_session[str(session.pk)])
            for session in MemberSession.objects.filter(member_id=member_id, pk__in=list(by_session))
        ]
        if _spans_overlap(spans):
            alert_raise(
                detector=code, subjects=[subject], facts={**facts, "overlapping_sessions": True},
                occurred_at=as_of, dedupe_key=f"{base}:overlap", severity="high", member_id=member_id,
                weight=fraud_config.threshold(code, "high_weight"),
            )  # fmt: skip
    return result.signal


# --- row 21: devices_rapid_change -------------------------------------------------------


def devices_rapid_change_check(*, event: MemberSecurityEvent) -> bool:
    """Row 21: members flagged ``new_devices_24h`` new devices; at ``per_day`` (3) or more,
    an alert and a case (one per member and day). Returns whether an alert stands."""
    code = "devices_rapid_change"
    count = int(event.detail.get("new_devices_24h") or 0)
    if event.member_id is None or count < fraud_config.threshold(code, "per_day"):
        return False
    as_of = event.created_at
    device_ids = list(
        MemberDevice.objects.filter(member_id=event.member_id, first_seen_at__gt=as_of - timedelta(days=1))
        .order_by("pk")
        .values_list("pk", flat=True)[:MAX_LISTED]
    )
    alert_raise(
        detector=code, subjects=[Subject.member(event.member_id)],
        facts={"new_devices_24h": count, "device_ids": device_ids, "event_id": event.pk},
        occurred_at=as_of, dedupe_key=f"{code}:member:{event.member_id}:{_day(as_of)}", member_id=event.member_id,
    )  # fmt: skip
    return True


# --- row 22: impossible_travel ----------------------------------------------------------


def impossible_travel_check(*, event: MemberSecurityEvent) -> bool:
    """Row 22: a login further than ``slack_km`` from the previous one at more than
    ``kmh`` (members refused it). An alert and a case, high (one per member and hour);
    the signal forces ``block_and_review`` (settings.FRAUD). Returns whether it fired."""
    code = "impossible_travel"
    km = int(event.detail.get("distance_km") or 0)
    minutes = int(event.detail.get("minutes_since_previous") or 0)
    if event.member_id is None or km <= fraud_config.threshold(code, "slack_km"):
        return False
    if km * 60 <= fraud_config.threshold(code, "kmh") * minutes:  # km/h <= the limit
        return False
    as_of = event.created_at
    alert_raise(
        detector=code, subjects=[Subject.member(event.member_id)],
        facts={"distance_km": km, "minutes_since_previous": minutes, "event_id": event.pk},
        occurred_at=as_of, dedupe_key=f"{code}:member:{event.member_id}:{as_of:%Y-%m-%dT%H}",
        severity="high", member_id=event.member_id,
    )  # fmt: skip
    return True


# --- row 23: refresh_token_reuse --------------------------------------------------------


def refresh_token_reuse_check(*, event: MemberSecurityEvent) -> RiskSignal | None:
    """Row 23: a rotated refresh token presented again (members revoked the family and
    ended the session). A signal that forces a step-up (one per session); the alert and
    its case wait for a redemption (``refresh_token_reuse_followups``)."""
    code = "refresh_token_reuse"
    session_id = str(event.detail.get("session_id") or "")
    if event.member_id is None or not session_id:
        return None
    result = signal_raise(
        detector=code, subject=Subject.member(event.member_id),
        facts={"session_id": session_id, "channel": str(event.detail.get("channel") or ""), "event_id": event.pk},
        occurred_at=event.created_at, dedupe_key=f"{code}:member:{event.member_id}:session:{session_id}",
    )  # fmt: skip
    return result.signal


def _first_redemption(member_id: int, after: datetime, until: datetime) -> tuple[str, datetime] | None:
    """The member's first spend in (after, until]: a points redemption on the ledger or
    a voucher redeemed at a till, as (reference, time)."""
    found: list[tuple[str, datetime]] = []
    op = (
        operations()
        .filter(member_id=member_id, kind__in=REDEMPTION_KINDS, created_at__gt=after, created_at__lte=until)
        .order_by("created_at")
        .values_list("pk", "created_at")
        .first()
    )
    if op is not None:
        found.append((f"ledger_operation:{op[0]}", op[1]))
    voucher = (
        VoucherRedemption.objects.filter(voucher__member_id=member_id, redeemed_at__gt=after, redeemed_at__lte=until)
        .order_by("redeemed_at")
        .values_list("pk", "redeemed_at")
        .first()
    )
    if voucher is not None:
        found.append((f"voucher_redemption:{voucher[0]}", voucher[1]))
    return min(found, key=lambda item: item[1]) if found else None


def refresh_token_reuse_followups(as_of: datetime) -> int:
    """Row 23, micro-batch: each ``refresh_token_reuse`` signal of the last
    ``redemption_within_hours`` (plus as long again, for late runs) followed by a
    redemption within that many hours (and by ``as_of``) gets an alert and a case
    (high; one per signal). Returns the number of alerts standing for them."""
    code = "refresh_token_reuse"
    within = timedelta(hours=fraud_config.threshold(code, "redemption_within_hours"))
    signals = RiskSignal.objects.filter(
        detector=code, member__isnull=False, alert__isnull=True, occurred_at__gt=as_of - 2 * within,
        occurred_at__lte=as_of,
    ).order_by("pk")  # fmt: skip
    raised_count = 0
    for signal in signals:  # rare: a reused token is a stolen one
        assert signal.member_id is not None
        found = _first_redemption(signal.member_id, signal.occurred_at, min(signal.occurred_at + within, as_of))
        if found is None:
            continue
        reference, at = found
        alert_raise(
            detector=code, subjects=[Subject.member(signal.member_id)],
            facts={**signal.facts, "redemption": reference, "minutes_after": int((at - signal.occurred_at).total_seconds() // 60)},
            occurred_at=at, dedupe_key=f"{signal.dedupe_key}:redemption", severity="high", member_id=signal.member_id,
        )  # fmt: skip
        raised_count += 1
    return raised_count


# --- row 24: enrolment_farm -------------------------------------------------------------


def _in_network(network: str) -> RawSQL:
    return RawSQL("ip << %s::cidr", (network,), output_field=BooleanField())


def enrolment_farm_check(*, member_id: int, device_id: int | None, as_of: datetime) -> list[str]:
    """Row 24: at a new member's login, members enrolled in the last 24 h from the same
    device (its keyed fingerprint) or the same network (their enrolment's address). At
    ``per_day`` (3) or more, an alert (one per device or network and day) whose subject
    is the device or network (a ``client`` keyed by its hash). Returns the keys alerted.

    Not done: FRAUD.md's "earns kept pending" (the ledger's earn path cannot read fraud's
    tables; it needs a hold the ledger owns)."""
    code = "enrolment_farm"
    start = as_of - timedelta(days=1)
    limit = fraud_config.threshold(code, "per_day")
    groups: list[tuple[str, list[int]]] = []
    device = MemberDevice.objects.filter(pk=device_id, member_id=member_id).first() if device_id else None
    if device is not None:
        sharing = (
            MemberDevice.objects.filter(
                fingerprint_hash=device.fingerprint_hash, member__created_at__gt=start, member__created_at__lte=as_of
            )
            .order_by("member_id")
            .values_list("member_id", flat=True)
            .distinct()
        )
        groups.append((f"device:{device.fingerprint_hash[:HASH_CHARS]}", list(sharing)))
    enrolments = MemberSecurityEvent.objects.filter(
        kind="consent_changed", detail__source="enrolment", created_at__gt=start, created_at__lte=as_of
    )
    own = enrolments.filter(member_id=member_id).values_list("ip", flat=True).first()
    if network := network_of(own):
        nearby = (
            enrolments.alias(in_network=_in_network(network))
            .filter(in_network=True, member__isnull=False)
            .order_by("member_id")
            .values_list("member_id", flat=True)
            .distinct()
        )
        groups.append((f"network:{network_hash(network)}", [pk for pk in nearby if pk is not None]))
    alerted = []
    for key, member_ids in groups:
        if len(member_ids) < limit:
            continue
        alert_raise(
            detector=code, subjects=[Subject.client(key)],
            facts={"enrolments_24h": len(member_ids), "member_ids": member_ids[:MAX_LISTED], "via": key.split(":")[0]},
            occurred_at=as_of, dedupe_key=f"{code}:{key}:{_day(as_of)}",
        )  # fmt: skip
        alerted.append(key)
    return alerted


# --- the dispatcher -----------------------------------------------------------------------


def _login(event: MemberSecurityEvent) -> None:
    if event.member_id is None:
        return
    many_ips_check(member_id=event.member_id, as_of=event.created_at)
    enrolled_recently = Member.objects.filter(
        pk=event.member_id, created_at__gt=event.created_at - timedelta(days=1)
    ).exists()
    if enrolled_recently and event.detail.get("new_device"):
        enrolment_farm_check(member_id=event.member_id, device_id=event.detail.get("device_id"), as_of=event.created_at)


EVENT_CHECKS: dict[str, Callable[[MemberSecurityEvent], Any]] = {
    "login": _login,
    "devices_rapid_change": lambda event: devices_rapid_change_check(event=event),
    "impossible_travel": lambda event: impossible_travel_check(event=event),
    "refresh_token_reused": lambda event: refresh_token_reuse_check(event=event),
}


def security_event_assess(*, event_id: int) -> None:
    """Run the account detectors that ``event_id``'s kind feeds (``EVENT_CHECKS``), in one
    transaction: the member is decided once after it commits, whatever the checks raised
    (``fraud.outcomes.decision_queue``). Idempotent: a second run finds what the first
    raised."""
    event = MemberSecurityEvent.objects.filter(pk=event_id).first()
    if event is not None and (check := EVENT_CHECKS.get(event.kind)) is not None:
        with transaction.atomic():
            check(event)


# Batch detectors: code -> callable(as_of) (fraud.detectors.DETECTORS).
DETECTORS: dict[str, Callable[[datetime], Any]] = {
    "refresh_token_reuse": refresh_token_reuse_followups,
}
