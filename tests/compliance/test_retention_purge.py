"""Retention purges (COMPLIANCE.md §2): boundaries, dry runs, evidence, resumption,
legal holds, and the database's own walls."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from compliance import purge
from compliance.models import LegalHold, RetentionBatch, RetentionRun
from compliance.purge import evidence_report, retention_purge
from compliance.retention import POLICY, cutoff, years_before
from staffauth.models import SecurityEvent
from tests.conftest import APP_ROLE, PURGER_ROLE

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("owner_role")]

RULE = POLICY["security"][0]  # staffauth_securityevent, 3 years


@pytest.fixture(autouse=True)
def purger(settings):
    settings.RETENTION_DB_ROLE = PURGER_ROLE


def event_at(when: datetime) -> int:
    event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="x")
    with transaction.atomic(), connection.cursor() as cursor:  # only the test may age a row
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE staffauth_securityevent SET created_at = %s WHERE id = %s", [when, event.pk])
    return event.pk


def remaining(*pks: int) -> set[int]:
    return set(SecurityEvent.objects.filter(pk__in=pks).values_list("pk", flat=True))


def test_cutoff_is_the_local_day_start_minus_calendar_years_and_29_february_becomes_28():
    assert years_before(datetime(2028, 2, 29).date(), 3) == datetime(2025, 2, 28).date()
    cut = cutoff(RULE, datetime.fromisoformat("2026-12-05T17:30:00+00:00"))  # 01:30 on the 6th in KL
    assert cut.isoformat() == "2023-12-06T00:00:00+08:00"


def test_purge_at_the_exact_boundary(db):
    cut = cutoff(RULE, timezone.now())
    before = event_at(cut - timedelta(seconds=1))
    at = event_at(cut)
    after = event_at(cut + timedelta(seconds=1))
    run = retention_purge(dry_run=False, started_by="test", category="security")
    assert remaining(before, at, after) == {at, after}
    assert run.counts["security"]["staffauth_securityevent"] == 1


def test_a_dry_run_deletes_nothing_and_counts_what_a_purge_deletes(db):
    cut = cutoff(RULE, timezone.now())
    old = [event_at(cut - timedelta(days=i + 1)) for i in range(3)]
    dry = retention_purge(dry_run=True, started_by="test", category="security")
    assert remaining(*old) == set(old)
    assert dry.dry_counts["security"]["staffauth_securityevent"] == 3
    assert not RetentionBatch.objects.exists()
    real = retention_purge(dry_run=False, started_by="test", category="security")
    assert remaining(*old) == set()
    assert (
        real.dry_counts
        == real.counts
        == {"security": {t.table: 3 if t.table == "staffauth_securityevent" else 0 for t in POLICY["security"]}}
    )
    report = evidence_report(real)
    assert report["purged"]["security"]["staffauth_securityevent"] == 3
    assert sum(b.count for b in real.batches.all()) == 3
    assert "username" not in str(report)


def test_a_crashed_run_resumes_without_loss_or_double_counting(db, monkeypatch):
    monkeypatch.setattr(purge, "BATCH_SIZE", 2)
    cut = cutoff(RULE, timezone.now())
    old = [event_at(cut - timedelta(days=i + 1)) for i in range(5)]

    class Crash(Exception):
        pass

    def crash(run, table, count):
        if not run.dry_run and run.progress.get("purge", {}).get(table) not in (None, "done") and count:
            raise Crash

    with pytest.raises(Crash):
        retention_purge(dry_run=False, started_by="test", category="security", after_batch=crash)
    assert len(remaining(*old)) == 3  # one batch of two went, and was recorded
    run = RetentionRun.objects.get()
    assert run.state == RetentionRun.State.RUNNING and run.counts["security"]["staffauth_securityevent"] == 2
    resumed = retention_purge(dry_run=False, started_by="test")
    assert resumed.pk == run.pk and resumed.state == RetentionRun.State.DONE
    assert remaining(*old) == set()
    assert resumed.counts["security"]["staffauth_securityevent"] == 5 == resumed.dry_counts["security"][RULE.table]
    batches = list(resumed.batches.filter(table=RULE.table))
    assert [b.count for b in batches] == [2, 2, 1]
    assert len({b.sha256 for b in batches}) == 3


def test_a_legal_hold_is_honoured(db, make_staff):
    cut = cutoff(RULE, timezone.now())
    held, free = event_at(cut - timedelta(days=2)), event_at(cut - timedelta(days=3))
    officer = make_staff("officer")
    hold = LegalHold.objects.create(
        scope=LegalHold.Scope.RECORD, table_name=RULE.table, record_pk=held, reason="litigation", placed_by=officer
    )
    run = retention_purge(dry_run=False, started_by="test", category="security")
    assert remaining(held, free) == {held}
    assert run.held[RULE.table] == 1
    hold.released_at = timezone.now()
    hold.save()
    retention_purge(dry_run=False, started_by="test", category="security")
    assert remaining(held) == set()


def _refused(role: str, sql: str, params=None) -> str:
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {role}")
        cursor.execute(sql, params)
    return str(info.value)


@pytest.mark.parametrize("table", [rule.table for rules in POLICY.values() for rule in rules if rule.append_only])
def test_the_application_role_may_not_delete_truncate_or_purge(db, table):
    assert "permission denied" in _refused(APP_ROLE, f"DELETE FROM {table}")
    assert "permission denied" in _refused(APP_ROLE, f"TRUNCATE {table}")
    assert "permission denied" in _refused(
        APP_ROLE, "SELECT * FROM loyalty_purge_batch(%s::regclass, now() - interval '50 years', 0, 10, false)", [table]
    )


def test_the_purge_function_deletes_only_expired_rows(db):
    cut = cutoff(RULE, timezone.now())
    recent = event_at(cut + timedelta(hours=1))
    assert "keeps rows for at least" in _refused(
        PURGER_ROLE, "SELECT * FROM loyalty_purge_batch('staffauth_securityevent', now(), 0, 10, false)"
    )
    assert "is not purgeable" in _refused(
        PURGER_ROLE, "SELECT * FROM loyalty_purge_batch('loyalty_transfer', now() - interval '50 years', 0, 10, false)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {PURGER_ROLE}")
        cursor.execute("SELECT purged FROM loyalty_purge_batch('staffauth_securityevent', %s, 0, 10, false)", [cut])
        assert cursor.fetchone() == (0,)
        cursor.execute("RESET ROLE")
    assert remaining(recent) == {recent}


@pytest.mark.parametrize(("role", "status"), [("system_admin", 200), ("program_admin", 200), ("cashier", 403)])
def test_the_evidence_report_downloads_as_json_for_whom_may_read_runs(db, client, staff_by_role, role, status):
    from django.urls import reverse

    from tests.conftest import login_verified

    run = retention_purge(dry_run=True, started_by="test", category="access")
    login_verified(client, staff_by_role[role])
    response = client.get(reverse("admin:compliance_retentionrun_evidence", args=[run.pk]))
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/json"
        assert response.json()["due"] == run.dry_counts


def test_holds_are_placed_and_released_with_a_reason(db, make_staff):
    from compliance.holds import HoldRefused, legal_hold_place, legal_hold_release

    officer = make_staff("officer")
    hold = legal_hold_place(
        actor=officer, hold=LegalHold(scope="record", table_name=RULE.table, record_pk=1, reason="subpoena")
    )
    with pytest.raises(HoldRefused):
        legal_hold_release(actor=officer, hold_id=hold.pk, reason=" ")
    legal_hold_release(actor=officer, hold_id=hold.pk, reason="case closed")
    with pytest.raises(HoldRefused) as info:
        legal_hold_release(actor=officer, hold_id=hold.pk, reason="again")
    assert info.value.code == "legal_hold_already_released"


def _closed_member(store, closed_ago: timedelta):
    from auditlog.models import LogEntry

    from loyalty.kernel.models import Till
    from loyalty.ledger.operations import Actor, points_earn
    from members.models import Member
    from members.services.membership import member_create

    member = member_create(home_store=store, name="Aisha Closed", phone=f"+6012{Member.objects.count():07d}")
    till = Till.objects.create(store=store, code=f"T{member.pk}", key_id=f"k{member.pk}", secret_encrypted="-")
    points_earn(
        member=member, points=50, receipt_ref=f"R{member.pk}", actor=Actor(till=till), idempotency_key=f"c{member.pk}"
    )
    member.status = Member.Status.CLOSED
    member.save()
    entry = LogEntry.objects.get_for_object(member).filter(changes__status__1="closed").get()
    with transaction.atomic(), connection.cursor() as cursor:  # only the test may age the record
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE auditlog_logentry SET timestamp = %s WHERE id = %s", [timezone.now() - closed_ago, entry.pk]
        )
    return member


def test_closed_member_pii_is_shredded_after_the_period_not_before_and_the_ledger_holds(db, store_a, settings):
    from loyalty.ledger.verify import ledger_verify
    from members.models import Member

    days = settings.RETENTION_CLOSED_PII_DAYS
    due = _closed_member(store_a, timedelta(days=days, seconds=60))
    young = _closed_member(store_a, timedelta(days=days, seconds=-60))
    dry = retention_purge(dry_run=True, started_by="test", category="closed_pii")
    assert dry.dry_counts["closed_pii"]["members_member"] == 1
    assert Member.objects.get(pk=due.pk).pii_erased_at is None
    run = retention_purge(dry_run=False, started_by="test", category="closed_pii")
    assert run.counts["closed_pii"]["members_member"] == 1
    assert Member.objects.get(pk=due.pk).pii_erased_at is not None
    assert Member.objects.get(pk=young.pk).pii_erased_at is None
    report = ledger_verify()
    assert report.ok, report


def test_a_member_hold_keeps_a_closed_members_pii(db, store_a, settings, make_staff):
    from members.models import Member

    member = _closed_member(store_a, timedelta(days=settings.RETENTION_CLOSED_PII_DAYS + 5))
    LegalHold.objects.create(scope="member", member=member, reason="dispute", placed_by=make_staff("officer"))
    run = retention_purge(dry_run=False, started_by="test", category="closed_pii")
    assert Member.objects.get(pk=member.pk).pii_erased_at is None
    assert run.held["members_member"] == 1


def test_the_system_category_purges_old_outbox_messages_at_the_boundary(db):
    from loyalty.kernel.models import OutboundMessage

    rule = next(r for r in POLICY["system"] if r.table == "loyalty_outboundmessage")
    cut = cutoff(rule, timezone.now())
    made = []
    for when in (cut - timedelta(seconds=1), cut, cut + timedelta(seconds=1)):
        message = OutboundMessage.objects.create(channel="email", to="x@example.com", subject="s", body="b", topic="t")
        OutboundMessage.objects.filter(pk=message.pk).update(created_at=when)
        made.append(message.pk)
    run = retention_purge(dry_run=False, started_by="test", category="system")
    assert set(OutboundMessage.objects.filter(pk__in=made).values_list("pk", flat=True)) == set(made[1:])
    assert run.counts["system"]["loyalty_outboundmessage"] == 1 == run.dry_counts["system"]["loyalty_outboundmessage"]


def test_purged_rows_leave_a_signed_record_so_the_rest_of_the_chain_still_verifies(db):
    """The purge deletes chained rows with a purge record in the same transaction: the
    security stream verifies after it; a row deleted outside the purge is still found."""
    import time_machine

    from compliance.chain import verify_stream
    from compliance.models import ChainPurge

    cut = cutoff(RULE, timezone.now())
    with time_machine.travel(cut - timedelta(days=2), tick=False):
        old = [SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"o{i}") for i in range(3)]
    kept = [SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username=f"k{i}") for i in range(2)]
    assert verify_stream("security").ok

    retention_purge(dry_run=False, started_by="test", category="security")

    assert not SecurityEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    record = ChainPurge.objects.get(stream="security")
    assert record.count == 3 and record.refs.split("\n") == [str(e.pk) for e in old]
    assert verify_stream("security").ok
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM staffauth_securityevent WHERE id = %s", [kept[0].pk])
    result = verify_stream("security")
    assert (result.ok, result.problem) == (False, "row deleted")


def test_the_access_category_purges_after_two_years_at_the_boundary(db, make_staff, store_a):
    """Access logs (staff views of personal data, access events): 2 years, to the second,
    in the programme's time zone."""
    from compliance.models import AccessEvent
    from members.models import Member, MemberPiiAccess

    rule = next(r for r in POLICY["access"] if r.table == "members_memberpiiaccess")
    assert rule.years == 2
    cut = cutoff(rule, timezone.now())
    assert cut.utcoffset() == timedelta(hours=8)  # local midnight in Kuala Lumpur
    staff = make_staff("viewer", "store_manager", [store_a])
    member = Member.objects.create(home_store=store_a)
    views, events = [], []
    for when in (cut - timedelta(seconds=1), cut, cut + timedelta(seconds=1)):
        view = MemberPiiAccess.objects.create(member=member, staff=staff, field="phone")
        event = AccessEvent.objects.create(kind="member_view", at=when, staff=staff, member=member)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("UPDATE members_memberpiiaccess SET accessed_at = %s WHERE id = %s", [when, view.pk])
        views.append(view.pk)
        events.append(event.pk)
    run = retention_purge(dry_run=False, started_by="test", category="access")
    assert set(MemberPiiAccess.objects.filter(pk__in=views).values_list("pk", flat=True)) == set(views[1:])
    assert set(AccessEvent.objects.filter(pk__in=events).values_list("pk", flat=True)) == set(events[1:])
    assert run.counts["access"]["members_memberpiiaccess"] == 1 == run.counts["access"]["compliance_accessevent"]


def test_the_policy_reads_each_tables_category_from_the_register(monkeypatch):
    from compliance import register, retention

    for category, rules in POLICY.items():
        for rule in rules:
            label = next(label for label in retention.PURGEABLE if rule.table.endswith(label.split(".")[1].lower()))
            assert register.retention_of(label) == category, rule.table
    # a log the register files under the journal's category is refused, not purged early
    monkeypatch.setattr(retention, "_categories", lambda: {"vouchers.VoucherScan": "transaction"})
    with pytest.raises(ValueError, match="register files it under 'transaction'"):
        retention.policy()


def test_a_programme_may_lengthen_a_period_but_not_shorten_it(settings):
    settings.RETENTION_PERIODS = {"security": 5, "access": 1}
    assert next(iter(POLICY["security"])).years == 5
    assert next(iter(POLICY["access"])).years == 2  # the specification's floor
    assert next(iter(POLICY["system"])).years == 1


# --- long-inactive members ---------------------------------------------------------------


def _idle_member(store, *, joined: datetime, name: str = "Idle Member"):
    import time_machine

    from members.services.membership import member_create

    with time_machine.travel(joined, tick=False):
        return member_create(home_store=store, name=name, email=f"{name.split()[0].lower()}@example.com")


def test_an_inactive_member_is_warned_at_24_months_then_closed_30_days_later(db, store_a, settings):
    from compliance.inactive import WARNING_SUBJECT, idle_since
    from compliance.models import InactivityNotice
    from loyalty.kernel.models import OutboundMessage
    from members.models import Member

    settings.RETENTION_CLOSED_PII_DAYS = 90
    now = timezone.now()
    since = idle_since(now)
    idle = _idle_member(store_a, joined=since - timedelta(seconds=1))
    recent = _idle_member(store_a, joined=since + timedelta(seconds=1), name="Recent Joiner")

    dry = retention_purge(dry_run=True, started_by="test", category="inactive")
    assert dry.dry_counts["inactive"] == {"members_to_warn": 1, "accounts_to_close": 0}
    assert not InactivityNotice.objects.exists()  # a dry run writes nothing

    run = retention_purge(dry_run=False, started_by="test", category="inactive")
    assert run.counts["inactive"] == {"members_warned": 1, "accounts_closed": 0, "notices_cancelled": 0}
    notice = InactivityNotice.objects.get()
    assert notice.member == idle and notice.close_after == notice.warned_at + timedelta(days=30)
    assert OutboundMessage.objects.filter(member=idle, subject=WARNING_SUBJECT).count() == 1
    again = retention_purge(dry_run=False, started_by="test", category="inactive")
    assert again.counts["inactive"]["members_warned"] == 0  # warned once

    import time_machine

    with time_machine.travel(notice.close_after - timedelta(seconds=1), tick=False):
        retention_purge(dry_run=False, started_by="test", category="inactive")
    idle.refresh_from_db()
    assert idle.status == Member.Status.ACTIVE
    with time_machine.travel(notice.close_after, tick=False):
        closing = retention_purge(dry_run=False, started_by="test", category="inactive")
    assert closing.counts["inactive"]["accounts_closed"] == 1
    idle.refresh_from_db()
    recent.refresh_from_db()
    assert (idle.status, recent.status) == (Member.Status.CLOSED, Member.Status.ACTIVE)
    # the closure is audited: the closed members' period counts from it
    from compliance.pii import closed_members_due

    assert not closed_members_due(notice.close_after + timedelta(days=89)).filter(pk=idle.pk).exists()
    assert closed_members_due(notice.close_after + timedelta(days=91)).filter(pk=idle.pk).exists()


def test_points_activity_or_a_hold_keeps_an_inactive_member_open(db, store_a, make_staff, earn):
    import time_machine

    from compliance.holds import legal_hold_place
    from compliance.inactive import idle_since
    from compliance.models import InactivityNotice
    from members.models import Member

    now = timezone.now()
    since = idle_since(now)
    with_points = _idle_member(store_a, joined=since - timedelta(days=400), name="Has Points")
    with time_machine.travel(since - timedelta(days=300), tick=False):
        earn(with_points, 100)  # points left: not inactive however old
    from loyalty.ledger.selectors import member_operations

    assert member_operations(member=with_points).get().created_at < since  # the only operation is old
    held = _idle_member(store_a, joined=since - timedelta(days=400), name="Held Member")
    legal_hold_place(
        actor=make_staff("holder", "system_admin"), hold=LegalHold(scope="member", member=held, reason="Claim 7")
    )
    comeback = _idle_member(store_a, joined=since - timedelta(days=400), name="Comes Back")

    retention_purge(dry_run=False, started_by="test", category="inactive")
    assert list(InactivityNotice.objects.values_list("member", flat=True)) == [comeback.pk]
    notice = InactivityNotice.objects.get()
    with time_machine.travel(notice.warned_at + timedelta(days=3), tick=False):
        earn(comeback, 5)
    with time_machine.travel(notice.close_after, tick=False):
        run = retention_purge(dry_run=False, started_by="test", category="inactive")
    assert run.counts["inactive"]["notices_cancelled"] == 1
    notice.refresh_from_db()
    comeback.refresh_from_db()
    assert notice.cancelled_at and comeback.status == Member.Status.ACTIVE
