"""Tamper-evident logs (COMPLIANCE.md §3): every change, deletion, insertion or reordering of
a chained row, at every position of a small stream, is detected and names the first broken
position, even done as the superuser with the triggers off."""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings

from compliance.anchors import anchor_create, anchor_export, anchor_pins, last_anchor_heads
from compliance.chain import purge_record, rotate, verify_stream
from compliance.models import ChainAnchor, ChainLink
from fraud.models import FraudAlert
from staffauth.models import SecurityEvent
from tests.concurrency import race

N = 6
TABLES = ("staffauth_securityevent", "compliance_chainlink", "compliance_chainhead", "compliance_chainanchor")
POSITIONS = range(1, N + 1)
pytestmark = pytest.mark.django_db


def _events(n: int = N) -> list[SecurityEvent]:
    """``n`` staff security events with ids 10, 20, ... (room for an insert between); the id
    sequence is moved past them, so events the code writes later (an alert's) do not collide."""
    events = [
        SecurityEvent.objects.create(id=10 * i, kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"u{i}", detail={"n": i})
        for i in range(1, n + 1)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(nextval(pg_get_serial_sequence('staffauth_securityevent', 'id'))) FROM generate_series(1, %s)",
            [10 * n + 100],
        )
    return events


def _sql(*statements: str, params=None) -> None:
    """Run as the superuser with every trigger of the tables off (an attacker with DBA rights)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending deferred checks
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        for statement in statements:
            cursor.execute(statement, params)
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def test_untouched_stream_verifies(owner_role):
    _events()
    result = verify_stream("security")
    assert result.ok, result
    assert list(ChainLink.objects.filter(stream="security").order_by("seq").values_list("seq", flat=True)) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def test_the_app_role_cannot_edit_links():
    _events(1)
    with pytest.raises(Exception, match="append-only|permission denied"), transaction.atomic():
        ChainLink.objects.filter(stream="security").update(ref="x")


@pytest.mark.parametrize("position", POSITIONS)
def test_changed_row_detected(owner_role, position):
    _events()
    _sql(f"UPDATE staffauth_securityevent SET username = 'forged' WHERE id = {10 * position}")
    result = verify_stream("security")
    assert (result.first_broken, result.problem) == (position, "row changed")


@pytest.mark.parametrize("position", POSITIONS)
def test_changed_timestamp_detected(owner_role, position):
    _events()
    _sql(f"UPDATE staffauth_securityevent SET created_at = created_at - interval '1 second' WHERE id = {10 * position}")
    assert verify_stream("security").first_broken == position


@pytest.mark.parametrize("position", POSITIONS)
def test_deleted_row_detected(owner_role, position):
    _events()
    _sql(f"DELETE FROM staffauth_securityevent WHERE id = {10 * position}")
    result = verify_stream("security")
    assert (result.first_broken, result.problem) == (position, "row deleted")


@pytest.mark.parametrize("position", POSITIONS)
def test_deleted_row_and_link_detected(owner_role, position):
    _events()
    _sql(
        f"DELETE FROM staffauth_securityevent WHERE id = {10 * position}",
        f"DELETE FROM compliance_chainlink WHERE stream = 'security' AND seq = {position}",
    )
    assert verify_stream("security").first_broken == position


@pytest.mark.parametrize("position", POSITIONS)
def test_inserted_row_detected(owner_role, position):
    """A row slipped in before position ``position`` (no link: written around the chain)."""
    _events()
    _sql(
        "INSERT INTO staffauth_securityevent (id, kind, created_at, username, ip_address, user_agent, detail)"
        f" VALUES ({10 * position - 5}, 'login_failed', now(), 'forged', NULL, '', '{{}}')"
    )
    result = verify_stream("security")
    assert (result.first_broken, result.problem) == (position, "row without a link")


@pytest.mark.parametrize("position", range(1, N))
def test_reordered_rows_detected(owner_role, position):
    """Rows ``position`` and ``position + 1`` swap their contents (ids stay)."""
    _events()
    a, b = 10 * position, 10 * (position + 1)
    _sql(
        f"UPDATE staffauth_securityevent SET username = 'tmp' WHERE id = {a}",
        f"UPDATE staffauth_securityevent SET username = 'u{position}', detail = '{{\"n\": {position}}}' WHERE id = {b}",
        f"UPDATE staffauth_securityevent SET username = 'u{position + 1}', detail = '{{\"n\": {position + 1}}}' WHERE id = {a}",
    )
    assert verify_stream("security").first_broken == position


@pytest.mark.parametrize("position", range(1, N))
def test_reordered_links_detected(owner_role, position):
    _events()
    _sql(
        f"UPDATE compliance_chainlink SET seq = -1 WHERE stream = 'security' AND seq = {position}",
        f"UPDATE compliance_chainlink SET seq = {position} WHERE stream = 'security' AND seq = {position + 1}",
        f"UPDATE compliance_chainlink SET seq = {position + 1} WHERE stream = 'security' AND seq = -1",
    )
    assert verify_stream("security").first_broken == position


@pytest.mark.parametrize("position", POSITIONS)
def test_edited_link_mac_detected(owner_role, position):
    _events()
    _sql(f"UPDATE compliance_chainlink SET mac = sha256(mac) WHERE stream = 'security' AND seq = {position}")
    assert verify_stream("security").first_broken == position


def test_truncated_tail_detected_against_the_anchor(owner_role, tmp_path):
    _events()
    sink = tmp_path / "anchors.jsonl"
    with override_settings(AUDIT_ANCHOR_SINK=f"file://{sink}"):
        anchor_export(anchor_create())
        assert last_anchor_heads()["security"] == N
    # cut the last two rows, their links, and wind the head back: the chain itself is consistent
    _sql(
        "DELETE FROM staffauth_securityevent WHERE id > 40",
        "DELETE FROM compliance_chainlink WHERE stream = 'security' AND seq > 4",
        "UPDATE compliance_chainhead SET seq = 4, chain = (SELECT chain FROM compliance_chainlink"
        " WHERE stream = 'security' AND seq = 4) WHERE stream = 'security'",
        "DELETE FROM compliance_chainanchor",
    )
    assert verify_stream("security").ok  # nothing left inside the database shows it
    assert ChainAnchor.objects.count() == 0
    result = verify_stream("security", anchor_seq=N)
    assert (result.first_broken, result.problem) == (5, "truncated: head short of the last anchor")
    with pytest.raises(CommandError):
        call_command("verify_audit", "--stream", "security", "--anchor", str(sink))


def test_cut_tail_written_over_by_new_links_detected_against_the_anchor(owner_role, tmp_path):
    """The tail is cut after the anchor and the application then appends genuine rows: the head
    climbs past the anchored seq again, but the chain there is not the anchored one."""
    _events()
    sink = tmp_path / "anchors.jsonl"
    with override_settings(AUDIT_ANCHOR_SINK=f"file://{sink}"):
        anchor_export(anchor_create())
    _sql(
        "DELETE FROM staffauth_securityevent WHERE id > 40",
        "DELETE FROM compliance_chainlink WHERE stream = 'security' AND seq > 4",
        "UPDATE compliance_chainhead SET seq = 4, chain = (SELECT chain FROM compliance_chainlink"
        " WHERE stream = 'security' AND seq = 4) WHERE stream = 'security'",
    )
    for i in range(7, 10):  # seq 5, 6, 7: genuine links under the key
        SecurityEvent.objects.create(id=10 * i, kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"u{i}")
    assert verify_stream("security", anchor_seq=N).ok  # the anchored seq alone no longer shows it
    result = verify_stream("security", pins=anchor_pins(str(sink))["security"])
    assert (result.first_broken, result.problem) == (N, "chain differs from the anchored head")
    with pytest.raises(CommandError):
        call_command("verify_audit", "--stream", "security", "--anchor", str(sink))
    with pytest.raises(CommandError):
        call_command("verify_audit", "--stream", "security")  # the anchor kept in the database


def test_forged_anchor_refused(owner_role, tmp_path):
    _events(1)
    sink = tmp_path / "anchors.jsonl"
    anchor = anchor_create()
    body = json.loads(anchor.body)
    body["heads"] = [[s, 0, c] for s, _seq, c in body["heads"]]
    sink.write_text(json.dumps({"body": json.dumps(body), "signature": anchor.signature}) + "\n")
    with pytest.raises(CommandError, match="signature"):
        call_command("verify_audit", "--anchor", str(sink))


def test_failed_verification_records_event_and_alerts(owner_role):
    _events()
    _sql("UPDATE staffauth_securityevent SET username = 'forged' WHERE id = 30")
    with pytest.raises(CommandError):
        call_command("verify_audit", "--stream", "security")
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.AUDIT_CHAIN_BROKEN)
    assert event.detail["broken"] == {"security": {"seq": 3, "problem": "row changed"}}
    assert "forged" not in json.dumps(event.detail)
    assert FraudAlert.objects.filter(kind="audit_chain_broken").count() == 1


def test_purge_record_accepts_exactly_the_purged_rows(owner_role):
    _events()
    with transaction.atomic():
        purge_record("security", ["20", "30"])
        _sql("DELETE FROM staffauth_securityevent WHERE id IN (20, 30)")
    assert verify_stream("security").ok
    # one more row gone, not covered by the record: the first uncovered position fails
    _sql("DELETE FROM staffauth_securityevent WHERE id = 50")
    assert verify_stream("security").first_broken == 5


def test_purge_record_naming_a_present_row_fails(owner_role):
    _events()
    purge_record("security", ["20", "30"])
    _sql("DELETE FROM staffauth_securityevent WHERE id = 20")  # 30 kept: the record lies
    assert verify_stream("security").first_broken == 2


def test_purge_record_refuses_unlinked_refs(owner_role):
    _events(2)
    with pytest.raises(ValueError, match="not linked"):
        purge_record("security", ["20", "999"])


def test_key_rotation_keeps_old_links_verifiable(owner_role):
    """More in test_chain_rotation.py."""
    with override_settings(AUDIT_CHAIN_KEYS=[("k1", "first-key")]):
        _events(3)
    with override_settings(AUDIT_CHAIN_KEYS=[("k1", "first-key"), ("k2", "second-key")]):
        rotate("k2")
    with override_settings(AUDIT_CHAIN_KEYS=[("k2", "second-key"), ("k1", "first-key")]):
        SecurityEvent.objects.create(id=40, kind=SecurityEvent.Kind.LOGIN_FAILED, username="u4")
        assert verify_stream("security").ok
        assert list(ChainLink.objects.filter(stream="security").order_by("seq").values_list("key_id", flat=True)) == [
            "k1",
            "k1",
            "k1",
            "k2",
        ]
    with override_settings(AUDIT_CHAIN_KEYS=[("k2", "second-key")]):  # k1 retired too early
        assert verify_stream("security").problem == "unknown key"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_transaction", [True, False], ids=["in-a-transaction", "autocommit"])
def test_concurrent_inserts_keep_a_gapless_chain(in_transaction):
    """Writers in their own transactions and writers in autocommit (a security event
    recorded outside any transaction): the head's lock spans the append either way."""

    def write(i: int):
        def go():
            for j in range(10):
                with transaction.atomic() if in_transaction else nullcontext():
                    SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"t{i}-{j}")

        return go

    before = ChainLink.objects.filter(stream="security").count()
    race(*(write(i) for i in range(6)))
    seqs = list(ChainLink.objects.filter(stream="security").order_by("seq").values_list("seq", flat=True))
    assert len(seqs) == before + 60
    assert seqs == list(range(1, len(seqs) + 1))
    assert verify_stream("security").ok
