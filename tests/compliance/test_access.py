"""Access logging (COMPLIANCE.md §5): member views and searches, report views and downloads,
configuration changes; append-only; alerts on volume and on one's own member account."""

from __future__ import annotations

import ast
import json
from datetime import date
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from compliance.access import AccessParameterRefused, record
from compliance.models import AccessEvent
from fraud.models import FraudAlert
from members.services.membership import member_create
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["loyalty", "members", "staffauth", "vouchers", "fraud", "compliance"]
HELPER = ROOT / "loyalty" / "kernel" / "access_log.py"


def _member(store, n: int, **kw):
    return member_create(
        home_store=store, name=f"Access Person {n}", phone=f"+60 12-555 {n:04d}",
        email=f"access{n}@example.com", address="1 Jalan Test", birth_date=date(1990, 1, 1), **kw,
    )  # fmt: skip


@pytest.fixture
def admin_client(staff_by_role):
    return login_verified(Client(), staff_by_role["system_admin"])


@pytest.fixture
def cashier_client(staff_by_role):
    return login_verified(Client(), staff_by_role["cashier"])


def test_member_page_view_is_an_access_event(cashier_client, staff_by_role, store_a):
    member = _member(store_a, 1)
    page = cashier_client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert page.status_code == 200
    (event,) = AccessEvent.objects.all()
    assert (event.kind, event.staff, event.member_id) == ("member_view", staff_by_role["cashier"], member.pk)
    assert event.object_type == "members.member" and event.request_id not in ("", "-")


@pytest.mark.parametrize(("term", "by"), [("012-555 0001", "phone"), ("access1@example.com", "email")])
def test_member_search_keeps_kind_and_hits_never_the_term(cashier_client, store_a, term, by):
    member = _member(store_a, 1)
    cashier_client.post(reverse("admin:members_member_search"), {"q": term})
    (event,) = AccessEvent.objects.filter(kind="member_search")
    assert event.parameters == {"by": by, "hits": 1}
    assert event.member_ids == [member.pk]
    row = json.dumps(list(AccessEvent.objects.values())[0], default=str)
    assert "0001" not in row.replace(str(member.pk), "") and "access1" not in row


def test_parameters_refuse_search_terms():
    with pytest.raises(AccessParameterRefused):
        record("member_search", parameters={"q": "access1@example.com"})
    with pytest.raises(AccessParameterRefused):
        record("member_search", parameters={"q": "0123456789"})
    assert not AccessEvent.objects.exists()


def test_access_events_are_append_only(staff_by_role):
    event = record("report", staff=staff_by_role["system_admin"], report_type="x")
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE compliance_accessevent SET report_type = 'y' WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM compliance_accessevent WHERE id = %s", [event.pk])


@pytest.mark.parametrize(("views", "alerted"), [(2, False), (3, True), (4, True)])
def test_more_members_viewed_than_the_daily_limit_raises_an_alert(
    settings, staff_by_role, store_a, django_capture_on_commit_callbacks, views, alerted
):
    settings.ACCESS_MEMBER_VIEWS_PER_DAY = 2
    staff = staff_by_role["cashier"]
    members = [_member(store_a, n) for n in range(views)]
    with django_capture_on_commit_callbacks(execute=True):
        for member in members:
            record("member_view", staff=staff, member_id=member.pk, obj=member)
    alerts = FraudAlert.objects.filter(kind="member_view_volume", staff=staff)
    assert alerts.count() == (1 if alerted else 0)


def test_viewing_ones_own_member_account_raises_an_alert(staff_by_role, store_a, django_capture_on_commit_callbacks):
    staff = staff_by_role["cashier"]
    own, other = _member(store_a, 1), _member(store_a, 2)
    staff.member_account = own
    staff.save(update_fields=["member_account"])
    with django_capture_on_commit_callbacks(execute=True):
        record("member_view", staff=staff, member_id=other.pk, obj=other)
    assert not FraudAlert.objects.filter(kind="own_member_account_access").exists()
    with django_capture_on_commit_callbacks(execute=True):
        record("member_view", staff=staff, member_id=own.pk, obj=own)
    (alert,) = FraudAlert.objects.filter(kind="own_member_account_access")
    assert alert.staff == staff and alert.member == own


def test_access_log_list_for_system_administrators_only(admin_client, cashier_client, staff_by_role, store_a):
    member = _member(store_a, 1)
    cashier_client.get(reverse("admin:members_member_change", args=[member.pk]))
    page = admin_client.get(reverse("admin:compliance_accessevent_changelist"))
    body = page.content.decode()
    assert page.status_code == 200
    grouped = " ".join(member.loyalty_number[i : i + 4] for i in range(0, 16, 4))
    assert grouped in body and ">cashier<" in body
    assert cashier_client.get(reverse("admin:compliance_accessevent_changelist")).status_code == 403


def _offenders() -> list[str]:
    found = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if path == HELPER or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                name = getattr(node, "id", None) or getattr(node, "attr", None)
                value = getattr(node, "value", None)
                if name == "FileResponse" or (isinstance(value, str) and value.lower() == "content-disposition"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_files_are_handed_out_only_by_the_download_helper():
    assert _offenders() == []


def test_the_download_check_can_fail(tmp_path, monkeypatch):
    bad = ROOT / "compliance" / "_tmp_bad_download.py"
    bad.write_text('def f(r):\n    r["Content-Disposition"] = "attachment"\n')
    try:
        assert _offenders() == ["compliance/_tmp_bad_download.py:2"]
    finally:
        bad.unlink()


@pytest.mark.parametrize("model_label", ["loyalty.Store", "loyalty.Till", "loyalty.AdjustmentReason"])
def test_programme_configuration_changes_in_the_admin_are_access_events(staff_by_role, store_a, model_label):
    """Who changed which piece of programme configuration (stores, tills, rewards,
    adjustment reasons, schedules): a ``config_change`` event; the diff is the audit log's."""
    from types import SimpleNamespace

    from django.apps import apps
    from django.contrib import admin as django_admin
    from django.test import RequestFactory

    from loyalty.kernel.models import Till

    model = apps.get_model(model_label)
    model_admin = django_admin.site._registry[model]
    obj = {
        "loyalty.Store": lambda: store_a,
        "loyalty.Till": lambda: Till.objects.create(store=store_a, code="CFG", key_id="cfg-1", secret_encrypted="-"),
    }.get(model_label, lambda: model.objects.first())()
    assert obj is not None, model_label
    request = RequestFactory().post("/admin/")
    request.user = staff_by_role["system_admin"]
    model_admin.save_model(request, obj, SimpleNamespace(changed_data=["active"]), change=True)
    event = AccessEvent.objects.get(kind="config_change")
    assert (event.staff, event.object_type, event.object_id) == (request.user, model._meta.label_lower, str(obj.pk))
    assert event.parameters == {"action": "change", "fields_changed": 1}
