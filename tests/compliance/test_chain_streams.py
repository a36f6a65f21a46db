"""Every sync stream is linked where its rows are written; checkpoints let a prefix of links
be cut; queued entries left unsealed raise an alert (COMPLIANCE.md §3)."""

from __future__ import annotations

import pytest
from django.db import connection

from compliance.chain import checkpoint, unsealed_older_than, verify_stream
from compliance.models import ChainLink, ChainQueue
from compliance.tasks import chain_unsealed_alert_task
from fraud.models import FraudAlert
from members.models import ConsentRecord, Member, MemberPiiAccess, MemberSecurityEvent
from staffauth.models import SecurityEvent

pytestmark = pytest.mark.django_db


def test_member_streams_are_linked(store_a, make_staff):
    staff = make_staff("reader", "store_manager", [store_a])
    member = Member.objects.create(home_store=store_a)
    MemberSecurityEvent.objects.create(member=member, kind="login", detail={})
    MemberPiiAccess.objects.create(member=member, staff=staff, field="phone")
    ConsentRecord.objects.create(member=member, purpose="marketing", granted=True, version="1", source="staff")
    for stream in ("member-security", "access", "consent", "audit"):
        assert ChainLink.objects.filter(stream=stream).exists(), stream
        assert verify_stream(stream).ok, stream


def test_checkpoint_lets_a_prefix_of_links_be_cut(owner_role):
    for i in range(1, 5):
        SecurityEvent.objects.create(id=i, kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"c{i}")
    checkpoint("security")
    SecurityEvent.objects.create(id=5, kind=SecurityEvent.Kind.LOGIN_FAILED, username="c5")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE compliance_chainlink DISABLE TRIGGER ALL")
        cursor.execute("DELETE FROM compliance_chainlink WHERE stream = 'security' AND seq <= 4")
        cursor.execute("ALTER TABLE compliance_chainlink ENABLE TRIGGER ALL")
    assert verify_stream("security").ok
    # a forged checkpoint (not signed under a chain key) is not trusted
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_chaincheckpoint DISABLE TRIGGER ALL")
        cursor.execute("UPDATE compliance_chaincheckpoint SET mac = sha256(mac)")
        cursor.execute("ALTER TABLE compliance_chaincheckpoint ENABLE TRIGGER ALL")
    assert verify_stream("security").first_broken == 1


def test_unsealed_entries_older_than_five_minutes_alert(owner_role):
    ChainQueue.objects.create(stream="ledger", ref="x")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE compliance_chainqueue SET queued_at = now() - interval '4 minutes 59 seconds'")
    assert unsealed_older_than(5) == 0
    assert chain_unsealed_alert_task() == 0
    with connection.cursor() as cursor:
        cursor.execute("UPDATE compliance_chainqueue SET queued_at = now() - interval '5 minutes 1 second'")
    assert chain_unsealed_alert_task() == 1
    assert FraudAlert.objects.filter(kind="audit_chain_unsealed").count() == 1
