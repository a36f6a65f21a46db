"""Enumeration (FRAUD.md §1 row 25): a client answered many 404s by the lookups, making
most of its requests there, is answered 429 too_many_not_found for a while and the fraud
team is alerted, with a hashed client id and counts (no address)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from fraud.models import FraudAlert
from loyalty.api import enumeration

pytestmark = pytest.mark.django_db

# The start of a 5-minute window, so a test never straddles two.
WINDOW_START = datetime(2026, 12, 7, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
def frozen_clock():
    with time_machine.travel(WINDOW_START, tick=False) as traveller:
        yield traveller


def not_found(client, n: int, *, address: str = "203.0.113.7"):
    for i in range(n):
        response = client.get(f"/api/v1/pos/no-such-thing-{i}", REMOTE_ADDR=address)
        assert response.status_code == 404, response.status_code


def other(client, n: int, *, address: str = "203.0.113.7"):
    for _ in range(n):
        assert client.get("/api/v1/pos/members/balance", REMOTE_ADDR=address).status_code == 401


def test_one_below_the_threshold_is_not_blocked(client, frozen_clock):
    not_found(client, 19)
    assert client.get("/api/v1/pos/x", REMOTE_ADDR="203.0.113.7").status_code == 404  # the 20th: trips
    assert FraudAlert.objects.filter(kind="enumeration_404").count() == 1


def test_at_the_threshold_the_client_is_blocked_and_alerted(client, frozen_clock):
    not_found(client, 20)
    response = client.get("/api/v1/pos/members/balance", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_not_found"
    assert 15 * 60 - 1 <= int(response["Retry-After"]) <= 15 * 60
    alert = FraudAlert.objects.get(kind="enumeration_404")
    assert alert.severity == "medium"
    assert alert.detail["client_kind"] == "network" and alert.detail["not_found"] == 20
    assert "203.0.113" not in str(alert.detail) and len(alert.detail["client_hash"]) == 32
    # Its signal is on the client (keyed hash, never the address): the client's score and case.
    signal = alert.signals.get()
    assert signal.subject_key == f"client:network:{alert.detail['client_hash']}" and alert.case is not None
    # Another network is not blocked; the same /24 is.
    assert client.get("/api/v1/pos/y", REMOTE_ADDR="198.51.100.9").status_code == 404
    assert client.get("/api/v1/pos/y", REMOTE_ADDR="203.0.113.200").status_code == 429


def test_one_above_the_threshold_stays_blocked_with_one_alert(client, frozen_clock):
    not_found(client, 20)
    for _ in range(3):
        assert client.get("/api/v1/pos/z", REMOTE_ADDR="203.0.113.7").status_code == 429
    assert FraudAlert.objects.filter(kind="enumeration_404").count() == 1


def test_block_ends_after_fifteen_minutes(client, frozen_clock):
    not_found(client, 20)
    frozen_clock.shift(15 * 60 + 1)
    assert client.get("/api/v1/pos/members/balance", REMOTE_ADDR="203.0.113.7").status_code == 401


def test_a_client_mostly_asking_for_things_that_exist_is_not_blocked(client, frozen_clock):
    other(client, 21)
    not_found(client, 20)  # 20 of 41 requests: under half
    assert client.get("/api/v1/pos/a", REMOTE_ADDR="203.0.113.7").status_code == 404  # 21 of 42: half
    assert client.get("/api/v1/pos/b", REMOTE_ADDR="203.0.113.7").status_code == 429


def test_a_hundred_in_an_hour_raise_a_high_alert(client, frozen_clock, settings):
    settings.FRAUD_ENFORCEMENT = {**settings.FRAUD_ENFORCEMENT, "enumeration_404s": 1000}
    for _ in range(5):
        not_found(client, 20)
        frozen_clock.shift(5 * 60)
    high = FraudAlert.objects.filter(kind="enumeration_404", severity="high")
    assert high.count() == 1 and high.get().detail["not_found_hour"] == 100


def test_till_and_member_clients_are_counted_apart_from_the_network(rf, frozen_clock):
    till = enumeration.client_of(rf.get("/api/v1/pos/x", HTTP_X_TILL_KEY="till-1", REMOTE_ADDR="203.0.113.7"))
    network = enumeration.client_of(rf.get("/api/v1/pos/x", REMOTE_ADDR="203.0.113.7"))
    forged = enumeration.client_of(rf.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer forged", REMOTE_ADDR="203.0.113.7"))
    assert (till.kind, network.kind, forged.kind) == ("till", "network", "network")
    assert till.digest != network.digest and forged.digest == network.digest
    assert enumeration.network_of("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
