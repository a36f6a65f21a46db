"""verify_ledger: passes on a healthy ledger, names every kind of corruption, and the
journal refuses to be rewritten in the database."""

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from loyalty.models import MemberBalance, PointsLot, Transfer
from loyalty.services import points_hold, points_redeem
from loyalty.tasks import ledger_verify_task
from loyalty.verify import ledger_verify
from staffauth.models import SecurityEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]


@pytest.fixture
def busy_ledger(member, till_actor, earn):
    earn(member, 100)
    earn(member, 50)
    points_redeem(member=member, points=30, actor=till_actor, idempotency_key="r")
    points_hold(member=member, points=20, actor=till_actor, idempotency_key="h")
    return member


def _raw(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _second_resolution_of_a_hold():
    """Two void rows for the open hold, written around the services."""
    hold = Transfer.objects.get(kind="hold")
    for _ in range(2):
        Transfer.objects.create(
            id=uuid.uuid4(), operation=hold.operation, kind="void", debit_account_id=hold.debit_account_id,
            credit_account_id=hold.credit_account_id, amount=hold.amount, pending=hold,
        )  # fmt: skip


def _reversal_beyond_the_original():
    redeem = Transfer.objects.get(kind="redeem")
    Transfer.objects.create(
        id=uuid.uuid4(), operation_id=redeem.operation_id, kind="reverse_redeem", debit_account_id=redeem.credit_account_id,
        credit_account_id=redeem.debit_account_id, amount=redeem.amount + 1, reverses=redeem,
    )  # fmt: skip


def test_a_healthy_ledger_verifies(busy_ledger, capsys):
    call_command("verify_ledger")
    out = capsys.readouterr().out
    assert "every invariant holds" in out and "member counters = journal" in out


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda m: MemberBalance.objects.filter(account__member=m).update(credits_posted=999), "counters"),
        (lambda m: _second_resolution_of_a_hold(), "resolved more than once"),
        (lambda m: _reversal_beyond_the_original(), "reversed beyond its amount"),
        (lambda m: MemberBalance.objects.filter(account__member=m).update(debits_pending=0), "counters"),
        (lambda m: PointsLot.objects.filter(account__member=m).update(remaining=1), "lots hold"),
    ],
)
def test_each_corruption_is_named_and_fails_the_command(busy_ledger, corrupt, expected, capsys):
    corrupt(busy_ledger)
    report = ledger_verify()
    assert not report.ok and any(expected in p for p in report.problems), report.problems
    with pytest.raises(CommandError, match="Ledger verification failed"):
        call_command("verify_ledger")
    assert "MISMATCH" in capsys.readouterr().err


def test_nightly_task_raises_a_security_event_on_failure(busy_ledger):
    assert ledger_verify_task() is True
    MemberBalance.objects.filter(account__member=busy_ledger).update(credits_posted=999)
    assert ledger_verify_task() is False
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.LEDGER_CHECK_FAILED)
    assert event.detail["count"] >= 1


def test_journal_rows_refuse_changes_in_python(busy_ledger):
    transfer = Transfer.objects.first()
    with pytest.raises(TypeError):
        transfer.save()
    with pytest.raises(TypeError):
        transfer.delete()


@pytest.mark.postgres
def test_posted_counters_never_decrease_in_the_database(busy_ledger):
    for column in ("credits_posted", "debits_posted"):
        with pytest.raises(IntegrityError, match="may not decrease"), transaction.atomic():
            _raw(f"UPDATE loyalty_memberbalance SET {column} = {column} - 1", [])


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["loyalty_transfer", "loyalty_lotmovement"])
def test_journal_rows_refuse_update_and_delete_in_the_database(busy_ledger, table):
    before = Transfer.objects.count()
    for sql in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert Transfer.objects.count() == before
