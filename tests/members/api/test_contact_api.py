"""Confirming, listing and cancelling email and phone changes (members/api/contact_views.py)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from rest_framework.test import APIClient

from loyalty.kernel.models import OutboundMessage
from members.models import ContactVerification, MemberSecurityEvent
from members.services.membership import member_create, member_pii_set, member_pii_shred
from members.services.otp import otp_request, otp_verify
from members.services.pii import member_pii_read
from tests.member_client import member_client
from tests.members.contact_values import EMAIL_A, EMAIL_B, NEW_EMAIL, NEW_PHONE, PHONE_A, PHONE_B

CONFIRM = "/api/v1/auth/email/confirm"
PHONE_CONFIRM = "/api/v1/me/phone/confirm"


@pytest.fixture
def member_a(db, store_a):
    return member_create(home_store=store_a, name="Aminah", phone=PHONE_A, email=EMAIL_A)


@pytest.fixture
def member_b(db, store_a):
    return member_create(home_store=store_a, name="Bala", phone=PHONE_B, email=EMAIL_B)


def client_for(member, fingerprint="fp-phone") -> APIClient:
    return member_client(member, fingerprint=fingerprint)


@pytest.fixture
def api_a(member_a):
    return client_for(member_a)


@pytest.fixture
def api_b(member_b):
    return client_for(member_b, "fp-b")


def last_code(sms_outbox, to: str) -> str:
    return re.search(r"\b(\d{6})\b", [m for m in sms_outbox if m["to"] == to][-1]["text"]).group(1)


@pytest.fixture
def change(django_capture_on_commit_callbacks, sms_outbox):
    """Start a change through PATCH me with a fresh step-up; returns the pending item
    and the token (email, from the mail) or the code (phone, from the SMS)."""

    def start(client, member, field, value):
        phone = member_pii_read(member).phone
        action = f"change_{field}"
        with django_capture_on_commit_callbacks(execute=True):
            challenge = otp_request(phone=phone, purpose="step_up", action=action)
        otp_verify(
            challenge_id=challenge.challenge_id, phone=phone, code=last_code(sms_outbox, phone),
            purpose="step_up", action=action,
        )  # fmt: skip
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.patch("/api/v1/me", {field: value}, format="json")
        assert response.status_code == 200, response.content
        [pending] = response.json()["pending"]
        if field == "email":
            secret = re.search(r"/verify-email#token=([A-Za-z0-9_-]+)", mail.outbox[-1].body).group(1)
        else:
            secret = last_code(sms_outbox, value)
        return pending, secret

    return start


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- email confirm -----------------------------------------------------------------------------


def test_the_link_confirms_without_a_session_and_answers_no_personal_data(api_a, member_a, change):
    _, token = change(api_a, member_a, "email", NEW_EMAIL)
    response = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert response.status_code == 200 and response.json() == {"changed": "email"}
    assert response["Cache-Control"] == "no-store"
    assert api_a.get("/api/v1/me").status_code == 401  # every session ended
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == NEW_EMAIL


def test_a_link_works_once(api_a, member_a, change):
    _, token = change(api_a, member_a, "email", NEW_EMAIL)
    assert APIClient().post(CONFIRM, {"token": token}, format="json").status_code == 200
    again = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert again.status_code == 409 and error_code(again) == "link_used"
    assert again["Cache-Control"] == "no-store"


def test_an_unknown_token_is_invalid(member_a):
    response = APIClient().post(CONFIRM, {"token": "A" * 43}, format="json")
    assert response.status_code == 400 and error_code(response) == "link_invalid"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "token", "required"),
        ({"token": ""}, "token", "blank"),
        ({"token": 12}, "token", "invalid"),
        ({"token": "x" * 129}, "token", "max_length"),
        ({"token": "abc", "email": NEW_EMAIL}, "email", "unknown_field"),
    ],
)
def test_bad_confirm_bodies_are_400_per_field(member_a, body, field, code):
    response = APIClient().post(CONFIRM, body, format="json")
    assert response.status_code == 400 and error_code(response) == "validation_error"
    assert response.json()["error"]["detail"][field]["code"] == code


def test_the_link_at_23_59_59_works(api_a, member_a, change):
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as clock:
        _, token = change(api_a, member_a, "email", NEW_EMAIL)
        clock.move_to("2026-03-02 08:59:59+00:00")
        response = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert response.status_code == 200, response.content


def test_the_link_at_24_00_01_has_expired(api_a, member_a, change):
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as clock:
        _, token = change(api_a, member_a, "email", NEW_EMAIL)
        clock.move_to("2026-03-02 09:00:01+00:00")
        response = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert response.status_code == 410 and error_code(response) == "link_expired"
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == EMAIL_A


def test_a_superseded_link_is_dead(api_a, member_a, change):
    _, first = change(api_a, member_a, "email", NEW_EMAIL)
    _, second = change(api_a, member_a, "email", "aminah.second@example.com")
    response = APIClient().post(CONFIRM, {"token": first}, format="json")
    assert response.status_code == 410 and error_code(response) == "link_cancelled"
    assert APIClient().post(CONFIRM, {"token": second}, format="json").status_code == 200


def test_an_address_taken_before_the_link_is_opened_is_a_409(api_a, member_a, member_b, change):
    _, token = change(api_a, member_a, "email", NEW_EMAIL)
    member_pii_set(member=member_b, email=NEW_EMAIL)
    mail.outbox.clear()
    response = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert response.status_code == 409 and error_code(response) == "taken"
    assert mail.outbox == [] and api_a.get("/api/v1/me").json()["email"] == EMAIL_A


def test_an_erased_members_link_is_dead(api_a, member_a, change):
    _, token = change(api_a, member_a, "email", NEW_EMAIL)
    member_pii_shred(member=member_a)  # erases the pending address and its link too
    response = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert response.status_code == 400 and error_code(response) == "link_invalid"


def test_the_token_is_nowhere_but_the_mail(api_a, member_a, change):
    _, token = change(api_a, member_a, "email", NEW_EMAIL)
    APIClient().post(CONFIRM, {"token": token}, format="json")
    assert not any(token in f"{m.to} {m.subject} {m.body}" for m in OutboundMessage.objects.all())
    assert not any(token in json.dumps(e.detail) for e in MemberSecurityEvent.objects.all())
    assert not ContactVerification.objects.filter(token_hash=token).exists()


# --- phone confirm -----------------------------------------------------------------------------


def test_the_phone_code_confirms_and_the_current_session_lives(api_a, member_a, change, sms_outbox):
    other = client_for(member_a, "fp-laptop")
    pending, code = change(api_a, member_a, "phone", NEW_PHONE)
    sms_outbox.clear()
    response = api_a.post(
        PHONE_CONFIRM,
        {"verification_id": pending["id"], "challenge_id": pending["challenge_id"], "code": code},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["phone"] == NEW_PHONE and response["Cache-Control"] == "no-store"
    assert [m["to"] for m in sms_outbox] == [PHONE_A]
    assert other.get("/api/v1/me").status_code == 401
    assert api_a.get("/api/v1/me").status_code == 200
    again = api_a.post(
        PHONE_CONFIRM,
        {"verification_id": pending["id"], "challenge_id": pending["challenge_id"], "code": code},
        format="json",
    )
    assert again.status_code == 409 and error_code(again) == "verification_used"


def test_a_wrong_phone_code_is_a_401_as_at_sign_in(api_a, member_a, change):
    pending, code = change(api_a, member_a, "phone", NEW_PHONE)
    wrong = "000000" if code != "000000" else "111111"
    response = api_a.post(
        PHONE_CONFIRM,
        {"verification_id": pending["id"], "challenge_id": pending["challenge_id"], "code": wrong},
        format="json",
    )
    assert response.status_code == 401 and error_code(response) == "otp_wrong_code"
    assert api_a.get("/api/v1/me").json()["phone"] == PHONE_A


def test_another_members_change_is_a_404(api_a, api_b, member_a, change):
    pending, code = change(api_a, member_a, "phone", NEW_PHONE)
    for verification_id in (pending["id"], str(uuid.uuid4())):
        response = api_b.post(
            PHONE_CONFIRM,
            {"verification_id": verification_id, "challenge_id": pending["challenge_id"], "code": code},
            format="json",
        )
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert api_a.get("/api/v1/me").json()["phone"] == PHONE_A


def test_a_cancelled_phone_change_is_gone(api_a, member_a, change):
    pending, code = change(api_a, member_a, "phone", NEW_PHONE)
    assert api_a.post(f"/api/v1/me/contact-changes/{pending['id']}/cancel").json() == {"cancelled": 1}
    response = api_a.post(
        PHONE_CONFIRM,
        {"verification_id": pending["id"], "challenge_id": pending["challenge_id"], "code": code},
        format="json",
    )
    assert response.status_code == 410 and error_code(response) == "verification_cancelled"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"challenge_id": str(uuid.uuid4()), "code": "123456"}, "verification_id", "required"),
        ({"verification_id": "nope", "challenge_id": str(uuid.uuid4()), "code": "1"}, "verification_id", "invalid"),
        ({"verification_id": str(uuid.uuid4()), "challenge_id": 5, "code": "1"}, "challenge_id", "invalid"),
        (
            {"verification_id": str(uuid.uuid4()), "challenge_id": str(uuid.uuid4()), "code": "1" * 13},
            "code",
            "max_length",
        ),
    ],
)
def test_bad_phone_confirm_bodies_are_400_per_field(api_a, body, field, code):
    response = api_a.post(PHONE_CONFIRM, body, format="json")
    assert response.status_code == 400 and response.json()["error"]["detail"][field]["code"] == code


def test_phone_confirm_needs_a_member_token(member_a):
    response = APIClient().post(PHONE_CONFIRM, {}, format="json")
    assert response.status_code == 401 and response["Cache-Control"] == "no-store"


# --- list and cancel ---------------------------------------------------------------------------


def test_pending_changes_are_the_members_own_and_masked(api_a, api_b, member_a, change):
    email, _ = change(api_a, member_a, "email", NEW_EMAIL)
    phone, _ = change(api_a, member_a, "phone", NEW_PHONE)
    body = api_a.get("/api/v1/me/contact-changes").json()
    assert {(c["id"], c["kind"], c["value_masked"]) for c in body} == {
        (email["id"], "email", "a•••@example.com"),
        (phone["id"], "phone", "+60 ••• ••• 03"),
    }
    assert NEW_EMAIL not in json.dumps(body) and NEW_PHONE not in json.dumps(body)
    assert api_b.get("/api/v1/me/contact-changes").json() == []


def test_cancelling_another_members_change_is_a_404(api_a, api_b, member_a, change):
    pending, token = change(api_a, member_a, "email", NEW_EMAIL)
    for verification_id in (pending["id"], uuid.uuid4(), "not-a-uuid"):
        response = api_b.post(f"/api/v1/me/contact-changes/{verification_id}/cancel")
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert APIClient().post(CONFIRM, {"token": token}, format="json").status_code == 200


def test_cancelling_twice_cancels_once(api_a, member_a, change):
    pending, token = change(api_a, member_a, "email", NEW_EMAIL)
    assert api_a.post(f"/api/v1/me/contact-changes/{pending['id']}/cancel").json() == {"cancelled": 1}
    assert api_a.post(f"/api/v1/me/contact-changes/{pending['id']}/cancel").json() == {"cancelled": 0}
    assert api_a.get("/api/v1/me/contact-changes").json() == []
    response = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert response.status_code == 410 and error_code(response) == "link_cancelled"
    assert MemberSecurityEvent.objects.filter(member=member_a, kind="contact_change_cancelled").count() == 1


# --- contract ----------------------------------------------------------------------------------


def test_the_contact_endpoints_are_in_a_valid_schema(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json", "--file", str(out))
    paths = json.loads(out.read_text())["paths"]
    assert (
        paths["/api/v1/auth/email/confirm"]["post"]["security"] == [{}]
        or "security" not in paths["/api/v1/auth/email/confirm"]["post"]
    )
    assert set(paths["/api/v1/auth/email/confirm"]["post"]["responses"]) >= {"200", "400", "409", "410"}
    assert paths["/api/v1/me/phone/confirm"]["post"]["security"] == [{"memberToken": []}]
    assert set(paths["/api/v1/me/phone/confirm"]["post"]["responses"]) >= {"200", "400", "401", "404", "409", "410"}
    assert "/api/v1/me/contact-changes" in paths
    assert "/api/v1/me/contact-changes/{verification_id}/cancel" in paths
