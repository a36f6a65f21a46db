"""Shared fixtures: stores, one staff user per role, clients logged in with OTP."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.db.backends.signals import connection_created
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from loyalty.kernel.models import Store
from staffauth.models import StaffUser
from staffauth.roles import ROLES
from tests.services import chromium_problem

# The browser tests' fixtures (``browser``, ``csp_violations``).
pytest_plugins = ["tests.browser", "tests.logscan"]

# Helper modules the test modules share (tests/test_test_layout.py: no test module imports
# another): their asserts report values like the tests' own.
pytest.register_assert_rewrite("tests.vouchers.till_helpers", "tests.members.api.input_guard_helpers")

PASSWORD = "Correct-horse-7-battery!"


def _problems() -> dict[str, str | None]:
    return {**settings.SERVICE_PROBLEMS, "browser": chromium_problem()}


def pytest_configure(config):
    problems = {k: v for k, v in _problems().items() if v}
    if problems and os.environ.get("REQUIRE_SERVICES") == "1":
        raise pytest.UsageError("REQUIRE_SERVICES=1 but: " + "; ".join(problems.values()))


def pytest_collection_modifyitems(config, items):
    problems = _problems()
    for item in items:
        for marker, problem in problems.items():
            if problem and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=problem))


def pytest_terminal_summary(terminalreporter):
    from tests.reporting import FIGURES

    if FIGURES:
        terminalreporter.section("figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value:,}")


def pytest_report_header(config):
    problems = _problems()
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [
        f"database: {db}; broker: {settings.REDIS_URL or 'in-process'}",
        *(f"unavailable: {p}" for p in problems.values() if p),
    ]


# --- database roles ---------------------------------------------------------------------
#
# On PostgreSQL the tests run as production does: as a role that does not own the tables,
# with the grants ``manage.py db_roles`` gives it (no UPDATE or DELETE on records of what
# happened). Tests that must act as the owner (a superuser attacker, a forged row) ask for
# ``owner_role``. TEST_DATABASE_ROLE=owner runs everything as the owner instead.

APP_ROLE = "loyalty_app"
PURGER_ROLE = "loyalty_purger"


@pytest.fixture(scope="session", autouse=True)
def database_roles(request, django_db_blocker):
    """Create the application, retention and purger roles and grant them on the test
    database (once a run, before any test's transaction: inside one, their creation would
    roll back). Nothing when no collected test uses the database: the connection would
    then point at the real database, not the test one."""
    from loyalty.kernel import dbroles
    from loyalty.kernel.append_only import RETENTION_ROLE

    if not any(_item_uses_database(item) for item in request.session.items):
        return None
    request.getfixturevalue("django_db_setup")
    if connection.vendor != "postgresql":
        return None
    with django_db_blocker.unblock():
        dbroles.apply(
            connection,
            [
                dbroles.role_create_statement(connection, role, login=False)
                for role in (APP_ROLE, RETENTION_ROLE, PURGER_ROLE)
            ]
            + dbroles.app_grant_statements(connection, APP_ROLE)
            + dbroles.retention_grant_statements(connection, purger=PURGER_ROLE),
        )
    return APP_ROLE


def _set_role(sender, connection, **kwargs):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {APP_ROLE}")


DATABASE_FIXTURES = {"db", "transactional_db", "_django_db_helper", "live_server"}


def _item_uses_database(item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(item.get_closest_marker("django_db") or names & DATABASE_FIXTURES)


def _uses_database(request) -> bool:
    return _item_uses_database(request.node)


@pytest.fixture(autouse=True)
def _as_application_role(request):
    """Every database test runs as the application's role (every connection it opens,
    the live server's and threads' included), unless it asks for ``owner_role``."""
    if (
        os.environ.get("TEST_DATABASE_ROLE", "app") != "app"
        or "owner_role" in request.fixturenames
        or not _uses_database(request)
    ):
        yield
        return
    role = request.getfixturevalue("database_roles")
    request.getfixturevalue("_django_db_helper")
    if role is None:
        yield
        return
    _set_role(None, connection)
    connection_created.connect(_set_role, dispatch_uid="tests_application_role")
    try:
        yield
    finally:
        connection_created.disconnect(dispatch_uid="tests_application_role")
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")
        except Exception:  # noqa: S110 (an aborted transaction: its rollback resets the role)
            pass


@pytest.fixture
def owner_role():
    """Run this test as the tables' owner (the test database's superuser)."""
    return "owner"


# --- factories --------------------------------------------------------------------------


@pytest.fixture
def make_store(db):
    counter = iter(range(1, 10_000))

    def make(code: str | None = None, **kwargs) -> Store:
        n = next(counter)
        return Store.objects.create(code=code or f"S{n:03d}", name=kwargs.pop("name", f"Store {n}"), **kwargs)

    return make


@pytest.fixture
def store_a(make_store):
    return make_store("KLA", name="Store A", region="Central")


@pytest.fixture
def store_b(make_store):
    return make_store("PGB", name="Store B", region="North")


@pytest.fixture
def make_staff(db):
    def make(username: str, role: str | None = None, stores=(), *, otp: bool = True, password: str = PASSWORD, **kw):
        user = StaffUser.objects.create_user(username=username, password=password, **kw)
        if role:
            user.groups.add(Group.objects.get(name=ROLES[role].name))
        if stores:
            user.stores.set(stores)
        if otp:
            TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        return user

    return make


@pytest.fixture
def staff_by_role(make_staff, store_a):
    """One user per role; store-scoped roles work in store A."""
    return {key: make_staff(key, key, stores=[store_a] if role.store_scoped else []) for key, role in ROLES.items()}


def current_totp(user) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def login_verified(client, user):
    """Log ``client`` in as ``user`` with an OTP-verified session (no HTTP round trips)."""
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def verified_client(client):
    def make(user):
        return login_verified(client, user)

    return make


# --- counters outside the database ---------------------------------------------------------

_otp_caps_cleared_once = False


@pytest.fixture(autouse=True)
def otp_sender_caps_clear():
    """Each test starts with no SMS code requests counted per address or device: those
    counters live in Redis (or this process's memory), outside the test's transaction,
    and a run in the same hour as the last one would otherwise inherit its counts."""
    global _otp_caps_cleared_once
    from members.services import otp_caps

    if not _otp_caps_cleared_once or otp_caps.counters_touched():
        otp_caps.counters_clear()
        _otp_caps_cleared_once = True
    yield


_enumeration_cleared_once = False


@pytest.fixture(autouse=True)
def enumeration_counters_clear():
    """Each test starts with no API requests or 404s counted per client and no client
    blocked (``loyalty.api.enumeration``), and no staff member's reveals throttled: those
    live in Redis (or this process's memory), outside the test's transaction."""
    global _enumeration_cleared_once
    from loyalty.api import enumeration

    if not _enumeration_cleared_once or enumeration.counters_touched():
        enumeration.counters_clear()
        _enumeration_cleared_once = True
    yield


@pytest.fixture(autouse=True)
def pii_reveal_throttles_clear():
    from members.services import pii_watch

    if pii_watch.pii_throttles_touched():
        pii_watch.pii_throttles_clear()
    yield
