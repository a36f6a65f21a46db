"""The security log is append-only, audit diffs hold no PII, logs hold no card numbers."""

import logging

import pytest
from auditlog.models import LogEntry
from django.db import IntegrityError, connection, transaction

from staffauth.logging import RedactingFilter
from staffauth.models import SecurityEvent

pytestmark = pytest.mark.django_db


def test_security_events_refuse_update_and_delete_in_python():
    event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="x")
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        SecurityEvent.objects.filter(pk=event.pk).update(username="y")
    with pytest.raises(TypeError):
        SecurityEvent.objects.all().delete()


@pytest.mark.postgres
def test_security_events_refuse_update_and_delete_in_the_database(owner_role):
    # Even the owner's connection (the application's has no such grants at all).
    event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="x")
    for sql in (
        "UPDATE staffauth_securityevent SET username = 'y' WHERE id = %s",
        "DELETE FROM staffauth_securityevent WHERE id = %s",
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert SecurityEvent.objects.get(pk=event.pk).username == "x"


@pytest.mark.postgres
def test_a_session_setting_no_longer_lets_a_delete_through(owner_role):
    # Any role may set a custom setting; only the purge function may delete (test_tamper_proof).
    event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="x")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL loyalty.allow_purge = 'on'")
        cursor.execute("DELETE FROM staffauth_securityevent WHERE id = %s", [event.pk])
    assert SecurityEvent.objects.filter(pk=event.pk).exists()


def test_staff_audit_diffs_mask_pii_and_omit_the_password(make_staff):
    user = make_staff("audited", first_name="Siti", last_name="Aminah", email="siti@example.com")
    user.email = "siti.new@example.com"
    user.set_password("Changed-pass-123!")
    user.save()
    entries = LogEntry.objects.get_for_object(user)
    text = " ".join(str(e.changes) for e in entries)
    assert entries.count() >= 2
    for secret in ("Siti", "Aminah", "siti@example.com", "siti.new", "argon2", "Changed-pass"):
        assert secret not in text, secret
    assert "***" in text


def test_str_of_staff_user_is_the_username_only(make_staff):
    user = make_staff("plain", first_name="Siti", email="siti@example.com")
    assert str(user) == "plain"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("card 4111 1111 1111 1111 refused", "card [REDACTED] refused"),
        ("card 4111-1111-1111-1111", "card [REDACTED]"),
        ("loyalty 9900123456789012 ok", "loyalty 9900123456789012 ok"),  # non-payment prefix
        ("order 4111111111111112", "order 4111111111111112"),  # fails Luhn
        ("user admin\r\nFAKE login ok", "user admin\\r\\nFAKE login ok"),
    ],
)
def test_log_filter_redacts_card_numbers_and_escapes_line_breaks(message, expected):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (message,), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == expected


# --- refused admin pages: one log line each (issue 11) ---------------------------------------


def _warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_refused_admin_page_logs_one_line_without_a_traceback(verified_client, staff_by_role, caplog):
    cashier = staff_by_role["cashier"]
    client = verified_client(cashier)
    caplog.set_level(logging.INFO)

    # a cashier may not see staff accounts (the admin raises PermissionDenied)
    response = client.get("/admin/staffauth/staffuser/?q=looking-for-someone")

    assert response.status_code == 403
    (record,) = _warnings(caplog)
    assert record.name == "django.request" and record.exc_info is None and not record.exc_text
    assert record.getMessage() == f"Forbidden: GET /admin/staffauth/staffuser/ (user {cashier.pk}): permission denied"
    assert "Traceback" not in caplog.text and "looking-for-someone" not in caplog.text
    # the refusal is still in the security log
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.ACCESS_DENIED, actor=cashier)
    assert event.detail == {"path": "/admin/staffauth/staffuser/", "method": "GET"}


def test_a_refusal_with_a_reason_logs_the_reason_on_its_one_line(staff_by_role, caplog, rf):
    from django.core.exceptions import PermissionDenied

    from staffauth.middleware import AccessDeniedLogMiddleware

    sysadmin = staff_by_role["system_admin"]
    request = rf.post("/admin/staffauth/staffuser/7/change/?next=/admin/")
    request.user = sysadmin
    caplog.set_level(logging.INFO)

    refusal = PermissionDenied("You cannot change the privileges of this account (superuser account).")
    response = AccessDeniedLogMiddleware(lambda r: None).process_exception(request, refusal)

    assert response.status_code == 403
    (record,) = _warnings(caplog)
    assert record.exc_info is None
    assert record.getMessage() == (
        f"Forbidden: POST /admin/staffauth/staffuser/7/change/ (user {sysadmin.pk}): "
        "You cannot change the privileges of this account (superuser account)."
    )


def test_a_403_answered_without_an_exception_logs_one_line_too(staff_by_role, caplog):
    from django.test import Client

    from tests.conftest import login_verified

    client = login_verified(Client(enforce_csrf_checks=True), staff_by_role["system_admin"])
    caplog.set_level(logging.INFO)

    response = client.post("/admin/logout/")  # no CSRF token: refused by the middleware, with its own line

    assert response.status_code == 403
    (record,) = _warnings(caplog)
    assert record.exc_info is None and "CSRF" in record.getMessage()
