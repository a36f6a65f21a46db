"""verify_ledger: passes on a healthy ledger, names every kind of corruption, and the
journal refuses to be rewritten in the database."""

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from loyalty.ledger.models import LedgerOperation, MemberBalance, PointsLot, Transfer
from loyalty.ledger.operations import points_hold, points_redeem
from loyalty.ledger.tasks import ledger_verify_task
from loyalty.ledger.verify import ledger_verify
from members.models import Member
from staffauth.models import SecurityEvent
from tests.db import rewriting_history

# Forging rows takes the superuser (the application cannot: tests/loyalty/test_tamper_proof.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off", "owner_role")]


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
    with rewriting_history():
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


# --- Forgeries by a superuser (issue 11, D2) ----------------------------------------------------
#
# Each forgery is one statement run the way a superuser attacker would: with every
# trigger (the append-only ones included, and those still to come) switched off for it.
# verify_ledger must name the specific problem it leaves behind.


def _forge(sql, params=()):
    with rewriting_history(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def _op(kind, **filters):
    return LedgerOperation.objects.filter(kind=kind, **filters).order_by("created_at").first()


def _issue_forgery(member, staff, store):
    """The statement of the issue: more points, another actor, another store."""
    earn = _op("earn", points=100)
    _forge(
        "UPDATE loyalty_ledgeroperation SET points = points + 5000, actor_staff_id = %s, store_id = %s WHERE id = %s",
        [staff.pk, store.pk, earn.pk],
    )
    return earn


def _transfer_forgery(member, staff, store):
    _forge("UPDATE loyalty_transfer SET amount = amount + 10 WHERE kind = 'redeem'")


def _lot_remaining_forgery(member, staff, store):
    _forge("UPDATE loyalty_pointslot SET remaining = remaining - 5 WHERE earned = 50")


def _lot_earned_forgery(member, staff, store):
    _forge("UPDATE loyalty_pointslot SET earned = earned + 5000 WHERE earned = 100")


def _lot_movement_forgery(member, staff, store):
    _forge(
        "UPDATE loyalty_lotmovement SET delta = delta + 5 WHERE transfer_id = "
        "(SELECT id FROM loyalty_transfer WHERE kind = 'redeem')"
    )


def _balance_forgery(member, staff, store):
    _forge("UPDATE loyalty_memberbalance SET credits_posted = credits_posted + 5000")


def _consistent_forgery(member, staff, store):
    """The 100-point earn made 5,100 in every row it wrote: operation, transfer,
    balance counters, lot and lot movement."""
    earn = _op("earn", points=100)
    transfer = earn.transfers.get()
    for sql, params in [
        ("UPDATE loyalty_ledgeroperation SET points = points + 5000 WHERE id = %s", [earn.pk]),
        ("UPDATE loyalty_transfer SET amount = amount + 5000 WHERE id = %s", [transfer.pk]),
        ("UPDATE loyalty_memberbalance SET credits_posted = credits_posted + 5000", []),
        ("UPDATE loyalty_pointslot SET earned = earned + 5000, remaining = remaining + 5000 WHERE source_id = %s",
         [transfer.pk]),
        ("UPDATE loyalty_lotmovement SET delta = delta + 5000 WHERE transfer_id = %s", [transfer.pk]),
    ]:  # fmt: skip
        _forge(sql, params)
    return earn


def _member_forgery(member, staff, store):
    """The redemption put on another member (who has an account too)."""
    other = Member.objects.create(home_store=store)
    _forge("UPDATE loyalty_ledgeroperation SET member_id = %s WHERE kind = 'redeem'", [other.pk])


def _key_deleted_and_header_forged(member, staff, store):
    """The key's saved copy deleted, then the header rewritten: the transfers still tell."""
    redeem = _op("redeem")
    _forge("DELETE FROM loyalty_idempotencykey WHERE key = 'r'")
    _forge("UPDATE loyalty_ledgeroperation SET points = 3000 WHERE id = %s", [redeem.pk])


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("forge", "expected"),
    [
        pytest.param(
            _issue_forgery,
            [
                "points 5100 != transfers 100",
                "2 actors",
                "store is not its till's",
                "actor is not its key's",
                "points 5100 != its key's 100",
            ],
            id="issue-header",
        ),  # fmt: skip
        pytest.param(
            _transfer_forgery,
            [
                "points 30 != transfers 40",
                "lot movements -30 != -40",
                "counters (150, 30, 20) != journal (150, 40, 20)",
            ],
            id="transfer",
        ),
        pytest.param(
            _lot_remaining_forgery, ["remaining 45, movements 50", "lots hold 95, available 100"], id="lot-remaining"
        ),
        pytest.param(_lot_earned_forgery, ["earned 5100 does not match its source transfer"], id="lot-earned"),
        pytest.param(
            _lot_movement_forgery, ["lot movements -25 != -30", "remaining 50, movements 55"], id="lot-movement"
        ),
        pytest.param(_balance_forgery, ["counters (5150, 30, 20) != journal (150, 30, 20)"], id="balance"),
        pytest.param(_consistent_forgery, ["points 5100 != its key's 100"], id="consistent-earn"),
        pytest.param(
            _member_forgery,
            ["account of another member than its operation's", "member differs from its key's"],
            id="member",
        ),  # fmt: skip
        pytest.param(
            _key_deleted_and_header_forged,
            ["no idempotency key recorded it", "points 3000 != transfers 30"],
            id="key-deleted",
        ),  # fmt: skip
    ],
)
def test_each_forgery_is_named_and_fails_the_command(busy_ledger, make_staff, store_b, forge, expected, capsys):
    assert ledger_verify().ok
    forge(busy_ledger, make_staff("someone", "cashier", stores=[store_b]), store_b)
    problems = ledger_verify(limit_problems=500).problems
    for text in expected:
        assert any(text in problem for problem in problems), (text, problems)
    with pytest.raises(CommandError, match="Ledger verification failed"):
        call_command("verify_ledger")
    assert "MISMATCH" in capsys.readouterr().err


@pytest.mark.postgres
def test_a_forged_adjustment_header_disagrees_with_its_request(raise_request, make_staff, store_b):
    """An adjustment's actor and store are recorded on the request that posted it."""
    request = raise_request(100)
    assert request.operation_id and ledger_verify().ok
    someone = make_staff("someone", "cashier", stores=[store_b])
    _forge(
        "UPDATE loyalty_ledgeroperation SET actor_staff_id = %s, store_id = %s WHERE id = %s",
        [someone.pk, store_b.pk, request.operation_id],
    )
    problems = ledger_verify().problems
    for text in ("store differs from its operation's", "operation actor is not who posted it"):
        assert any(text in problem for problem in problems), (text, problems)
