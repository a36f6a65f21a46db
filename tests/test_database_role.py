"""The suite runs as production does: as the application's role, which owns no table."""

import os

import pytest
from django.db import connection

from loyalty.kernel import dbroles
from tests.conftest import APP_ROLE

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(os.environ.get("TEST_DATABASE_ROLE", "app") != "app", reason="TEST_DATABASE_ROLE=owner"),
]


def test_tests_run_as_the_application_role(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (APP_ROLE,)
    assert not dbroles.owns_tables(connection)


def test_threads_and_new_connections_run_as_the_application_role(transactional_db):
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (APP_ROLE,)
