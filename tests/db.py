"""Test-only ways around the database's protections, for tests that must fake the past."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def rewriting_history() -> Iterator[None]:
    """Age a record behind the services' back (a hold that lapsed, a request that expired,
    tampering that verify_ledger must catch): as the session's superuser with the
    triggers off, in a savepoint, then back to the role the test runs as. The application
    cannot do this: it is neither superuser nor owner (tests/loyalty/test_tamper_proof.py)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (role,) = cursor.fetchone()
        # The checks the test's own writes left pending run first (as at their commit).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("RESET ROLE")
        cursor.execute("SET LOCAL session_replication_role = replica")
        yield
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute(f"SET ROLE {connection.ops.quote_name(role)}")
