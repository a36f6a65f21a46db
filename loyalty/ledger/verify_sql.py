"""The set-based checks of ``loyalty.ledger.verify`` as SQL statements (PostgreSQL; SQLite
for `make run` and the suite without services): ``sql_checks()`` gives each check's name
and its statement, one row per item examined with ``problem`` NULL when the item holds."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from loyalty.ledger.models import POSTED_KINDS

# Per transfer kind: the (debit account kind, credit account kind) the write path uses
# (loyalty.services), and the operation kinds that write it.
TRANSFER_SHAPES = {
    "earn": ([("earn", "member")], ["earn", "release"]),
    "reverse_earn": ([("member", "earn")], ["reverse_earn"]),
    "return_shortfall": ([("return_shortfall", "earn")], ["reverse_earn"]),
    "hold": ([("member", "redeem")], ["hold"]),
    "post": ([("member", "redeem")], ["capture"]),
    "void": ([("member", "redeem")], ["void"]),
    "redeem": ([("member", "redeem")], ["redeem"]),
    "reverse_redeem": ([("redeem", "member")], ["reverse_redeem"]),
    "expire": ([("member", "expire")], ["expire"]),
    "adjust": ([("adjust", "member"), ("member", "adjust")], ["adjust"]),
}

# Per operation kind: the kind of the operation it follows up (``related``), if any.
RELATED_KINDS = {
    "release": ["earn"],
    "reverse_earn": ["earn"],
    "capture": ["hold"],
    "void": ["hold"],
    "reverse_redeem": ["capture", "redeem"],
}

# Operations only a scheduled job writes, and the job's name (loyalty.services).
JOB_KINDS = {"release": "pending_release", "expire": "points_expiry"}

# Where the saved response of an operation's key names the operation it follows up.
RESPONSE_RELATED = {"release": "earn_id", "capture": "hold_id", "void": "hold_id", "reverse_redeem": "redemption_id"}


# --- SQL fragments (PostgreSQL; SQLite for `make run` and the suite without services) -----


def _json(column: str, key: str) -> str:
    """A top-level key of a JSON column, as text (numbers too)."""
    if connection.vendor == "postgresql":
        return f"({column} ->> '{key}')"
    return f"CAST(json_extract({column}, '$.{key}') AS TEXT)"


def _uuid_text(column: str) -> str:
    """A UUID column in its canonical text form (as ``str(uuid)`` writes it)."""
    if connection.vendor == "postgresql":
        return f"{column}::text"
    parts = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    return "lower(" + " || '-' || ".join(f"substr({column}, {start}, {length})" for start, length in parts) + ")"


def _text(expression: str) -> str:
    return f"COALESCE(CAST({expression} AS TEXT), 'none')"


def _problems(subject: str, *conditions: tuple[str, str]) -> str:
    """``subject: a; b`` for the conditions (SQL, description) that hold, else NULL."""
    found = " || ".join(f"CASE WHEN {sql} THEN {description} || '; ' ELSE '' END" for sql, description in conditions)
    return f"{subject} || ': ' || rtrim(NULLIF({found}, ''), '; ')"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def _pairs(pairs: Iterable[tuple[str, str]]) -> str:
    return "(" + ", ".join(f"('{a}', '{b}')" for a, b in pairs) + ")"


def _kind_case(column: str, mapping: dict[str, str], default: str) -> str:
    whens = " ".join(f"WHEN '{kind}' THEN {value}" for kind, value in mapping.items())
    return f"CASE {column} {whens} ELSE {default} END"


def sql_checks() -> list[tuple[str, str]]:
    posted = _in(POSTED_KINDS)
    shape = " OR ".join(
        f"(t.kind = '{kind}' AND (d.kind, c.kind) IN {_pairs(pairs)} AND o.kind IN {_in(op_kinds)})"
        for kind, (pairs, op_kinds) in TRANSFER_SHAPES.items()
    )
    related_kind = " OR ".join(
        f"(o.kind = '{kind}' AND r.kind IN {_in(kinds)})" for kind, kinds in RELATED_KINDS.items()
    )
    # The member account a transfer moves points on (none for a return shortfall).
    member_side = "CASE WHEN d.kind = 'member' THEN d.member_id ELSE c.member_id END"
    # What the movements of a transfer add to its lots, by kind.
    lot_delta = _kind_case(
        "t.kind",
        {
            "earn": "t.amount",
            "hold": "-t.amount",
            "redeem": "-t.amount",
            "expire": "-t.amount",
            "reverse_earn": "-t.amount",
            "post": "p.amount - t.amount",
            "void": "t.amount",
            "reverse_redeem": "t.amount",
            "adjust": "CASE WHEN c.kind = 'member' THEN t.amount ELSE -t.amount END",
        },
        "0",
    )
    journal = f"""
        SELECT account_id, sum(credits) AS credits, sum(debits) AS debits, sum(pending) AS pending FROM (
            SELECT credit_account_id AS account_id, amount AS credits, 0 AS debits, 0 AS pending
            FROM loyalty_transfer WHERE kind IN {posted}
            UNION ALL
            SELECT debit_account_id, 0, amount, 0 FROM loyalty_transfer WHERE kind IN {posted}
            UNION ALL
            SELECT h.debit_account_id, 0, 0, h.amount FROM loyalty_transfer h
            WHERE h.kind = 'hold' AND NOT EXISTS (SELECT 1 FROM loyalty_transfer x WHERE x.pending_id = h.id)
        ) legs GROUP BY account_id
    """  # noqa: S608 (static text: names and constants, no input)
    key_op = f"{_json('k.response', 'operation_id')} = {_uuid_text('o.id')}"
    scope = (
        "CASE WHEN o.kind = 'adjust' THEN 'adjustment' "
        "WHEN o.actor_till_id IS NOT NULL THEN 'till:' || CAST(o.actor_till_id AS TEXT) "
        "WHEN o.actor_staff_id IS NOT NULL THEN 'staff:' || CAST(o.actor_staff_id AS TEXT) "
        "WHEN o.actor_job <> '' THEN 'job:' || o.actor_job ELSE 'member' END"
    )
    response_points = (
        f"CASE WHEN o.kind = 'expire' THEN {_json('k.response', 'expired')} ELSE {_json('k.response', 'points')} END"
    )
    response_related = _kind_case(
        "o.kind", {kind: _json("k.response", key) for kind, key in RESPONSE_RELATED.items()}, "NULL"
    )
    actors = (
        "(CASE WHEN o.actor_staff_id IS NULL THEN 0 ELSE 1 END + CASE WHEN o.actor_till_id IS NULL THEN 0 ELSE 1 END"
        " + CASE WHEN o.actor_member THEN 1 ELSE 0 END + CASE WHEN o.actor_job = '' THEN 0 ELSE 1 END)"
    )
    op = "'operation ' || " + _text("o.id")
    return [
        (
            "member counters = journal, no overdraw",
            f"""
            SELECT {
                _problems(
                    "'account ' || CAST(a.id AS TEXT)",
                    ("b.account_id IS NULL", "'no balance row'"),
                    (
                        "b.credits_posted <> COALESCE(j.credits, 0) OR b.debits_posted <> COALESCE(j.debits, 0) "
                        "OR b.debits_pending <> COALESCE(j.pending, 0)",
                        "'counters (' || b.credits_posted || ', ' || b.debits_posted || ', ' || b.debits_pending || ') "
                        "!= journal (' || COALESCE(j.credits, 0) || ', ' || COALESCE(j.debits, 0) || ', ' "
                        "|| COALESCE(j.pending, 0) || ')'",
                    ),
                    ("b.debits_posted + b.debits_pending > b.credits_posted", "'overdrawn'"),
                    (
                        "COALESCE(l.remaining, 0) <> b.credits_posted - b.debits_posted - b.debits_pending",
                        "'lots hold ' || COALESCE(l.remaining, 0) || ', available ' "
                        "|| (b.credits_posted - b.debits_posted - b.debits_pending)",
                    ),
                )
            } AS problem
            FROM loyalty_account a
            LEFT JOIN loyalty_memberbalance b ON b.account_id = a.id
            LEFT JOIN ({journal}) j ON j.account_id = a.id
            LEFT JOIN (SELECT account_id, sum(remaining) AS remaining FROM loyalty_pointslot GROUP BY account_id) l
                ON l.account_id = a.id
            WHERE a.kind = 'member'
            """,  # noqa: S608 (static text: names and constants, no input)
        ),
        (
            "operations = their transfers",
            f"""
            SELECT {
                _problems(
                    op,
                    (
                        "t.legs IS NULL AND NOT ((o.kind = 'earn' AND o.pending_until IS NOT NULL) "
                        "OR (o.kind = 'reverse_earn' AND r.pending_until IS NOT NULL))",
                        "'no transfers'",
                    ),
                    (
                        "o.kind = 'earn' AND o.pending_until IS NOT NULL AND t.legs IS NOT NULL",
                        "'pending earn with transfers'",
                    ),
                    (
                        "t.legs > CASE WHEN o.kind = 'reverse_earn' THEN 2 ELSE 1 END",
                        "CAST(t.legs AS TEXT) || ' transfers'",
                    ),
                    (
                        "t.amount <> o.points",
                        "'points ' || o.points || ' != transfers ' || t.amount",
                    ),
                    (f"{actors} <> 1", f"CAST({actors} AS TEXT) || ' actors'"),
                    (
                        "o.actor_till_id IS NOT NULL AND o.store_id IS DISTINCT FROM ti.store_id",
                        "'store is not its till''s'",
                    ),
                    (
                        "o.kind = 'release' AND o.store_id IS DISTINCT FROM r.store_id",
                        "'store is not its earn''s'",
                    ),
                    (
                        "(o.actor_member OR (o.actor_job <> '' AND o.kind <> 'release')) AND o.store_id IS NOT NULL",
                        "'store without a store actor'",
                    ),
                    (
                        " OR ".join(
                            f"((o.kind = '{kind}') <> (o.actor_job = '{job}'))" for kind, job in JOB_KINDS.items()
                        ),
                        "'actor job does not fit its kind'",
                    ),
                    (
                        f"(o.related_id IS NULL) <> (o.kind NOT IN {_in(RELATED_KINDS)}) "
                        f"OR (o.related_id IS NOT NULL AND NOT ({related_kind}))",
                        "'related operation ' || " + _text("o.related_id") + " || ' does not fit its kind'",
                    ),
                    ("r.member_id <> o.member_id", "'related operation of another member'"),
                    ("o.receipt_ref IS NOT NULL AND o.kind <> 'earn'", "'receipt on a non-earn'"),
                    (
                        "(o.amount_minor IS NOT NULL OR o.item_lines IS NOT NULL OR o.tender_hash <> '') "
                        "AND o.kind NOT IN ('earn', 'reverse_earn')",
                        "'till data on neither a purchase nor a return'",
                    ),
                    (
                        "o.receipt_presented IS NOT NULL AND o.kind <> 'reverse_earn'",
                        "'receipt shown on a non-return'",
                    ),
                    ("o.kind = 'earn' AND o.receipt_ref IS NULL", "'earn without a receipt'"),
                    ("(o.hold_expires_at IS NULL) <> (o.kind <> 'hold')", "'hold lapse time does not fit its kind'"),
                    ("o.pending_until IS NOT NULL AND o.kind <> 'earn'", "'pending time on a non-earn'"),
                )
            } AS problem
            FROM loyalty_ledgeroperation o
            LEFT JOIN loyalty_ledgeroperation r ON r.id = o.related_id
            LEFT JOIN loyalty_till ti ON ti.id = o.actor_till_id
            LEFT JOIN (
                SELECT operation_id, count(*) AS legs, sum(amount) AS amount
                FROM loyalty_transfer GROUP BY operation_id
            ) t ON t.operation_id = o.id
            """,  # noqa: S608 (static text: names and constants, no input)
        ),
        (
            "transfers fit their operations, links and lots",
            f"""
            SELECT {
                _problems(
                    "'transfer ' || " + _text("t.id"),
                    ("o.id IS NULL", "'no operation'"),
                    (f"o.id IS NOT NULL AND NOT ({shape})", "'accounts or operation do not fit its kind'"),
                    (
                        f"t.kind <> 'return_shortfall' AND {member_side} IS DISTINCT FROM o.member_id",
                        "'account of another member than its operation''s'",
                    ),
                    (
                        "t.kind IN ('post', 'void') AND (p.kind IS DISTINCT FROM 'hold' OR p.operation_id IS DISTINCT FROM o.related_id"
                        " OR p.debit_account_id <> t.debit_account_id OR p.credit_account_id <> t.credit_account_id)",
                        "'does not resolve its operation''s hold'",
                    ),
                    ("t.kind = 'void' AND t.amount <> p.amount", "'void of another amount than its hold'"),
                    (
                        "(t.reverses_id IS NOT NULL) <> (t.kind IN ('reverse_earn', 'return_shortfall', 'reverse_redeem'))",
                        "'reversal link does not fit its kind'",
                    ),
                    (
                        "t.kind = 'reverse_redeem' AND (v.kind NOT IN ('post', 'redeem') OR v.operation_id <> o.related_id)",
                        "'does not reverse its operation''s redemption'",
                    ),
                    (
                        "t.kind IN ('reverse_earn', 'return_shortfall') AND (v.kind IS DISTINCT FROM 'earn' "
                        "OR NOT (v.operation_id = o.related_id OR (vo.kind = 'release' AND vo.related_id = o.related_id)))",
                        "'does not reverse its operation''s earn'",
                    ),
                    (
                        f"COALESCE(m.delta, 0) <> {lot_delta}",
                        f"'lot movements ' || COALESCE(m.delta, 0) || ' != ' || ({lot_delta})",
                    ),
                    (
                        "m.lots > 0 AND (m.first_account <> m.last_account OR m.first_account <> "
                        "CASE WHEN d.kind = 'member' THEN d.id ELSE c.id END)",
                        "'lot movements on another account'",
                    ),
                    (
                        "(t.kind = 'earn' OR (t.kind = 'adjust' AND c.kind = 'member')) AND (m.lots IS DISTINCT FROM 1 "
                        "OR m.own_lot IS DISTINCT FROM 1)",
                        "'credit without its one lot'",
                    ),
                )
            } AS problem
            FROM loyalty_transfer t
            LEFT JOIN loyalty_ledgeroperation o ON o.id = t.operation_id
            LEFT JOIN loyalty_account d ON d.id = t.debit_account_id
            LEFT JOIN loyalty_account c ON c.id = t.credit_account_id
            LEFT JOIN loyalty_transfer p ON p.id = t.pending_id
            LEFT JOIN loyalty_transfer v ON v.id = t.reverses_id
            LEFT JOIN loyalty_ledgeroperation vo ON vo.id = v.operation_id
            LEFT JOIN (
                SELECT mv.transfer_id, sum(mv.delta) AS delta, count(*) AS lots,
                    min(l.account_id) AS first_account, max(l.account_id) AS last_account,
                    count(*) FILTER (WHERE l.source_id = mv.transfer_id) AS own_lot
                FROM loyalty_lotmovement mv JOIN loyalty_pointslot l ON l.id = mv.lot_id
                GROUP BY mv.transfer_id
            ) m ON m.transfer_id = t.id
            """,  # noqa: S608 (static text: names and constants, no input)
        ),
        (
            "lots",
            f"""
            SELECT {
                _problems(
                    "'lot ' || CAST(l.id AS TEXT)",
                    (
                        "COALESCE(m.delta, 0) <> l.remaining",
                        "'remaining ' || l.remaining || ', movements ' || COALESCE(m.delta, 0)",
                    ),
                    ("l.remaining < 0 OR l.remaining > l.earned", "'remaining outside 0..earned'"),
                    (
                        "s.id IS NULL OR l.earned <> s.amount OR l.account_id <> s.credit_account_id "
                        "OR s.kind NOT IN ('earn', 'adjust')",
                        "'earned ' || l.earned || ' does not match its source transfer'",
                    ),
                )
            } AS problem
            FROM loyalty_pointslot l
            LEFT JOIN loyalty_transfer s ON s.id = l.source_id
            LEFT JOIN (SELECT lot_id, sum(delta) AS delta FROM loyalty_lotmovement GROUP BY lot_id) m ON m.lot_id = l.id
            """,  # noqa: S608 (static text: names and constants, no input)
        ),
        (
            "operations = their idempotency keys",
            f"""
            SELECT {
                _problems(
                    op,
                    ("k.id IS NULL", "'no idempotency key recorded it'"),
                    (
                        f"k.id IS NOT NULL AND (k.scope <> {scope} OR {actors} <> 1)",
                        "'actor is not its key''s (' || k.scope || ')'",
                    ),
                    ("k.status_code <> 201", "'key saved status ' || k.status_code"),
                    (
                        f"{_json('k.response', 'kind')} IS DISTINCT FROM o.kind AND o.kind <> 'expire'",
                        "'kind differs from its key''s'",
                    ),
                    (
                        f"{response_points} IS DISTINCT FROM CAST(o.points AS TEXT)",
                        f"'points ' || o.points || ' != its key''s ' || {_text(response_points)}",
                    ),
                    (
                        f"o.kind <> 'expire' AND {_json('k.response', 'loyalty_number')} IS DISTINCT FROM mb.loyalty_number",
                        "'member differs from its key''s'",
                    ),
                    (
                        f"o.kind = 'expire' AND {_json('k.response', 'account')} IS DISTINCT FROM CAST(a.id AS TEXT)",
                        "'member differs from its key''s'",
                    ),
                    (
                        f"o.kind = 'earn' AND {_json('k.response', 'receipt_ref')} IS DISTINCT FROM o.receipt_ref",
                        "'receipt differs from its key''s'",
                    ),
                    (
                        f"o.kind = 'reverse_earn' AND {_json('k.response', 'receipt_ref')} IS DISTINCT FROM r.receipt_ref",
                        "'returned receipt differs from its key''s'",
                    ),
                    (
                        f"o.kind IN {_in(RESPONSE_RELATED)} AND {response_related} IS DISTINCT FROM {_uuid_text('o.related_id')}",
                        "'related operation differs from its key''s'",
                    ),
                    (
                        f"o.kind = 'hold' AND {_json('k.response', 'hold_id')} IS DISTINCT FROM {_uuid_text('o.id')}",
                        "'hold differs from its key''s'",
                    ),
                    (
                        f"o.kind = 'adjust' AND {_json('k.response', 'adjustment_ref')} IS DISTINCT FROM k.key",
                        "'adjustment differs from its key''s'",
                    ),
                )
            } AS problem
            FROM loyalty_ledgeroperation o
            JOIN members_member mb ON mb.id = o.member_id
            LEFT JOIN loyalty_account a ON a.member_id = o.member_id
            LEFT JOIN loyalty_ledgeroperation r ON r.id = o.related_id
            LEFT JOIN loyalty_idempotencykey k ON {key_op}
            """,  # noqa: S608 (static text: names and constants, no input)
        ),
        (
            "operations = the records that name them",
            _records_sql(op),
        ),
    ]


def _records_sql(op: str) -> str:
    """Other records written in the same transaction as an operation, each against it:
    the adjustment request that posted it (and its key and posting event), the till
    redemption that took a hold (and its capture), the voucher a redeem paid for, the
    offline redemption a redeem carried out, and the redemption audit that sampled it."""
    key_op = f"{_json('k.response', 'operation_id')} = {_uuid_text('q.operation_id')}"
    return f"""
        SELECT {
        _problems(
            "'adjustment request ' || CAST(q.id AS TEXT)",
            ("o.kind IS DISTINCT FROM 'adjust'", "'posted as ' || " + _text("o.kind")),
            ("o.member_id <> q.member_id", "'member differs from its operation''s'"),
            ("o.points <> abs(q.points)", "'points ' || q.points || ' != its operation''s ' || o.points"),
            (
                "(q.points > 0) <> (t.credit_account_id = a.id)",
                "'direction differs from its operation''s'",
            ),
            ("o.store_id IS DISTINCT FROM q.store_id", "'store differs from its operation''s'"),
            (
                "o.actor_staff_id IS DISTINCT FROM e.actor_id",
                "'operation actor is not who posted it'",
            ),
            ("k.id IS NULL", "'its ledger key does not name its operation'"),
        )
    } AS problem
        FROM loyalty_adjustmentrequest q
        LEFT JOIN loyalty_ledgeroperation o ON o.id = q.operation_id
        LEFT JOIN loyalty_account a ON a.member_id = q.member_id
        LEFT JOIN loyalty_transfer t ON t.operation_id = o.id
        LEFT JOIN loyalty_adjustmentevent e ON e.request_id = q.id AND e.kind = 'posted'
        LEFT JOIN loyalty_idempotencykey k
            ON k.scope = 'adjustment' AND k.key = 'adjustment-request:' || CAST(q.id AS TEXT) AND {key_op}
        WHERE q.state = 'posted'
        UNION ALL
        SELECT {
        _problems(
            "'till redemption ' || CAST(q.id AS TEXT)",
            ("o.kind IS DISTINCT FROM 'hold'", "'hold is ' || " + _text("o.kind")),
            ("o.member_id <> q.member_id", "'member differs from its hold''s'"),
            ("o.points <> q.points", "'points ' || q.points || ' != its hold''s ' || o.points"),
            ("o.actor_till_id IS DISTINCT FROM q.till_id", "'till differs from its hold''s'"),
            ("o.store_id IS DISTINCT FROM q.store_id", "'store differs from its hold''s'"),
            ("(q.captured_at IS NULL) <> (cap.id IS NULL)", "'capture differs from the ledger''s'"),
            (
                "q.captured_points IS DISTINCT FROM cap.points AND cap.id IS NOT NULL",
                "'captured ' || " + _text("q.captured_points") + " || ' != its capture''s ' || cap.points",
            ),
            ("q.voided_at IS NOT NULL AND vd.id IS NULL", "'voided without a void in the ledger'"),
        )
    } AS problem
        FROM vouchers_tillredemption q
        LEFT JOIN loyalty_ledgeroperation o ON o.id = q.hold_operation_id
        LEFT JOIN loyalty_ledgeroperation cap ON cap.related_id = q.hold_operation_id AND cap.kind = 'capture'
        LEFT JOIN loyalty_ledgeroperation vd ON vd.related_id = q.hold_operation_id AND vd.kind = 'void'
        UNION ALL
        SELECT {
        _problems(
            "'voucher ' || " + _text("q.id"),
            ("o.kind IS DISTINCT FROM 'redeem' OR NOT o.actor_member", "'paid by a ' || " + _text("o.kind")),
            ("o.member_id <> q.member_id", "'member differs from its redemption''s'"),
            ("o.points <> q.points_paid", "'points paid ' || q.points_paid || ' != its redemption''s ' || o.points"),
        )
    } AS problem
        FROM vouchers_voucher q
        LEFT JOIN loyalty_ledgeroperation o ON o.id = q.ledger_operation_id
        WHERE q.ledger_operation_id IS NOT NULL
        UNION ALL
        SELECT {
        _problems(
            "'offline redemption ' || " + _text("q.id"),
            ("o.kind IS DISTINCT FROM 'redeem'", "'carried out as ' || " + _text("o.kind")),
            ("o.member_id <> q.member_id", "'member differs from its operation''s'"),
            (
                "o.points IS DISTINCT FROM q.points",
                "'points ' || " + _text("q.points") + " || ' != its operation''s ' || o.points",
            ),
            ("o.store_id IS DISTINCT FROM q.store_id", "'store differs from its operation''s'"),
            ("o.actor_staff_id IS DISTINCT FROM q.decided_by_id", "'operation actor is not who approved it'"),
        )
    } AS problem
        FROM vouchers_pendingredemption q
        LEFT JOIN loyalty_ledgeroperation o ON o.id = q.ledger_operation_id
        WHERE q.ledger_operation_id IS NOT NULL
        UNION ALL
        SELECT {
        _problems(
            "'redemption audit ' || CAST(q.id AS TEXT)",
            ("o.id IS NULL", "'no operation'"),
            ("o.points <> q.points", "'points ' || q.points || ' != its operation''s ' || o.points"),
            ("o.store_id IS DISTINCT FROM q.store_id", "'store differs from its operation''s'"),
        )
    } AS problem
        FROM vouchers_redemptionaudit q
        LEFT JOIN loyalty_ledgeroperation o ON o.id = q.ledger_operation_id
        WHERE q.ledger_operation_id IS NOT NULL
    """  # noqa: S608 (static text: names and constants, no input)
