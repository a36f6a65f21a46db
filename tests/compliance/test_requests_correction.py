"""Correction requests (PDPA s.22): a phone or email is corrected by the member's own
verified-contact change, which completes the request when it lands; a name or birth date
is corrected by staff from the request page through the members' PII service. Neither
leaves a value in the request's events, detail or the logs."""

from __future__ import annotations

import json
import logging
import re
from datetime import date

import pytest
from django.core import mail
from django.urls import reverse

from compliance import requests as dsr
from compliance.models import DataSubjectRequest, DataSubjectRequestEvent
from loyalty.notifications import LocmemSmsBackend
from members.models import Member, MemberSecurityEvent
from members.services.contact import contact_change_start, contact_email_confirm, contact_phone_confirm
from members.services.pii import member_pii_read
from tests.conftest import login_verified
from tests.member_client import member_client

pytestmark = pytest.mark.django_db

NEW_PHONE, NEW_EMAIL = "+60197770001", "corrected.address@example.com"
NEW_NAME = "Siti Nurhaliza binti Tarudin Corrected"


@pytest.fixture
def admin(staff_by_role):
    return staff_by_role["program_admin"]


def _member_request(member, step_up, fields, kind="correction"):
    step_up(member, dsr.STEP_UP_ACTION)
    return dsr.request_submit_by_member(member=member, kind=kind, detail={"fields": fields})


def _in_progress(admin, member, fields):
    request, code = dsr.request_submit_by_staff(
        staff=admin, member=member, kind="correction", identity_check="nric_sighted", detail={"fields": fields}
    )
    dsr.request_confirm_by_member(request_id=request.pk, code=code)
    return dsr.request_start(request_id=request.pk, staff=admin, reason="Correcting")


def _phone_change(member, step_up, capture):
    step_up(member, "change_phone")
    with capture(execute=True):
        started = contact_change_start(member=member, kind="phone", value=NEW_PHONE)
    code = re.search(r"\b(\d{6})\b", [m for m in LocmemSmsBackend.outbox if m["to"] == NEW_PHONE][-1]["text"]).group(1)
    return started, code


def _no_values_in_request(request, *values):
    request.refresh_from_db()
    stored = json.dumps(
        [request.detail, *DataSubjectRequestEvent.objects.filter(request=request).values("detail", "reason")],
        default=str,
    )
    for value in values:
        assert value not in stored


def test_a_phone_correction_completes_when_the_members_verified_change_lands(
    seeded_members, step_up, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.DEBUG)
    member = seeded_members[0]
    request = _member_request(member, step_up, ["phone"])
    assert request.state == "verified"
    started, code = _phone_change(member, step_up, django_capture_on_commit_callbacks)
    request.refresh_from_db()
    assert request.state == "verified"  # started, not yet verified: nothing lands
    contact_phone_confirm(
        member=member, verification_id=started.verification.id, challenge_id=started.challenge_id, code=code
    )
    request.refresh_from_db()
    assert request.state == "completed" and request.completed_at is not None
    assert request.detail["corrected"] == ["phone"]
    assert request.detail["contact_changes"][0]["verification_id"] == str(started.verification.id)
    kinds = list(request.events.values_list("kind", flat=True))
    assert kinds[-3:] == ["contact_corrected", "start", "complete"]
    assert member_pii_read(Member.objects.get(pk=member.pk)).phone == NEW_PHONE
    _no_values_in_request(request, NEW_PHONE, NEW_PHONE[3:])
    assert NEW_PHONE not in caplog.text


def test_an_email_correction_completes_by_the_link_and_a_request_asking_more_waits(
    seeded_members, step_up, django_capture_on_commit_callbacks, admin
):
    member = seeded_members[0]
    both = _in_progress(admin, member, ["email", "name"])
    email_only = _member_request(member, step_up, ["email"])
    other_kind = _member_request(member, step_up, [], kind="access")
    step_up(member, "change_email")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        contact_change_start(member=member, kind="email", value=NEW_EMAIL)
    token = re.search(r"#token=([A-Za-z0-9_-]+)", mail.outbox[-1].body).group(1)
    contact_email_confirm(token=token)
    email_only.refresh_from_db()
    both.refresh_from_db()
    other_kind.refresh_from_db()
    assert email_only.state == "completed"
    assert both.state == "in_progress" and both.detail["corrected"] == ["email"]  # the name is still to do
    assert other_kind.state == "verified" and "corrected" not in other_kind.detail
    # staff correct the name: now everything asked is corrected, and staff complete it
    dsr.correction_apply(request_id=both.pk, staff=admin, field="name", value=NEW_NAME, reason="Name on the NRIC")
    both.refresh_from_db()
    assert both.detail["corrected"] == ["email", "name"]
    _no_values_in_request(both, NEW_EMAIL, NEW_NAME)


def test_staff_correct_a_name_and_birth_date_through_the_members_service(seeded_members, admin, caplog):
    caplog.set_level(logging.DEBUG)
    member = seeded_members[0]
    request = _in_progress(admin, member, ["name", "birth_date"])
    dsr.correction_apply(request_id=request.pk, staff=admin, field="name", value=NEW_NAME, reason="NRIC sighted")
    dsr.correction_apply(request_id=request.pk, staff=admin, field="birth_date", value="1980-02-03", reason="NRIC")
    pii = member_pii_read(Member.objects.get(pk=member.pk))
    assert pii.name == NEW_NAME and pii.birth_date == date(1980, 2, 3)
    audited = MemberSecurityEvent.objects.filter(member=member, kind="profile_changed").order_by("pk")
    assert [e.detail for e in audited] == [
        {"fields": ["name"], "by": "staff", "reference": request.reference},
        {"fields": ["birth_date"], "by": "staff", "reference": request.reference},
    ]
    assert NEW_NAME not in json.dumps([e.detail for e in audited])
    events = list(request.events.filter(kind="corrected").values_list("detail", "actor"))
    assert events == [({"field": "name"}, admin.pk), ({"field": "birth_date"}, admin.pk)]
    _no_values_in_request(request, NEW_NAME, "1980-02-03")
    assert NEW_NAME not in caplog.text and "1980-02-03" not in caplog.text
    done = dsr.request_complete(request_id=request.pk, staff=admin, reason="Name and birth date corrected")
    assert done.state == "completed"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("phone", NEW_PHONE, "correction_field"),  # the member's verified flow, never staff
        ("email", NEW_EMAIL, "correction_field"),
        ("name", "", "invalid_value"),
        ("birth_date", "2999-01-01", "invalid_value"),
        ("address", "Somewhere", "correction_field"),
    ],
)
def test_staff_corrections_refused(seeded_members, admin, field, value, code):
    member = seeded_members[0]
    request = _in_progress(admin, member, [])
    before = member_pii_read(member)
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.correction_apply(request_id=request.pk, staff=admin, field=field, value=value, reason="try")
    assert refused.value.code == code
    assert value == "" or value not in str(refused.value)
    assert member_pii_read(Member.objects.get(pk=member.pk)) == before
    assert not request.events.filter(kind="corrected").exists()


def test_staff_correction_needs_the_permission_a_correction_in_progress_and_an_asked_field(
    seeded_members, admin, staff_by_role, step_up
):
    member = seeded_members[0]
    request = _in_progress(admin, member, ["name"])
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.correction_apply(
            request_id=request.pk, staff=staff_by_role["store_manager"], field="name", value=NEW_NAME, reason="x"
        )
    assert refused.value.code == "permission_denied"
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.correction_apply(request_id=request.pk, staff=admin, field="birth_date", value="1980-01-01", reason="x")
    assert refused.value.code == "correction_not_asked"
    waiting = _member_request(member, step_up, ["name"])  # verified, not started
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.correction_apply(request_id=waiting.pk, staff=admin, field="name", value=NEW_NAME, reason="x")
    assert refused.value.code == "bad_transition"
    assert member_pii_read(Member.objects.get(pk=member.pk)).name != NEW_NAME


def test_the_member_api_takes_the_fields_of_a_correction(seeded_members, step_up):
    member = seeded_members[0]
    api = member_client(member)
    step_up(member, dsr.STEP_UP_ACTION)
    answer = api.post("/api/v1/me/data-requests", {"kind": "correction", "fields": ["phone", "name"]}, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["fields"] == ["name", "phone"] and answer.json()["corrected"] == []
    step_up(member, dsr.STEP_UP_ACTION)
    wrong = api.post("/api/v1/me/data-requests", {"kind": "access", "fields": ["phone"]}, format="json")
    assert wrong.status_code == 400 and "fields" in wrong.json()["error"]["detail"]
    bad = api.post("/api/v1/me/data-requests", {"kind": "correction", "fields": ["address"]}, format="json")
    assert bad.status_code == 400


def test_the_request_page_corrects_a_name_and_lists_contact_changes_without_values(
    client, seeded_members, admin, step_up, django_capture_on_commit_callbacks
):
    member = seeded_members[0]
    request = _in_progress(admin, member, ["name", "phone"])
    _phone_change(member, step_up, django_capture_on_commit_callbacks)
    login_verified(client, admin)
    page_url = reverse("admin:compliance_datasubjectrequest_change", args=[request.pk])
    page = client.get(page_url).content.decode()
    assert 'id="action-correct"' in page and "waiting for the member" in page and NEW_PHONE not in page
    assert 'value="phone"' not in page  # staff never correct the phone
    url = reverse("admin:compliance_datasubjectrequest_act", args=[request.pk, "correct"])
    answer = client.post(url, {"field": "name", "value": NEW_NAME, "reason": "NRIC sighted"})
    assert answer.status_code == 302
    assert member_pii_read(Member.objects.get(pk=member.pk)).name == NEW_NAME
    page = client.get(page_url).content.decode()
    assert NEW_NAME not in page and "corrected" in page
    refused = client.post(url, {"field": "phone", "value": NEW_PHONE, "reason": "x"}, follow=True).content.decode()
    assert NEW_PHONE not in refused
    assert DataSubjectRequest.objects.get(pk=request.pk).events.filter(kind="corrected").count() == 1
