"""Bulk history for the fraud drill's bench profile (``fraud.drill``, FRAUD.md §5) and
benchmarks: members and old earns written set-wise, so that 100,000 members × 90 days take
minutes, not hours. Not a programme operation: nothing calls it but a drill or a bench on
its own database.

The earns are written as the service writes them (idempotency key, operation, transfer,
lot, movement, balance), so ``verify_ledger`` finds every copy in agreement. Only the
columns an earn had before the till data are named: the newer ones (``item_lines``,
``tender_hash``, ``receipt_presented``) take their database defaults, so the statement
keeps working as ``LedgerOperation`` grows columns with defaults.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection

from loyalty.ledger.models import Account, MemberBalance
from loyalty.ledger.services.core import system_account
from members.models import Member

RECEIPT_PREFIX = "bulk-"


def members_bulk_create(*, store_ids: list[int], count: int, batch: int = 5_000) -> list[int]:
    """``count`` members without personal data (homes round-robin over ``store_ids``), each
    with an account and a balance; returns their ids in creation order."""
    ids: list[int] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        made = Member.objects.bulk_create(
            [Member(home_store_id=store_ids[(start + i) % len(store_ids)]) for i in range(size)]
        )
        accounts = Account.objects.bulk_create([Account(kind=Account.Kind.MEMBER, member=m) for m in made])
        MemberBalance.objects.bulk_create([MemberBalance(account=a) for a in accounts])
        ids.extend(m.pk for m in made)
    return ids


def earns_bulk_history(
    *,
    member_ids: list[int],
    till_of_store: dict[int, int],
    start: datetime,
    days: int,
    visits_per_day: float,
    seed: float,
    basket_minor: int = 4000,
    sigma: float = 0.4,
    chunk: int = 20_000,
) -> int:
    """Earns at the members' home stores' tills over ``days`` days from ``start``: a visit
    a day with probability ``visits_per_day``, baskets around ``basket_minor`` (a
    log-normal-like spread of about ``sigma``), a point per unit, between 10:00 and 20:00.
    ``seed`` (0 to 1) seeds PostgreSQL's ``random()`` so two runs write the same history.
    Returns the number of earns written."""
    earn_account = system_account(Account.Kind.EARN).pk
    # Members enrolled through the services have no points account until their first earn.
    have = set(Account.objects.filter(member_id__in=member_ids).values_list("member_id", flat=True))
    opened = Account.objects.bulk_create(
        [Account(kind=Account.Kind.MEMBER, member_id=pk) for pk in member_ids if pk not in have]
    )
    MemberBalance.objects.bulk_create([MemberBalance(account=a) for a in opened])
    tills = json.dumps({str(store): till for store, till in till_of_store.items()})
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(%s)", [seed])
        for i in range(0, len(member_ids), chunk):
            cur.execute(
                """
                WITH src AS (
                    SELECT a.id AS account_id, m.id AS member_id, m.home_store_id AS store_id, m.loyalty_number,
                        %s::timestamptz + (d || ' days')::interval + interval '10 hours'
                            + (floor(random() * 600) || ' minutes')::interval AS at,
                        greatest(100, floor(exp(ln(%s) + %s * (random() + random() + random() - 1.5)))::bigint)
                            AS amount_minor,
                        gen_random_uuid() AS op_id, gen_random_uuid() AS transfer_id
                    FROM members_member m JOIN loyalty_account a ON a.member_id = m.id
                    CROSS JOIN generate_series(0, %s - 1) AS d
                    WHERE m.id = ANY(%s) AND random() < %s
                ), keys AS (
                    INSERT INTO loyalty_idempotencykey (scope, key, request_hash, status_code, response, created_at)
                    SELECT 'till:' || (%s::jsonb ->> store_id::text), %s || op_id, repeat('x', 64), 201,
                        jsonb_build_object('operation_id', op_id::text, 'kind', 'earn', 'points', amount_minor / 100,
                            'loyalty_number', loyalty_number, 'receipt_ref', %s || op_id), at
                    FROM src
                ), ops AS (
                    INSERT INTO loyalty_ledgeroperation (id, kind, member_id, store_id, points, actor_till_id,
                        actor_member, actor_job, receipt_ref, reason, needs_review, amount_minor, created_at)
                    SELECT op_id, 'earn', member_id, store_id, amount_minor / 100,
                        (%s::jsonb ->> store_id::text)::bigint, false, '', %s || op_id, '', false, amount_minor, at
                    FROM src
                ), transfers AS (
                    INSERT INTO loyalty_transfer (id, operation_id, kind, debit_account_id, credit_account_id,
                        amount, created_at)
                    SELECT transfer_id, op_id, 'earn', %s, account_id, amount_minor / 100, at FROM src
                ), lots AS (
                    INSERT INTO loyalty_pointslot (account_id, source_id, expires_on, earned, remaining)
                    SELECT account_id, transfer_id, (at + interval '365 days')::date, amount_minor / 100,
                        amount_minor / 100
                    FROM src RETURNING id, source_id, earned, account_id
                ), moves AS (
                    INSERT INTO loyalty_lotmovement (transfer_id, lot_id, delta) SELECT source_id, id, earned FROM lots
                )
                UPDATE loyalty_memberbalance b SET credits_posted = credits_posted + t.total
                FROM (SELECT account_id, sum(earned) AS total FROM lots GROUP BY account_id) t
                WHERE b.account_id = t.account_id
                """,
                [start, basket_minor, 2 * sigma, days, member_ids[i : i + chunk], visits_per_day, tills, RECEIPT_PREFIX, RECEIPT_PREFIX,
                 tills, RECEIPT_PREFIX, earn_account],
            )  # fmt: skip
        cur.execute("SELECT count(*) FROM loyalty_ledgeroperation WHERE receipt_ref LIKE %s", [RECEIPT_PREFIX + "%"])
        return int(cur.fetchone()[0])
