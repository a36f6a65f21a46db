"""Records of what happened cannot be rewritten (issue 11, D1 and D2).

Each tamper attempt runs under a real PostgreSQL role: the application's (``loyalty_app``,
with the grants ``manage.py db_roles`` gives it, which the whole suite runs as), and a
role granted too much (every privilege on every table, still not the owner), to prove
the triggers hold by themselves. The tests start as the owner (``owner_role``) so that
they can switch roles and set up old rows.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from fraud.models import FraudAlert
from loyalty.adjustments.models import AdjustmentRequest
from loyalty.adjustments.services import adjustment_approve
from loyalty.kernel import dbroles
from loyalty.kernel.append_only import PURGE_FLOORS
from loyalty.ledger.models import IdempotencyKey, LedgerOperation, PointsLot
from members.models import ConsentRecord
from staffauth.models import SecurityEvent
from tests.conftest import APP_ROLE, PURGER_ROLE

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("owner_role")]

TAMPER_ROLE = f"loyalty_tamper_{os.getpid()}"

# What the issue found rewritable or deletable, and must not be.
RECORDS = [
    "loyalty_ledgeroperation",
    "loyalty_transfer",
    "loyalty_lotmovement",
    "loyalty_pointslot",
    "loyalty_memberbalance",
    "loyalty_idempotencykey",
    "loyalty_adjustmentrequest",
    "loyalty_adjustmentevent",
    "auditlog_logentry",
    "vouchers_voucherredemption",
    "vouchers_tillredemption",
    "vouchers_voucherscan",
    "fraud_fraudalert",
    "staffauth_securityevent",
    "members_membersecurityevent",
    "members_memberpiiaccess",
    "members_consentrecord",
]


@pytest.fixture
def tamper_role(db):
    """A role granted every privilege on every table (a mistake, or a stolen grant): not the
    owner. Created inside the test's transaction, so it goes with the rollback."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {TAMPER_ROLE} NOLOGIN")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {TAMPER_ROLE}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {TAMPER_ROLE}")
    return TAMPER_ROLE


def run_as(role: str, *statements: str | tuple[str, list]) -> None:
    """Run ``statements`` as ``role`` in a savepoint, with deferred checks made at once
    (as at commit). Raises what the database raised; the role ends with the savepoint."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the setup's deferred checks, done
        cursor.execute(f"SET LOCAL ROLE {role}")
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, None)
            cursor.execute(sql, params)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("RESET ROLE")


def refused(role: str, *statements) -> str:
    with pytest.raises(DatabaseError) as info:
        run_as(role, *statements)
    return str(info.value)


@pytest.fixture
def history(member, earn, staff, raise_request, store_b):
    """One of each record: an earn (operation, transfer, lot, movement, balance, key),
    a posted adjustment with its events, a consent, a security event, an audit entry
    and a fraud alert."""
    earn(member, 800)
    request = raise_request(600)
    adjustment_approve(actor=staff["program_admin"], request_id=request.pk, comment="ok")
    ConsentRecord.objects.create(member=member, purpose="analytics", granted=True, version="v1", source="member")
    SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="someone")
    store_b.name = "Renamed"
    store_b.save()  # an auditlog entry
    FraudAlert.objects.create(kind="test_alert", member=member, detail={"count": 3})
    request.refresh_from_db()
    assert request.state == AdjustmentRequest.State.POSTED
    return {"member": member, "request": request, "other_store": store_b, "staff": staff}


def test_the_application_role_owns_nothing(db):
    assert dbroles.owns_tables(connection)  # this module's tests start as the owner
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {APP_ROLE}")
        assert not dbroles.owns_tables(connection)
        cursor.execute("RESET ROLE")


def test_every_record_is_protected_by_a_trigger(db):
    protected = {protection.table for protection in dbroles.protections(connection)}
    assert set(RECORDS) <= protected, sorted(set(RECORDS) - protected)


@pytest.mark.parametrize(
    "table", ["staffauth_securityevent", "loyalty_transfer", "loyalty_ledgeroperation", "members_consentrecord"]
)
def test_a_session_setting_no_longer_opens_a_record_to_delete(history, tamper_role, table):
    # The attack of the issue: SET LOCAL loyalty.allow_purge = 'on', then DELETE.
    setting = "SET LOCAL loyalty.allow_purge = 'on'"
    assert "append-only: DELETE refused" in refused(tamper_role, setting, f"DELETE FROM {table}")
    assert "permission denied" in refused(APP_ROLE, setting, f"DELETE FROM {table}")


@pytest.mark.parametrize(
    "table", ["loyalty_transfer", "staffauth_securityevent", "auditlog_logentry", "fraud_fraudalert"]
)
def test_truncate_is_refused_to_all_but_the_owner(history, tamper_role, table):
    assert "TRUNCATE refused" in refused(tamper_role, f"TRUNCATE {table} CASCADE")
    assert "permission denied" in refused(APP_ROLE, f"TRUNCATE {table} CASCADE")


def _forgeries(history) -> dict[str, list]:
    member, request, staff = history["member"], history["request"], history["staff"]
    operation = LedgerOperation.objects.filter(member=member, kind="earn").first()
    lot = PointsLot.objects.filter(source__operation=operation).first()
    key = IdempotencyKey.objects.filter(status_code=201).first()
    alert = FraudAlert.objects.get(kind="test_alert")
    return {
        # The forgery of an operation header.
        "operation header": [
            (
                "UPDATE loyalty_ledgeroperation SET points = points + 5000, actor_staff_id = %s, store_id = %s "
                "WHERE id = %s",
                [staff["cashier"].pk, history["other_store"].pk, operation.pk],
            )
        ],
        "lot earned": [("UPDATE loyalty_pointslot SET earned = earned + 5000 WHERE id = %s", [lot.pk])],
        # remaining may change, but only with movements that account for it (checked at commit)
        "lot remaining without a movement": [
            ("UPDATE loyalty_pointslot SET remaining = remaining - 1 WHERE id = %s", [lot.pk])
        ],
        "lot deleted": [("DELETE FROM loyalty_pointslot WHERE id = %s", [lot.pk])],
        "balance moved to another account": [
            (
                "UPDATE loyalty_memberbalance SET account_id = account_id + 100000 WHERE account_id = %s",
                [lot.account_id],
            )
        ],
        "balance deleted": [("DELETE FROM loyalty_memberbalance WHERE account_id = %s", [lot.account_id])],
        "saved answer rewritten": [("UPDATE loyalty_idempotencykey SET response = '{}' WHERE id = %s", [key.pk])],
        "saved request rewritten": [("UPDATE loyalty_idempotencykey SET request_hash = 'x' WHERE id = %s", [key.pk])],
        "adjustment points": [
            ("UPDATE loyalty_adjustmentrequest SET points = points * 10 WHERE id = %s", [request.pk])
        ],
        "adjustment reopened": [
            ("UPDATE loyalty_adjustmentrequest SET state = 'pending', operation_id = NULL WHERE id = %s", [request.pk])
        ],
        "adjustment approver": [
            (
                "UPDATE loyalty_adjustmentrequest SET approved_by_id = %s WHERE id = %s",
                [staff["store_manager"].pk, request.pk],
            )
        ],
        "adjustment event": [
            ("UPDATE loyalty_adjustmentevent SET comment = 'forged' WHERE request_id = %s", [request.pk])
        ],
        "audit entry": [("UPDATE auditlog_logentry SET changes_text = 'forged'", None)],
        "audit entry deleted": [("DELETE FROM auditlog_logentry", None)],
        "fraud alert facts": [
            ("UPDATE fraud_fraudalert SET detail = '{}', member_id = NULL WHERE id = %s", [alert.pk])
        ],
        "fraud alert deleted": [("DELETE FROM fraud_fraudalert WHERE id = %s", [alert.pk])],
    }


FORGERIES = [
    "operation header",
    "lot earned",
    "lot remaining without a movement",
    "lot deleted",
    "balance moved to another account",
    "balance deleted",
    "saved answer rewritten",
    "saved request rewritten",
    "adjustment points",
    "adjustment reopened",
    "adjustment approver",
    "adjustment event",
    "audit entry",
    "audit entry deleted",
    "fraud alert facts",
    "fraud alert deleted",
]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_record_cannot_be_rewritten_by_the_application_role(history, forgery):
    # Refused by its grants, or, for a column the application may change, by its rule.
    message = refused(APP_ROLE, *_forgeries(history)[forgery])
    assert "permission denied" in message or "refused" in message or "differs from its movements" in message, message


def test_a_lot_rewritten_by_the_application_role_fails_at_commit(history):
    # The application may change remaining (spending does), but not without the movement.
    lot = PointsLot.objects.filter(account__member=history["member"]).first()
    message = refused(APP_ROLE, ("UPDATE loyalty_pointslot SET remaining = remaining - 1 WHERE id = %s", [lot.pk]))
    assert "differs from its movements" in message


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_record_cannot_be_rewritten_even_by_a_role_granted_everything(history, tamper_role, forgery):
    message = refused(tamper_role, *_forgeries(history)[forgery])
    assert "refused" in message or "differs from its movements" in message, message


def test_what_may_change_changes_by_its_rules_only(history, tamper_role):
    alert = FraudAlert.objects.get(kind="test_alert")
    closer = history["staff"]["fraud_analyst"]
    run_as(
        APP_ROLE,
        (
            "UPDATE fraud_fraudalert SET status = 'closed', closed_at = now(), closed_by_id = %s WHERE id = %s",
            [closer.pk, alert.pk],
        ),
    )
    alert.refresh_from_db()
    assert alert.status == "closed" and alert.closed_by == closer
    request = history["request"]
    # A posted request stays posted; a pending one may only move forwards.
    assert "posted to pending refused" in refused(
        tamper_role, ("UPDATE loyalty_adjustmentrequest SET state = 'pending' WHERE id = %s", [request.pk])
    )


def test_the_application_role_has_exactly_the_privileges_its_tables_allow(db):
    with connection.cursor() as cursor:
        for protection in dbroles.protections(connection):
            cursor.execute(
                "SELECT has_table_privilege(%s, %s, 'INSERT'), has_table_privilege(%s, %s, 'UPDATE'), "
                "has_table_privilege(%s, %s, 'DELETE'), has_table_privilege(%s, %s, 'TRUNCATE')",
                [APP_ROLE, protection.table] * 4,
            )
            assert cursor.fetchone() == (True, False, False, False), protection.table
            cursor.execute(
                "SELECT attname, has_column_privilege(%s, attrelid, attnum, 'UPDATE') FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [APP_ROLE, protection.table],
            )
            updatable = {name for name, allowed in cursor.fetchall() if allowed}
            assert updatable == set(protection.mutable_columns), protection.table
        cursor.execute(
            "SELECT has_table_privilege(%s, 'loyalty_outboundmessage', 'UPDATE'), "
            "has_function_privilege(%s, 'loyalty_purge(regclass, timestamptz, integer)', 'EXECUTE'), "
            "has_function_privilege(%s, 'loyalty_purge(regclass, timestamptz, integer)', 'EXECUTE')",
            [APP_ROLE, APP_ROLE, PURGER_ROLE],
        )
        assert cursor.fetchone() == (True, False, True)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE loyalty_transfer DISABLE TRIGGER loyalty_transfer_append_only",
        "DROP TRIGGER loyalty_ledgeroperation_append_only ON loyalty_ledgeroperation",
        "CREATE OR REPLACE FUNCTION loyalty_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "SET session_replication_role = replica",
        "SELECT loyalty_purge('staffauth_securityevent', now() - interval '10 years', 10)",
    ],
)
def test_the_application_role_cannot_switch_the_protection_off(db, statement):
    message = refused(APP_ROLE, statement)
    assert "must be owner" in message or "permission denied" in message, message


def _old_security_event(age: timedelta) -> int:
    event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="old")
    with transaction.atomic(), connection.cursor() as cursor:  # as the superuser: only the test may age a row
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE staffauth_securityevent SET created_at = %s WHERE id = %s", [timezone.now() - age, event.pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    return event.pk


def test_the_purge_path_deletes_only_rows_past_their_floor(db):
    floor_years = int(PURGE_FLOORS["staffauth_securityevent"][1].split()[0])
    old = _old_security_event(timedelta(days=366 * floor_years + 60))
    recent = SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="recent").pk
    cutoff = timezone.now() - timedelta(days=366 * floor_years + 30)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {PURGER_ROLE}")
        cursor.execute("SELECT loyalty_purge('staffauth_securityevent', %s, 1000)", [cutoff])
        assert cursor.fetchone() == (1,)
        cursor.execute("RESET ROLE")
    assert set(SecurityEvent.objects.filter(pk__in=[old, recent]).values_list("pk", flat=True)) == {recent}
    # Nor can the purger ask for a cutoff inside the retention period, or for the journal.
    assert "keeps rows for at least" in refused(
        PURGER_ROLE, "SELECT loyalty_purge('staffauth_securityevent', now(), 10)"
    )
    assert "is not purgeable" in refused(
        PURGER_ROLE, "SELECT loyalty_purge('loyalty_transfer', now() - interval '50 years', 10)"
    )
    # And the purger may not delete by itself.
    assert "permission denied" in refused(PURGER_ROLE, "DELETE FROM staffauth_securityevent")
