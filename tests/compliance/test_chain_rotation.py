"""Chain key rotation (COMPLIANCE.md §3, issue 15): a new key is introduced by a rotation record
per stream, MAC'd under the previous key (proof that a holder of it introduced the new one) and
under the new key; old links keep verifying under their key id; links under a key no valid
record introduced, or under a key not configured, fail."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from compliance.chain import STREAMS, _rotation_message, _sign, rotate, verify_stream
from compliance.models import ChainLink, ChainRotation
from staffauth.models import SecurityEvent

pytestmark = pytest.mark.django_db

K1 = [("k1", "first-key")]
BOTH_OLD_FIRST = [("k1", "first-key"), ("k2", "second-key")]
BOTH_NEW_FIRST = [("k2", "second-key"), ("k1", "first-key")]


def _event(n: int) -> SecurityEvent:
    return SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"r{n}")


def _key_ids() -> list[str]:
    return list(ChainLink.objects.filter(stream="security").order_by("seq").values_list("key_id", flat=True))


def _as_owner(*statements: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_chainrotation DISABLE TRIGGER ALL")
        for statement in statements:
            cursor.execute(statement, params)
        cursor.execute("ALTER TABLE compliance_chainrotation ENABLE TRIGGER ALL")


def test_rotation_old_links_verify_new_links_use_the_new_key(capsys):
    with override_settings(AUDIT_CHAIN_KEYS=K1):
        for n in range(3):
            _event(n)
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_OLD_FIRST):  # step 1: the new key known, not yet used
        _event(3)
        call_command("rotate_chain_key", "k2")  # step 2
        call_command("rotate_chain_key", "k2")  # twice is harmless
    assert "security: k1 -> k2 at seq 4" in capsys.readouterr().out
    rotations = ChainRotation.objects.filter(key_id="k2")
    assert sorted(rotations.values_list("stream", flat=True)) == sorted(STREAMS)
    assert rotations.get(stream="security").seq == 4
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_NEW_FIRST):  # step 3: the new key first
        _event(4)
        _event(5)
        assert _key_ids() == ["k1", "k1", "k1", "k1", "k2", "k2"]
        for name in STREAMS:
            assert verify_stream(name).ok, name
        capsys.readouterr()
        call_command("verify_audit")
        out = capsys.readouterr().out
        assert re.search(r"^  security: ok, 6 links, head 6, \d+\.\d\d s$", out, re.M), out  # per-stream timing
    with override_settings(AUDIT_CHAIN_KEYS=[("k2", "second-key")]):  # k1 retired while its links live
        result = verify_stream("security")
        assert (result.first_broken, result.problem) == (1, "unknown key")


def test_a_key_used_without_a_rotation_record_fails():
    with override_settings(AUDIT_CHAIN_KEYS=K1):
        _event(0)
        _event(1)
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_NEW_FIRST):  # newest key configured, never rotated in
        _event(2)
        result = verify_stream("security")
        assert (result.first_broken, result.problem) == (3, "key not introduced by a rotation record")
        with pytest.raises(CommandError, match="key_already_in_use"):
            call_command("rotate_chain_key", "k2")


def _record(stream: str, seq: int, new: tuple[str, str], prev: tuple[str, str]) -> ChainRotation:
    """A rotation record with genuine MACs, written directly (``rotate`` would refuse)."""
    chain = bytes(ChainLink.objects.get(stream=stream, seq=seq).chain)
    message = _rotation_message(stream, seq, chain, new[0], prev[0])
    return ChainRotation.objects.create(
        stream=stream,
        seq=seq,
        chain=chain,
        key_id=new[0],
        prev_key_id=prev[0],
        mac_prev=_sign(prev[1].encode(), *message),
        mac_new=_sign(new[1].encode(), *message),
    )


def test_links_before_the_rotation_record_under_the_new_key_fail():
    """The record says from which seq on the key may be used: earlier links under it fail."""
    with override_settings(AUDIT_CHAIN_KEYS=[("k2", "second-key")]):
        _event(0)  # under k2, the stream's first key: needs no record
    with override_settings(AUDIT_CHAIN_KEYS=[("k3", "third-key"), ("k2", "second-key")]):
        _event(1)  # under k3 before its record
        _event(2)
        _record("security", 2, ("k3", "third-key"), ("k2", "second-key"))  # says: k3 from seq 3 on
        result = verify_stream("security")
        assert (result.first_broken, result.problem) == (2, "key not introduced by a rotation record")


def test_unknown_key_refused():
    with override_settings(AUDIT_CHAIN_KEYS=K1), pytest.raises(CommandError, match="key_not_configured"):
        call_command("rotate_chain_key", "k9")


@pytest.mark.parametrize("forgery", ["mac_prev", "mac_new", "chain", "seq"])
def test_forged_or_edited_rotation_record_fails(owner_role, forgery):
    with override_settings(AUDIT_CHAIN_KEYS=K1):
        _event(0)
        _event(1)
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_OLD_FIRST):
        rotate("k2")
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_NEW_FIRST):
        _event(2)
        assert verify_stream("security").ok
        change = {"mac_prev": "mac_prev = sha256(mac_prev)", "mac_new": "mac_new = sha256(mac_new)"}.get(
            forgery, "chain = sha256(chain)" if forgery == "chain" else "seq = 1"
        )
        _as_owner(f"UPDATE compliance_chainrotation SET {change} WHERE stream = 'security'")
        result = verify_stream("security")
        # the MACs cover seq and chain: any edit breaks them; the position is the record's
        expected = 2 if forgery == "seq" else 3
        assert (result.first_broken, result.problem) == (expected, "rotation record signature invalid")


def test_rotation_forged_by_someone_without_the_previous_key_fails(owner_role):
    """k3 is configured (say, by whoever can edit the settings) but its introduction is signed
    with a key that is not the stream's: the record does not count, k3's links fail."""
    with override_settings(AUDIT_CHAIN_KEYS=K1):
        _event(0)
    keys = [("k3", "third-key"), ("kx", "attacker-key"), ("k1", "first-key")]
    with override_settings(AUDIT_CHAIN_KEYS=keys):
        head_chain = bytes(ChainLink.objects.get(stream="security", seq=1).chain)
        message = _rotation_message("security", 1, head_chain, "k3", "kx")
        ChainRotation.objects.create(
            stream="security",
            seq=1,
            chain=head_chain,
            key_id="k3",
            prev_key_id="kx",
            mac_prev=_sign(b"attacker-key", *message),
            mac_new=_sign(b"third-key", *message),
        )
        _event(1)
        result = verify_stream("security")
        assert (result.first_broken, result.problem) == (2, "rotation record not signed by a key of the stream")
        # and a record whose "previous key" MAC is made up fails its signature
        _as_owner("UPDATE compliance_chainrotation SET prev_key_id = 'k1' WHERE stream = 'security'")
        result = verify_stream("security")
        assert (result.first_broken, result.problem) == (2, "rotation record signature invalid")


def test_cutting_links_below_a_rotation_record_is_truncation(owner_role):
    with override_settings(AUDIT_CHAIN_KEYS=K1):
        for n in range(4):
            _event(n)
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_OLD_FIRST):
        rotate("k2")
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for t in ("staffauth_securityevent", "compliance_chainlink", "compliance_chainhead"):
                cursor.execute(f"ALTER TABLE {t} DISABLE TRIGGER ALL")
            cursor.execute(
                "DELETE FROM staffauth_securityevent WHERE id IN"
                " (SELECT ref::bigint FROM compliance_chainlink WHERE stream = 'security' AND seq > 2)"
            )
            cursor.execute("DELETE FROM compliance_chainlink WHERE stream = 'security' AND seq > 2")
            cursor.execute(
                "UPDATE compliance_chainhead SET seq = 2, chain = (SELECT chain FROM compliance_chainlink"
                " WHERE stream = 'security' AND seq = 2) WHERE stream = 'security'"
            )
            for t in ("staffauth_securityevent", "compliance_chainlink", "compliance_chainhead"):
                cursor.execute(f"ALTER TABLE {t} ENABLE TRIGGER ALL")
        result = verify_stream("security")
        assert (result.first_broken, result.problem) == (3, "truncated: head short of a rotation record")


def test_rotating_an_empty_stream():
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_OLD_FIRST):
        rotate("k2")
        assert ChainRotation.objects.get(stream="security", key_id="k2").seq == 0
    with override_settings(AUDIT_CHAIN_KEYS=BOTH_NEW_FIRST):
        _event(0)
        assert verify_stream("security").ok
