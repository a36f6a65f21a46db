"""Plain SQL for the ledger's hot path, without Django's query compiler.

Measured on the 2-core machine: an ORM query costs about 0.9 ms, nearly all of it
Python building the SQL, against about 0.13 ms for the same round trip through a
Django cursor. An earn made a dozen of them. The write path therefore states its few
statements directly; the rules stay in Python (``loyalty.ledger.policy``), and the database's
constraints and triggers judge every row exactly as they judge ORM writes.

The statements are portable (PostgreSQL and the SQLite of ``make run``) except where a
caller asks for a PostgreSQL-only form (``FOR UPDATE``, data-modifying CTEs).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections, models

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

# Query parameters, as the DB-API takes them.
Params = list[Any] | tuple[Any, ...]


def _db() -> BaseDatabaseWrapper:
    """The real connection (``django.db.connection`` is a proxy: every attribute is a
    lookup in thread- and task-local storage, which the hot path would pay dozens of
    times an operation)."""
    return connections[DEFAULT_DB_ALIAS]


def _cursor(db: BaseDatabaseWrapper) -> CursorWrapper:
    """A Django cursor; on PostgreSQL one that prepares its statements.

    Planning costs more than executing these statements (about 0.5 ms against 0.1 ms for
    the earn rules' query), and they are the same few texts every time, so each
    connection plans them once. Django leaves psycopg's prepared statements off for
    connection poolers' sake: ``DATABASE_PREPARED_STATEMENTS=0`` does the same here,
    for a pooler that cannot hold them (PgBouncer in transaction mode before 1.21).
    The wrapper is Django's own, so errors and execute wrappers behave as for any
    other query.
    """
    db.ensure_connection()
    if db.vendor != "postgresql" or db.connection.prepare_threshold is None:
        return db.cursor()
    if db.queries_logged:
        # DEBUG or a test capturing queries: the logged text needs client-side binding.
        return db.cursor()
    return db.make_cursor(_prepared_cursor_class()(db.connection))


@functools.cache
def _prepared_cursor_class() -> type[Any]:
    # django-stubs 5.2.9 does not declare ServerBindingCursor (psycopg 3 only), so the
    # class is Any to mypy: the two ignores below are that gap in the stubs, nothing else.
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    class PreparedCursor(ServerBindingCursor):  # type: ignore[misc]
        def execute(
            self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
        ) -> Any:
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparedCursor


def fetchone(sql: str, params: Params = ()) -> tuple[Any, ...] | None:
    with _cursor(_db()) as cursor:
        cursor.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


def execute(sql: str, params: Params = ()) -> int:
    """Run a statement; returns the row count."""
    with _cursor(_db()) as cursor:
        cursor.execute(sql, params)
        rowcount: int = cursor.rowcount
        return rowcount


def when(value: datetime) -> object:
    """A timezone-aware datetime as the backend stores it (SQLite keeps text)."""
    return _db().ops.adapt_datetimefield_value(value)


def for_update(of: str) -> str:
    """The row-lock clause where the backend has row locks (SQLite locks the whole
    database for a write transaction, so it needs none)."""
    return f" FOR UPDATE OF {of}" if _db().features.has_select_for_update_of else ""


def insert(
    instance: models.Model, *, returning: str = "", expressions: dict[str, tuple[str, list[Any]]] | None = None
) -> tuple[str, list[Any]]:
    """``INSERT`` for an unsaved model instance, with the values the ORM would send
    (defaults, ``auto_now_add``, type adaptation). An auto primary key left unset is
    left to the database. ``expressions`` gives some columns an SQL expression with its
    own parameters instead (e.g. a scalar subquery)."""
    expressions = expressions or {}
    db = _db()
    model = type(instance)
    pk_from_database = getattr(instance, model._meta.pk.attname) is None
    values: list[Any] = []
    for f in _insert_fields(model, pk_from_database):
        if f.column in expressions:
            values.extend(expressions[f.column][1])
        else:
            values.append(f.get_db_prep_save(f.pre_save(instance, True), db))
    shape = tuple(sorted((column, sql) for column, (sql, _) in expressions.items()))
    return _insert_sql(db.vendor, model, pk_from_database, shape, returning), values


@functools.cache
def _insert_fields(model: type[models.Model], pk_from_database: bool) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not (f.primary_key and pk_from_database)]


@functools.cache
def _insert_sql(
    vendor: str, model: type[models.Model], pk_from_database: bool, shape: tuple[tuple[str, str], ...], returning: str
) -> str:
    """The statement's text, built once per model and shape. Names come from the
    model's metadata; values are parameters."""
    quote, fields, expressions = _db().ops.quote_name, _insert_fields(model, pk_from_database), dict(shape)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(expressions.get(f.column, "%s") for f in fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    return sql + (f" RETURNING {returning}" if returning else "")
