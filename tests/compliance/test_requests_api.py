"""The member's data-subject requests over the API: step-up, confirm, download once."""

import io
import zipfile

import pytest

from compliance import requests as dsr
from compliance.models import DataSubjectRequest
from tests.member_client import member_client

pytestmark = pytest.mark.django_db


def test_a_request_needs_a_step_up(seeded_members, step_up):
    member = seeded_members[0]
    client = member_client(member)
    refused = client.post("/api/v1/me/data-requests", {"kind": "access"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "step_up_required"
    assert client.post("/api/v1/me/data-requests", {"kind": "nope"}, format="json").status_code == 400
    step_up(member, dsr.STEP_UP_ACTION)
    created = client.post("/api/v1/me/data-requests", {"kind": "access"}, format="json")
    assert created.status_code == 201 and created.json()["state"] == "verified"
    listed = client.get("/api/v1/me/data-requests").json()["results"]
    assert [r["reference"] for r in listed] == [created.json()["reference"]]


def test_confirm_a_staff_request_and_download_once(
    seeded_members, staff_by_role, step_up, django_capture_on_commit_callbacks
):
    member, other = seeded_members[0], seeded_members[1]
    admin = staff_by_role["program_admin"]
    request, code = dsr.request_submit_by_staff(staff=admin, member=member, kind="access", identity_check="callback")
    # Another member cannot see or confirm it.
    assert (
        member_client(other)
        .post(f"/api/v1/me/data-requests/{request.pk}/confirm", {"code": code}, format="json")
        .status_code
        == 404
    )
    client = member_client(member)
    assert (
        client.post(f"/api/v1/me/data-requests/{request.pk}/confirm", {"code": "x"}, format="json").status_code == 422
    )
    confirmed = client.post(f"/api/v1/me/data-requests/{request.pk}/confirm", {"code": code}, format="json")
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "verified"
    assert (
        client.post(f"/api/v1/me/data-requests/{request.pk}/confirm", {"code": code}, format="json").status_code == 409
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dsr.request_start(request_id=request.pk, staff=admin, reason="Asked")
    assert len(callbacks) == 1  # the export task is queued after commit; the worker runs:
    from compliance.tasks import dsr_export_build_task

    dsr_export_build_task.run(request.pk)
    request.refresh_from_db()
    assert request.state == "completed"
    from loyalty.kernel.models import OutboundMessage

    body = OutboundMessage.objects.filter(member=member, subject=dsr.EXPORT_SUBJECT).get().body
    token = body.split("#", 1)[1].split(" ", 1)[0]
    assert client.post("/api/v1/me/data-export", {"token": token}, format="json").status_code == 403
    step_up(member, dsr.STEP_UP_ACTION)
    download = client.post("/api/v1/me/data-export", {"token": token}, format="json")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert "data.json" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    step_up(member, dsr.STEP_UP_ACTION)
    again = client.post("/api/v1/me/data-export", {"token": token}, format="json")
    assert again.status_code == 404 and again.json()["error"]["code"] == "export_not_found"
    assert token not in OutboundMessage.objects.get(member=member, subject=dsr.EXPORT_SUBJECT).body
    assert DataSubjectRequest.objects.get(pk=request.pk).events.filter(kind="export_downloaded").count() == 1
