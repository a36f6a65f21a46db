"""The database roles production runs as, and their grants (PostgreSQL).

Four roles (README, "Database roles"):

- the **owner** owns the tables; migrations run as it (``MIGRATION_DATABASE_URL``);
- the **application** role (the web and worker processes, ``DATABASE_URL``) does not own
  the tables: it may read and insert everywhere, update and delete mutable tables, but
  gets no UPDATE or DELETE on an append-only table and UPDATE of only the named columns
  of a guarded one (``loyalty/append_only.py``), and never TRUNCATE;
- ``loyalty_retention`` (no login) owns the ``SECURITY DEFINER`` function
  ``loyalty_purge`` and holds DELETE on the purgeable tables: the only role the
  append-only triggers let delete;
- the **purger** (the retention worker's login) may only EXECUTE ``loyalty_purge``.

Which tables are append-only or guarded, and which columns a guarded table lets change,
is read from the triggers themselves (``pg_trigger``): the migration that protects a
table is the one place that says so, and the grants follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.backends.base.base import BaseDatabaseWrapper

from loyalty.kernel.append_only import RETENTION_ROLE

PURGE_SIGNATURE = "loyalty_purge(regclass, timestamptz, integer)"
# The retention purge's keyset function (compliance migrations), when installed.
PURGE_BATCH_SIGNATURE = "loyalty_purge_batch(regclass, timestamptz, bigint, integer, boolean)"

_PROTECTED_TABLES_SQL = """
SELECT c.relname, p.proname, encode(t.tgargs, 'escape')
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal
  AND c.relnamespace = current_schema()::regnamespace
  AND p.proname IN ('loyalty_refuse_change', 'loyalty_guard_update')
  AND t.tgtype & 1 = 1
ORDER BY c.relname
"""


@dataclass(frozen=True)
class Protection:
    table: str
    append_only: bool
    purgeable: bool
    mutable_columns: tuple[str, ...] = field(default=())


def protections(connection: BaseDatabaseWrapper) -> list[Protection]:
    """Every append-only or guarded table of the connection's schema, from its triggers."""
    with connection.cursor() as cursor:
        cursor.execute(_PROTECTED_TABLES_SQL)
        rows = cursor.fetchall()
    triggers: dict[str, dict[str, list[str]]] = {}
    for table, function, raw_args in rows:
        args = [arg for arg in raw_args.split("\\000") if arg]
        triggers.setdefault(table, {})[function] = args
    found = []
    for table, functions in triggers.items():
        specs = functions.get("loyalty_guard_update")
        found.append(
            Protection(
                table=table,
                append_only=specs is None,
                purgeable=any("purgeable" in args for args in functions.values()),
                mutable_columns=tuple(spec.split("=", 1)[0].rstrip("!") for spec in specs or ()),
            )
        )
    return found


def _ident(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)


def app_grant_statements(connection: BaseDatabaseWrapper, role: str) -> list[str]:
    """GRANT/REVOKE statements that give ``role`` what the application needs, and no
    more, on the connection's schema. Idempotent: running them again resets the grants."""
    who = _ident(connection, role)
    statements = [
        f"GRANT USAGE ON SCHEMA {_ident(connection, _schema(connection))} TO {who}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {_ident(connection, _schema(connection))} FROM {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {_ident(connection, _schema(connection))} "
        f"TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {_ident(connection, _schema(connection))} TO {who}",
        f"REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {who}",
        f"REVOKE ALL ON FUNCTION {PURGE_SIGNATURE} FROM {who}",
    ]
    for protection in protections(connection):
        table = _ident(connection, protection.table)
        statements.append(f"REVOKE UPDATE, DELETE ON {table} FROM {who}")
        if protection.mutable_columns:
            columns = ", ".join(_ident(connection, column) for column in protection.mutable_columns)
            statements.append(f"GRANT UPDATE ({columns}) ON {table} TO {who}")
    return statements


def retention_grant_statements(connection: BaseDatabaseWrapper, *, purger: str | None) -> list[str]:
    """Hand ``loyalty_purge`` to ``loyalty_retention`` with DELETE on the purgeable
    tables, and let ``purger`` (the retention worker's login) execute it, nothing else."""
    retention = _ident(connection, RETENTION_ROLE)
    schema = _ident(connection, _schema(connection))
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {retention}",
        f"ALTER FUNCTION {PURGE_SIGNATURE} OWNER TO {retention}",
        f"REVOKE ALL ON FUNCTION {PURGE_SIGNATURE} FROM PUBLIC",
    ]
    for protection in protections(connection):
        if protection.purgeable:
            statements.append(f"GRANT SELECT, DELETE ON {_ident(connection, protection.table)} TO {retention}")
    if purger:
        statements += [
            f"GRANT USAGE ON SCHEMA {schema} TO {_ident(connection, purger)}",
            f"GRANT EXECUTE ON FUNCTION {PURGE_SIGNATURE} TO {_ident(connection, purger)}",
        ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [PURGE_BATCH_SIGNATURE])
        batch_function = cursor.fetchone()[0]
    if batch_function:
        statements += [
            f"ALTER FUNCTION {PURGE_BATCH_SIGNATURE} OWNER TO {retention}",
            f"REVOKE ALL ON FUNCTION {PURGE_BATCH_SIGNATURE} FROM PUBLIC",
            f"GRANT SELECT ON {_ident(connection, 'compliance_legalhold')} TO {retention}",
        ]
        if purger:
            statements.append(f"GRANT EXECUTE ON FUNCTION {PURGE_BATCH_SIGNATURE} TO {_ident(connection, purger)}")
    return statements


def role_create_statement(connection: BaseDatabaseWrapper, role: str, *, login: bool) -> str:
    """CREATE ROLE unless it exists (a concurrent creation counts as existing)."""
    literal = role.replace("'", "''")
    return (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{literal}') THEN "
        f"CREATE ROLE {_ident(connection, role)} {'LOGIN' if login else 'NOLOGIN'}; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


def apply(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _schema(connection: BaseDatabaseWrapper) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema: str = cursor.fetchone()[0]
        return schema


def owns_tables(connection: BaseDatabaseWrapper) -> bool:
    """Whether the connection's role owns (or inherits the owner of) the ledger's tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
            "WHERE relname = 'loyalty_transfer' AND relnamespace = current_schema()::regnamespace"
        )
        row = cursor.fetchone()
    return bool(row and row[0])
