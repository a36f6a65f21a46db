"""Production's database roles end to end: ``migrate`` as the owner grants the
application's role, which then runs the product without owning a table."""

from __future__ import annotations

import os

import psycopg
import pytest

from tests.conftest import APP_ROLE
from tests.subprocess_env import PRODUCTION_ENV, child_env, run_manage

pytestmark = pytest.mark.postgres

SERVER = "postgres://postgres@127.0.0.1:5432"


@pytest.fixture
def scratch_database(database_roles):
    name = f"loyalty_roles_{os.getpid()}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    yield name
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.slow
def test_migrate_runs_as_the_owner_and_grants_the_application_role(scratch_database):
    env = child_env(
        DEBUG="1",
        DATABASE_URL=f"{SERVER}/{scratch_database}?assume_role={APP_ROLE}",
        MIGRATION_DATABASE_URL=f"{SERVER}/{scratch_database}",
    )
    migrated = run_manage("migrate", "--no-input", env=env, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    assert f"Granted the application role {APP_ROLE}" in migrated.stdout

    with psycopg.connect(f"{SERVER}/{scratch_database}") as db:
        (owner,) = db.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'loyalty_transfer'"
        ).fetchone()
    assert owner == "postgres"
    with psycopg.connect(f"{SERVER}/{scratch_database}") as db:
        privileges = db.execute(
            "SELECT has_table_privilege(%(r)s, 'loyalty_transfer', 'INSERT'), "
            "has_table_privilege(%(r)s, 'loyalty_transfer', 'UPDATE'), "
            "has_table_privilege(%(r)s, 'loyalty_transfer', 'DELETE'), "
            "has_column_privilege(%(r)s, 'loyalty_pointslot', 'remaining', 'UPDATE'), "
            "has_column_privilege(%(r)s, 'loyalty_pointslot', 'earned', 'UPDATE')",
            {"r": APP_ROLE},
        ).fetchone()
    assert privileges == (True, False, False, True, False)

    # The application's role runs the product: the demo data (earns, redemptions,
    # vouchers, adjustments) and the ledger's checks, without owning a table.
    app_env = child_env(DEBUG="1", DATABASE_URL=f"{SERVER}/{scratch_database}?assume_role={APP_ROLE}")
    seeded = run_manage("seed_demo", env=app_env, timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    verified = run_manage("verify_ledger", env=app_env, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.slow
def test_check_deploy_warns_when_the_application_connects_as_the_owner():
    env = child_env(**{**PRODUCTION_ENV, "DATABASE_URL": f"{SERVER}/loyalty"})
    result = run_manage("check", "--deploy", env=env)
    assert "loyalty.W001" in result.stdout + result.stderr
    env["MIGRATION_DATABASE_URL"] = f"{SERVER}/loyalty"
    result = run_manage("check", "--deploy", env=env)
    assert "loyalty.W001" not in result.stdout + result.stderr
