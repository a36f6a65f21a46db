"""Tamper evidence on EVERY chained stream (COMPLIANCE.md §3, issue 15): for each stream a short
stream is written through its models (the ledger through its operations, then sealed), and at
every position a row is changed, deleted, forged in with a forged link, or two links swap
places, each as the tables' owner with the triggers off (``ALTER TABLE ... DISABLE TRIGGER
ALL`` or ``session_replication_role = replica``); verification must fail and name that
position (the last row deleted with its link is a cut tail: test_chain.py checks it against
the anchored head). Each case runs in a savepoint rolled back afterwards, so one stream's rows serve
all its cases."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from compliance.chain import STREAMS, ZERO, next_chain, seal_queue, verify_stream
from compliance.models import ChainLink
from loyalty.adjustments.models import AdjustmentEvent, AdjustmentReason, AdjustmentRequest
from loyalty.kernel.models import Till
from loyalty.ledger.operations import Actor
from members.models import ConsentRecord, Member, MemberPiiAccess, MemberSecurityEvent
from staffauth.models import SecurityEvent
from tests.points import points_giver
from tests.reporting import add_figure
from vouchers.models import Reward, Voucher, VoucherRedemption
from vouchers.services.codes import code_generate

pytestmark = pytest.mark.django_db

ROWS = 5

# --- writing a short stream through its models --------------------------------------------------


def _security(ctx) -> None:
    for i in range(ROWS):
        SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"u{i}", detail={"n": i})


def _member_security(ctx) -> None:
    for i in range(ROWS):
        MemberSecurityEvent.objects.create(member=ctx.member, kind="login", detail={"n": i})


def _access(ctx) -> None:
    for field in ("phone", "email", "name", "birth_date", "phone")[:ROWS]:
        MemberPiiAccess.objects.create(member=ctx.member, staff=ctx.staff, field=field)


def _consent(ctx) -> None:
    for i in range(ROWS):
        ConsentRecord.objects.create(
            member=ctx.member, purpose="marketing", granted=i % 2 == 0, version=str(i), source="staff"
        )


def _adjustments(ctx) -> None:
    reason = AdjustmentReason.objects.get_or_create(code="MISSED_EARN", defaults={"label": "Purchase not credited"})[0]
    request = AdjustmentRequest.objects.create(
        member=ctx.member,
        points=100,
        band="direct",
        reason=reason,
        requested_by=ctx.staff,
        expires_at=timezone.now() + timedelta(days=1),
    )
    for i in range(ROWS):
        AdjustmentEvent.objects.create(request=request, kind="requested", actor=ctx.staff, comment=f"c{i}")


def _vouchers(ctx) -> None:
    till = Till.objects.create(store=ctx.store, code="TT", key_id="till-tamper-v", secret_encrypted="-")
    now = timezone.now()
    for i in range(ROWS):
        reward = Reward.objects.create(
            name=f"RM5 off #{i}", kind=Reward.Kind.FIXED_VALUE, value_minor=500, points_price=500
        )
        voucher = Voucher.objects.create(
            code=code_generate(),
            reward=reward,
            member=ctx.member,
            source=Voucher.Source.GOODWILL,
            issued_at=now - timedelta(hours=1),
            expires_at=now + timedelta(days=30),
        )
        VoucherRedemption.objects.create(
            voucher=voucher, till=till, store=ctx.store, staff=ctx.staff, idempotency_key=f"k{i}", redeemed_at=now
        )


def _audit(ctx) -> None:
    for _i in range(ROWS):
        Member.objects.create(home_store=ctx.store)  # auditlog writes a LogEntry


def _ledger(ctx) -> None:
    till = Till.objects.create(store=ctx.store, code="TL", key_id="till-tamper-l", secret_encrypted="-")
    earn = points_giver(Actor(till=till))
    for i in range(ROWS):
        earn(ctx.member, 10 * (i + 1))
    seal_queue()


BUILD: dict[str, Callable] = {
    "security": _security,
    "member-security": _member_security,
    "access": _access,
    "consent": _consent,
    "adjustments": _adjustments,
    "vouchers": _vouchers,
    "audit": _audit,
    "ledger": _ledger,
}

# A chained column changed in place (besides the row's timestamp, which every stream chains).
CONTENT = {
    "security": "username = 'forged'",
    "member-security": "detail = '{\"forged\": 1}'",
    "access": "field = 'forged'",
    "consent": "granted = NOT granted",
    "adjustments": "comment = 'forged'",
    "vouchers": "idempotency_key = 'forged'",
    "audit": "object_pk = 'forged'",
    "ledger": "reason = 'forged'",
}
TIMESTAMP = {
    "security": "created_at",
    "member-security": "created_at",
    "access": "accessed_at",
    "consent": "created_at",
    "adjustments": "created_at",
    "vouchers": "redeemed_at",
    "audit": "timestamp",
    "ledger": "created_at",
}
# What a forged copy of a row must change besides its primary key (the tables' unique columns).
FORGE = {"vouchers": "voucher_id = gen_random_uuid(), idempotency_key = 'forged'", "ledger": "receipt_ref = 'forged'"}


def test_every_stream_has_a_tamper_case():
    assert set(BUILD) == set(STREAMS) == set(CONTENT) == set(TIMESTAMP)


# --- the attacker: the tables' owner with the triggers off ----------------------------------------


@contextmanager
def _attack(stream: str, *, replica: bool = False) -> Iterator:
    """Triggers off on the stream's table and the chain's tables, inside a savepoint that is
    rolled back after the block (the stream's rows serve the next case untouched)."""
    table = STREAMS[stream].model_class()._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if replica:
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            for t in (table, "compliance_chainlink", "compliance_chainhead"):
                cursor.execute(f"ALTER TABLE {t} DISABLE TRIGGER ALL")
        yield cursor, table
        transaction.set_rollback(True)


def _rechain(cursor, stream: str, from_seq: int) -> None:
    """Recompute every chain value from ``from_seq`` on, and the head (no key needed)."""
    cursor.execute("SELECT chain FROM compliance_chainlink WHERE stream = %s AND seq = %s", [stream, from_seq - 1])
    row = cursor.fetchone()
    chain = bytes(row[0]) if row else ZERO
    cursor.execute(
        "SELECT seq, mac FROM compliance_chainlink WHERE stream = %s AND seq >= %s ORDER BY seq", [stream, from_seq]
    )
    seq = from_seq - 1
    for seq, mac in cursor.fetchall():
        chain = next_chain(chain, seq, bytes(mac))
        cursor.execute(
            "UPDATE compliance_chainlink SET chain = %s WHERE stream = %s AND seq = %s", [chain, stream, seq]
        )
    cursor.execute("UPDATE compliance_chainhead SET seq = %s, chain = %s WHERE stream = %s", [seq, chain, stream])


def _shift_links(cursor, stream: str, from_seq: int, by: int) -> None:
    """Move the links from ``from_seq`` on by ``by`` places (through negative seqs: unique)."""
    cursor.execute(
        "UPDATE compliance_chainlink SET seq = -(seq + %s) WHERE stream = %s AND seq >= %s", [by, stream, from_seq]
    )
    cursor.execute("UPDATE compliance_chainlink SET seq = -seq WHERE stream = %s AND seq < 0", [stream])


def _swap(cursor, stream: str, a: int, b: int) -> None:
    cursor.execute("UPDATE compliance_chainlink SET seq = -1 WHERE stream = %s AND seq = %s", [stream, a])
    cursor.execute("UPDATE compliance_chainlink SET seq = %s WHERE stream = %s AND seq = %s", [a, stream, b])
    cursor.execute("UPDATE compliance_chainlink SET seq = %s WHERE stream = %s AND seq = -1", [b, stream])


def _forge_row(cursor, stream: str, table: str, ref: str) -> str:
    """A copy of the row ``ref`` under a new primary key (what a forger would write)."""
    model = STREAMS[stream].model_class()
    pk = model._meta.pk.column
    new = str(uuid.uuid4()) if model._meta.pk.get_internal_type() == "UUIDField" else str(10**9 + int(ref))
    sets = ", ".join(filter(None, [f"{pk} = %s", FORGE.get(stream)]))
    cursor.execute(f"CREATE TEMP TABLE forged AS SELECT * FROM {table} WHERE {pk} = %s", [ref])  # noqa: S608
    cursor.execute(f"UPDATE forged SET {sets}", [new])  # noqa: S608
    cursor.execute(f"INSERT INTO {table} SELECT * FROM forged")  # noqa: S608
    cursor.execute("DROP TABLE forged")
    return new


# --- the cases -------------------------------------------------------------------------------------


def _cases(stream: str, seq: int, ref: str, n: int):
    """``(name, attack, expected first_broken)`` for position ``seq`` of ``n``."""
    pk = STREAMS[stream].model_class()._meta.pk.column

    def change_content(cursor, table):
        cursor.execute(f"UPDATE {table} SET {CONTENT[stream]} WHERE {pk} = %s", [ref])  # noqa: S608

    def change_time(cursor, table):
        ts = TIMESTAMP[stream]
        cursor.execute(f"UPDATE {table} SET {ts} = {ts} - interval '1 second' WHERE {pk} = %s", [ref])  # noqa: S608

    def delete_row(cursor, table):
        cursor.execute(f"DELETE FROM {table} WHERE {pk} = %s", [ref])  # noqa: S608

    def delete_row_and_link(cursor, table):
        delete_row(cursor, table)
        cursor.execute("DELETE FROM compliance_chainlink WHERE stream = %s AND seq = %s", [stream, seq])

    def forged_row_and_link(cursor, table):
        """A forged row slipped in at this position, its link made up (no key: a random MAC),
        the links after it moved up one place and every chain value after it recomputed."""
        new = _forge_row(cursor, stream, table, ref)
        _shift_links(cursor, stream, seq, 1)
        cursor.execute(
            "INSERT INTO compliance_chainlink (stream, seq, ref, key_id, mac, chain)"
            " SELECT stream, %s, %s, key_id, %s, chain FROM compliance_chainlink WHERE stream = %s AND seq = %s",
            [seq, new, hashlib.sha256(os.urandom(16)).digest(), stream, seq + 1],
        )
        _rechain(cursor, stream, seq)

    def swap_links(cursor, table):
        _swap(cursor, stream, seq, seq + 1)

    def swap_links_rechained(cursor, table):
        """Swapped, and every chain value from here on recomputed (the chain is unkeyed): the
        MACs, which cover the position, give it away."""
        _swap(cursor, stream, seq, seq + 1)
        _rechain(cursor, stream, seq)

    def delete_row_and_link_renumbered(cursor, table):
        """The row and its link gone, the later links moved down and rechained."""
        delete_row_and_link(cursor, table)
        _shift_links(cursor, stream, seq + 1, -1)
        _rechain(cursor, stream, seq)

    cases = [
        ("change a chained column", change_content, seq, False),
        ("change the timestamp", change_time, seq, False),
        ("delete the row", delete_row, seq, False),
        ("delete the row (replica role)", delete_row, seq, True),
        ("delete the row and its link", delete_row_and_link, seq, False),
        ("insert a forged row with a forged link", forged_row_and_link, seq, False),
        ("change a chained column (replica role)", change_content, seq, True),
    ]
    if seq < n:
        cases += [
            ("swap this link with the next", swap_links, seq, False),
            ("swap this link with the next, chain recomputed", swap_links_rechained, seq, False),
            ("delete the row and its link, later links renumbered", delete_row_and_link_renumbered, seq, False),
        ]
    return cases


@pytest.mark.parametrize("stream", list(STREAMS))
def test_every_tampering_at_every_position_is_detected(owner_role, settings, store_a, make_staff, stream):
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)  # five earns in a row

    class Ctx:
        store = store_a
        staff = make_staff("tamper", "store_manager", [store_a])
        member = Member.objects.create(home_store=store_a)

    BUILD[stream](Ctx)
    assert verify_stream(stream).ok
    links = list(ChainLink.objects.filter(stream=stream).order_by("seq").values_list("seq", "ref"))
    assert len(links) >= ROWS and [s for s, _r in links] == list(range(1, len(links) + 1))
    total, missed = 0, []
    for seq, ref in links:
        for name, attack, expected, replica in _cases(stream, seq, ref, len(links)):
            with _attack(stream, replica=replica) as (cursor, table):
                attack(cursor, table)
                result = verify_stream(stream)
            total += 1
            if result.first_broken != expected:
                missed.append((seq, name, result.first_broken, result.problem))
        assert verify_stream(stream).ok  # every attack rolled back
    add_figure("chain tamper cases (all streams, every position)", total)
    add_figure("chain tamper cases detected at the right position", total - len(missed))
    assert not missed, missed
