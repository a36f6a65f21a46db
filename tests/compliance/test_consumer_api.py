"""Member API of terms and complaints."""

import pytest
from django.utils import timezone

from compliance import consumer
from members.models import Member
from tests.member_client import member_client

PAN = "4111111111111111"


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def terms(staff_by_role):
    admin = staff_by_role["program_admin"]
    draft = consumer.terms_draft_save(actor=admin, title="Terms", body="Body", effective_from=timezone.now())
    return consumer.terms_publish(actor=admin, version=draft)


@pytest.mark.django_db
def test_public_terms_and_acceptance(client, member, terms):
    assert client.get("/api/v1/terms").json()["version"] == 1
    api = member_client(member)
    mine = api.get("/api/v1/me/terms").json()
    assert mine == {"current_version": 1, "accepted_version": None, "accepted_at": None, "acceptance_required": True}
    answer = api.post("/api/v1/me/terms/accept", {"version": 2}, format="json")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "terms_not_current"
    answer = api.post("/api/v1/me/terms/accept", {"version": 1}, format="json")
    assert answer.status_code == 200 and answer.json()["acceptance_required"] is False
    assert api.post("/api/v1/me/terms/accept", {"version": "x"}, format="json").status_code == 400
    assert api.post("/api/v1/me/terms/accept", {"version": 1, "extra": 1}, format="json").status_code == 400


@pytest.mark.django_db
def test_no_terms_is_404(client):
    answer = client.get("/api/v1/terms")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "terms_not_found"


@pytest.mark.django_db
def test_file_list_and_read_complaints(member, store_a, staff_by_role):
    api = member_client(member)
    answer = api.post("/api/v1/me/complaints", {"kind": "service", "subject": "Slow", "body": "Queue"}, format="json")
    assert answer.status_code == 201, answer.content
    created = answer.json()
    assert created["state"] == "open" and created["responses"] == []
    complaint = member.complaints.get()
    consumer.complaint_note(actor=staff_by_role["program_admin"], complaint=complaint, text="internal only")
    consumer.complaint_respond(actor=staff_by_role["program_admin"], complaint=complaint, text="We are sorry.")
    listed = api.get("/api/v1/me/complaints").json()
    assert [c["reference"] for c in listed["results"]] == [f"C-{complaint.pk}"]
    detail = api.get(f"/api/v1/me/complaints/{complaint.pk}").json()
    assert [r["text"] for r in detail["responses"]] == ["We are sorry."]
    assert "internal only" not in str(detail)
    other = member_client(Member.objects.create(home_store=store_a))
    assert other.get(f"/api/v1/me/complaints/{complaint.pk}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"kind": "nope", "subject": "s", "body": "b"}, 400, "validation_error"),
        ({"kind": "service", "subject": "", "body": "b"}, 400, "validation_error"),
        ({"kind": "service", "subject": "s", "body": f"card {PAN}"}, 422, "card_number_refused"),
        ({"kind": "service", "subject": "s", "body": "b", "voucher_id": 99999}, 422, "related_not_found"),
    ],
)
def test_complaint_refusals(member, body, status, code):
    answer = member_client(member).post("/api/v1/me/complaints", body, format="json")
    assert answer.status_code == status, answer.content
    assert answer.json()["error"]["code"] == code
    assert PAN not in answer.content.decode()
    assert not member.complaints.exists()


@pytest.mark.django_db
def test_member_daily_cap(member, settings):
    settings.COMPLAINTS = settings.COMPLAINTS | {"member_daily_limit": 2}
    api = member_client(member)
    body = {"kind": "service", "subject": "s", "body": "b"}
    assert api.post("/api/v1/me/complaints", body, format="json").status_code == 201
    assert api.post("/api/v1/me/complaints", body, format="json").status_code == 201
    answer = api.post("/api/v1/me/complaints", body, format="json")
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "complaint_rate_limited"
    assert int(answer["Retry-After"]) > 0
    assert member.complaints.count() == 2


@pytest.mark.django_db
def test_member_endpoints_need_a_session(client):
    assert client.get("/api/v1/me/complaints").status_code == 401
    assert client.get("/api/v1/me/terms").status_code == 401
