"""The queued ledger stream: one queue row per operation, sealed in order; a header edit that
keeps every sum balanced fails verify_ledger (COMPLIANCE.md §3)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from compliance.chain import seal_queue, verify_stream
from compliance.models import ChainLink, ChainQueue
from loyalty.kernel.models import Till
from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.operations import Actor
from members.models import Member
from tests.points import points_giver

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def earn(store_a):
    till = Till.objects.create(store=store_a, code="T1", key_id="till-chain-1", secret_encrypted="-")
    return points_giver(Actor(till=till))


def test_operations_queue_then_seal_in_order(earn, member):
    for points in (10, 20, 30):
        earn(member, points)
    queued = list(ChainQueue.objects.filter(stream="ledger").order_by("id").values_list("ref", flat=True))
    assert len(queued) == 3
    assert verify_stream("ledger").ok
    assert seal_queue() == 3
    assert ChainQueue.objects.count() == 0
    links = list(ChainLink.objects.filter(stream="ledger").order_by("seq").values_list("ref", flat=True))
    assert links[-3:] == queued
    assert verify_stream("ledger").ok


def test_balanced_header_update_fails_verify_ledger(owner_role, earn, member):
    earn(member, 10)
    op = earn(member, 20)
    seal_queue()
    call_command("verify_ledger")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE loyalty_ledgeroperation DISABLE TRIGGER ALL")
        cursor.execute(
            "UPDATE loyalty_ledgeroperation SET reason = 'forged' WHERE created_at = "
            "(SELECT max(created_at) FROM loyalty_ledgeroperation)"
        )
        cursor.execute("ALTER TABLE loyalty_ledgeroperation ENABLE TRIGGER ALL")
    del op
    with pytest.raises(CommandError):
        call_command("verify_ledger")
    assert LedgerOperation.objects.filter(reason="forged").count() == 1
