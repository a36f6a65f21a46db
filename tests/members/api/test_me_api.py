"""The signed-in member's own endpoints under /api/v1/me."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from loyalty.kernel.models import OutboundMessage, Till
from loyalty.ledger.operations import Actor, points_hold
from loyalty.notifications import LocmemSmsBackend
from members.models import ContactVerification, MemberDevice, MemberSecurityEvent, MemberSession
from members.services.membership import member_create, member_pii_shred
from members.services.otp import otp_request, otp_verify
from members.services.pii import member_pii_read
from members.services.sessions import session_start
from tests.points import points_giver

PHONE_A = "+60 12-555 0101"
EMAIL_A = "aminah@example.com"
PHONE_B = "+60 13-555 0202"
EMAIL_B = "bala@example.com"


@pytest.fixture
def member_a(db, store_a):
    return member_create(
        home_store=store_a, name="Aminah binti Yusof", phone=PHONE_A, email=EMAIL_A,
        address="1 Jalan Test, 50000 Kuala Lumpur", birth_date="1985-04-02", preferred_channel="sms",
    )  # fmt: skip


@pytest.fixture
def member_b(db, store_a):
    return member_create(home_store=store_a, name="Bala Subramaniam", phone=PHONE_B, email=EMAIL_B)


@pytest.fixture
def till_actor(store_a):
    return Actor(till=Till.objects.create(store=store_a, code="T1", key_id="till-me-1", secret_encrypted="-"))


@pytest.fixture
def earn(till_actor):
    """Earn points at the till under a fresh key and receipt (as tests/loyalty's fixture)."""
    return points_giver(till_actor)


def sign_in(member, *, channel="app", fingerprint="fp-phone", **kwargs):
    return session_start(member=member, channel=channel, device_fingerprint=fingerprint, **kwargs)


def client_for(tokens) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    return client


@pytest.fixture
def api_a(member_a):
    tokens = sign_in(member_a)
    client = client_for(tokens)
    client.tokens = tokens
    return client


@pytest.fixture
def api_b(member_b):
    tokens = sign_in(member_b, fingerprint="fp-b")
    client = client_for(tokens)
    client.tokens = tokens
    return client


@pytest.fixture
def step_up(django_capture_on_commit_callbacks):
    """Verify an SMS step-up code for ``action`` as the member would."""

    def verify(member, phone, action):
        with django_capture_on_commit_callbacks(execute=True):
            result = otp_request(phone=phone, purpose="step_up", action=action, ip="10.0.0.1")
        code = re.search(r"\b(\d{6})\b", LocmemSmsBackend.outbox[-1]["text"]).group(1)
        otp_verify(challenge_id=result.challenge_id, phone=phone, code=code, purpose="step_up", action=action)

    return verify


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- authentication and headers ---------------------------------------------------------------

ME_GETS = ["me", "me/balance", "me/ledger", "me/devices", "me/sessions", "me/security-log", "me/preferences"]


@pytest.mark.parametrize("path", ME_GETS)
def test_every_endpoint_needs_a_valid_token(member_a, path):
    assert APIClient().get(f"/api/v1/{path}").status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = bad.get(f"/api/v1/{path}")
    assert response.status_code == 401 and error_code(response) == "token_invalid"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ME_GETS)
def test_every_answer_is_no_store(api_a, path):
    response = api_a.get(f"/api/v1/{path}")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"


def test_writes_and_refusals_are_no_store_too(api_a):
    for response in (
        api_a.post("/api/v1/me/devices/1000000000000/block"),
        api_a.post(f"/api/v1/me/sessions/{uuid.uuid4()}/revoke"),
        api_a.patch("/api/v1/me", {"email": "nope"}, format="json"),
        api_a.post("/api/v1/me/sessions/revoke-all", {}, format="json"),
    ):
        assert response["Cache-Control"] == "no-store"


def test_a_revoked_session_token_is_refused(api_a, member_a):
    MemberSession.objects.filter(member=member_a).update(ended_at=timezone.now())
    response = api_a.get("/api/v1/me")
    assert response.status_code == 401 and error_code(response) == "session_ended"


# --- profile ----------------------------------------------------------------------------------


def test_the_profile_is_the_members_own_in_clear(api_a, api_b, member_a):
    response = api_a.get("/api/v1/me")
    body = response.json()
    assert body["loyalty_number"] == member_a.loyalty_number
    assert body["member_id"] == str(member_a.member_id)
    assert body["name"] == "Aminah binti Yusof"
    assert body["phone"] == "+60125550101" and body["email"] == EMAIL_A
    assert body["birth_date"] == "1985-04-02" and body["preferred_channel"] == "sms"
    assert body["tier"] == 1 and body["status"] == "active" and body["pii_erased"] is False
    # member B's token reads B, never A
    other = api_b.get("/api/v1/me").json()
    assert other["phone"] == "+60135550202" and EMAIL_A not in json.dumps(other)


def test_name_address_birth_date_and_channel_change_freely(api_a, member_a):
    response = api_a.patch(
        "/api/v1/me",
        {"name": "Aminah Yusof", "address": "2 Jalan Baru", "birth_date": "1985-04-03", "preferred_channel": "email"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["address"], body["birth_date"], body["preferred_channel"]) == (
        "Aminah Yusof", "2 Jalan Baru", "1985-04-03", "email",
    )  # fmt: skip
    event = MemberSecurityEvent.objects.filter(member=member_a, kind="profile_changed").get()
    assert event.detail["fields"] == ["address", "birth_date", "name", "preferred_channel"]
    assert "Aminah" not in json.dumps(event.detail)


def test_invalid_values_get_per_field_codes_and_nothing_is_saved(api_a, member_a):
    response = api_a.patch(
        "/api/v1/me",
        {
            "name": "x" * 201,
            "birth_date": "1850-01-01",
            "phone": "12",
            "email": "not-an-email",
            "preferred_channel": "fax",
        },
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["detail"]["preferred_channel"]["code"] == "invalid_choice"
    # The serializer's refusal comes first; the same body without it shows the services' codes.
    response = api_a.patch(
        "/api/v1/me", {"name": "x" * 201, "birth_date": "1850-01-01", "phone": "12", "email": "nope"}, format="json"
    )
    codes = {field: value["code"] for field, value in response.json()["error"]["detail"].items()}
    assert codes == {
        "name": "too_long",
        "birth_date": "out_of_range",
        "phone": "invalid_phone",
        "email": "invalid_email",
    }
    response = api_a.patch("/api/v1/me", {"birth_date": "02/04/1985", "name": "Fine"}, format="json")
    assert response.json()["error"]["detail"] == {
        "birth_date": {"code": "invalid_date", "message": "Enter a date as YYYY-MM-DD."}
    }
    assert api_a.get("/api/v1/me").json()["name"] == "Aminah binti Yusof"


def test_unknown_read_only_or_mistyped_fields_are_refused(api_a, member_a):
    response = api_a.patch("/api/v1/me", {"tier": 5, "status": "active"}, format="json")
    assert response.status_code == 400
    assert {f: v["code"] for f, v in response.json()["error"]["detail"].items()} == {
        "tier": "unknown_field",
        "status": "unknown_field",
    }
    response = api_a.patch("/api/v1/me", {"name": 12}, format="json")
    assert response.status_code == 400 and response.json()["error"]["detail"]["name"]["code"] == "invalid"
    member_a.refresh_from_db()
    assert member_a.tier == 1


def test_an_erased_member_cannot_set_personal_data_again(api_a, member_a):
    member_pii_shred(member=member_a)
    assert api_a.get("/api/v1/me").json()["pii_erased"] is True
    response = api_a.patch("/api/v1/me", {"name": "Back Again"}, format="json")
    assert response.status_code == 409 and error_code(response) == "pii_erased"


def test_the_phone_cannot_be_removed(api_a):
    response = api_a.patch("/api/v1/me", {"phone": ""}, format="json")
    assert response.status_code == 400 and response.json()["error"]["detail"]["phone"]["code"] == "required"


def test_a_remember_me_web_session_may_not_change_details(member_a):
    client = client_for(sign_in(member_a, channel="web", fingerprint="fp-browser", remember_me=True))
    response = client.patch("/api/v1/me", {"name": "Someone Else"}, format="json")
    assert response.status_code == 403 and error_code(response) == "change_details_not_allowed"
    assert client.get("/api/v1/me").json()["name"] == "Aminah binti Yusof"


def test_changing_the_email_needs_a_step_up(api_a):
    response = api_a.patch("/api/v1/me", {"email": "new@example.com"}, format="json")
    assert response.status_code == 403 and error_code(response) == "step_up_required"
    assert response.json()["error"]["detail"] == {"actions": ["change_email"]}
    assert api_a.get("/api/v1/me").json()["email"] == EMAIL_A


def test_a_step_up_for_another_action_does_not_do(api_a, member_a, step_up):
    step_up(member_a, PHONE_A, "change_email")
    response = api_a.patch("/api/v1/me", {"phone": "+60 17-555 0303"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["detail"] == {"actions": ["change_phone"]}


def test_the_same_email_again_is_no_change_and_needs_no_step_up(api_a):
    response = api_a.patch("/api/v1/me", {"email": " aminah@EXAMPLE.com "}, format="json")
    assert response.status_code == 200 and response.json()["email"] == EMAIL_A


def link_token() -> str:
    """The token of the last verification link mailed (from the URL fragment)."""
    return re.search(r"/verify-email#token=([A-Za-z0-9_-]+)", mail.outbox[-1].body).group(1)


def test_a_new_email_waits_for_its_link_then_notifies_the_old_one_and_ends_all_sessions(
    api_a, member_a, step_up, django_capture_on_commit_callbacks
):
    other = client_for(sign_in(member_a, channel="web", fingerprint="fp-laptop"))
    step_up(member_a, PHONE_A, "change_email")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.patch("/api/v1/me", {"email": "aminah.new@example.com"}, format="json")

    # nothing changed yet: the link went to the new address, nobody else was told
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["email"] == EMAIL_A
    [pending] = body["pending"]
    assert pending["kind"] == "email" and pending["value_masked"] == "a•••@example.com"
    assert pending["challenge_id"] is None
    assert [m.to for m in mail.outbox] == [["aminah.new@example.com"]]
    assert other.get("/api/v1/me").status_code == 200
    assert api_a.get("/api/v1/me").json()["email"] == EMAIL_A
    token = link_token()
    mail.outbox.clear()

    confirmed = APIClient().post("/api/v1/auth/email/confirm", {"token": token}, format="json")

    assert confirmed.status_code == 200 and confirmed.json() == {"changed": "email"}
    # the old address was told, without the new one in the message
    assert [m.to for m in mail.outbox] == [[EMAIL_A]]
    assert "aminah.new" not in mail.outbox[0].body
    notice = OutboundMessage.objects.get(member=member_a, topic="security", channel="email")
    assert notice.status == OutboundMessage.Status.SENT and EMAIL_A not in notice.body
    # a link confirmed without a session ends every session, this one too
    assert other.get("/api/v1/me").status_code == 401
    assert api_a.get("/api/v1/me").status_code == 401
    member_a.refresh_from_db()
    assert member_pii_read(member_a).email == "aminah.new@example.com"
    event = MemberSecurityEvent.objects.get(member=member_a, kind="contact_changed")
    assert event.detail["fields"] == ["email"] and event.detail["sessions_ended"] == 2
    assert "aminah" not in json.dumps(event.detail)


def test_a_new_phone_waits_for_its_code_then_texts_the_old_number(
    api_a, member_a, step_up, sms_outbox, django_capture_on_commit_callbacks
):
    other = client_for(sign_in(member_a, channel="web", fingerprint="fp-laptop"))
    step_up(member_a, PHONE_A, "change_phone")
    sms_outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.patch("/api/v1/me", {"phone": "+60 17-555 0303"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+60125550101"
    [pending] = response.json()["pending"]
    assert pending["kind"] == "phone" and pending["value_masked"] == "+60 ••• ••• 03"
    assert [m["to"] for m in sms_outbox] == ["+60175550303"]
    code = re.search(r"\b(\d{6})\b", sms_outbox[0]["text"]).group(1)
    sms_outbox.clear()

    confirmed = api_a.post(
        "/api/v1/me/phone/confirm",
        {"verification_id": pending["id"], "challenge_id": pending["challenge_id"], "code": code},
        format="json",
    )

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["phone"] == "+60175550303"
    assert [m["to"] for m in sms_outbox] == ["+60125550101"]
    assert "0303" not in sms_outbox[0]["text"]
    # the other session is over, this one lives on
    assert other.get("/api/v1/me").status_code == 401
    assert api_a.get("/api/v1/me").status_code == 200


def test_the_step_up_is_spent_by_one_change(api_a, member_a, step_up, django_capture_on_commit_callbacks):
    step_up(member_a, PHONE_A, "change_email")
    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.patch("/api/v1/me", {"email": "one@example.com"}, format="json").status_code == 200
    response = api_a.patch("/api/v1/me", {"email": "two@example.com"}, format="json")
    assert response.status_code == 403 and error_code(response) == "step_up_required"
    assert [c["value_masked"] for c in api_a.get("/api/v1/me/contact-changes").json()] == ["o•••@example.com"]


def test_other_fields_change_at_once_beside_a_pending_email(
    api_a, member_a, step_up, django_capture_on_commit_callbacks
):
    step_up(member_a, PHONE_A, "change_email")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.patch("/api/v1/me", {"email": "aminah.new@example.com", "name": "Aminah Y"}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["name"] == "Aminah Y" and body["email"] == EMAIL_A
    assert [p["kind"] for p in body["pending"]] == ["email"]


def test_a_change_without_contact_fields_has_no_pending(api_a):
    response = api_a.patch("/api/v1/me", {"name": "Aminah Y"}, format="json")
    assert response.status_code == 200 and response.json()["pending"] == []


def test_removing_the_email_needs_a_step_up_and_applies_at_once(api_a, member_a, step_up):
    response = api_a.patch("/api/v1/me", {"email": None}, format="json")
    assert response.status_code == 403 and error_code(response) == "step_up_required"
    step_up(member_a, PHONE_A, "change_email")
    mail.outbox.clear()
    response = api_a.patch("/api/v1/me", {"email": ""}, format="json")
    assert response.status_code == 200 and response.json()["email"] is None
    assert [m.to for m in mail.outbox] == [[EMAIL_A]]  # told before it went


def test_an_email_another_member_has_is_refused_and_nothing_is_sent(api_a, member_a, member_b, step_up):
    step_up(member_a, PHONE_A, "change_email")
    mail.outbox.clear()
    response = api_a.patch("/api/v1/me", {"email": EMAIL_B, "name": "Zainab Qistina"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["detail"]["email"]["code"] == "taken"
    assert mail.outbox == []
    assert not OutboundMessage.objects.filter(member=member_a, topic="security", channel="email").exists()
    body = api_a.get("/api/v1/me").json()
    assert body["email"] == EMAIL_A and body["name"] == "Aminah binti Yusof"
    assert not ContactVerification.objects.filter(member=member_a).exists()


def test_a_phone_another_member_has_is_refused(api_a, member_a, member_b, step_up, sms_outbox):
    step_up(member_a, PHONE_A, "change_phone")
    sms_outbox.clear()
    response = api_a.patch("/api/v1/me", {"phone": PHONE_B}, format="json")
    assert response.status_code == 400 and response.json()["error"]["detail"]["phone"]["code"] == "taken"
    assert sms_outbox == []


# --- balance and ledger -------------------------------------------------------------------------


def test_balance_after_real_ledger_operations(api_a, member_a, earn, till_actor, settings):
    now = timezone.now()
    # one lot expiring in about a month, one in a year
    earn(member_a, 300, effective_at=now - timedelta(days=settings.LOYALTY_POINTS_VALID_DAYS - 30))
    earn(member_a, 200)
    outcome = points_hold(member=member_a, points=50, actor=till_actor, idempotency_key="hold-1")
    assert outcome.ok, outcome.body

    body = api_a.get("/api/v1/me/balance").json()

    assert body["available"] == 450 and body["held"] == 50 and body["pending"] == 0
    soon = (timezone.localdate(now - timedelta(days=settings.LOYALTY_POINTS_VALID_DAYS - 30)) + timedelta(
        days=settings.LOYALTY_POINTS_VALID_DAYS
    )).strftime("%Y-%m")  # fmt: skip
    # the hold took its 50 points from the earliest-expiring lot
    assert body["expiring"] == [{"month": soon, "points": 250}]


def test_balance_of_a_member_who_never_earned_is_zero(api_a):
    body = api_a.get("/api/v1/me/balance").json()
    assert (body["available"], body["held"], body["pending"], body["expiring"]) == (0, 0, 0, [])


def test_pending_earns_show_as_pending(api_a, member_a, earn, settings):
    settings.LOYALTY_PENDING_DAYS = 14
    earn(member_a, 120)
    body = api_a.get("/api/v1/me/balance").json()
    assert (body["available"], body["pending"]) == (0, 120)
    entry = api_a.get("/api/v1/me/ledger").json()["results"][0]
    assert entry["kind"] == "earn" and entry["expires_on"] is None and entry["pending_until"]


def test_the_ledger_is_the_members_own_newest_first_with_lot_expiry(api_a, member_a, member_b, earn, settings):
    earn(member_a, 100)
    earn(member_a, 40)
    earn(member_b, 999)
    body = api_a.get("/api/v1/me/ledger").json()
    assert [(e["kind"], e["points"]) for e in body["results"]] == [("earn", 40), ("earn", 100)]
    expected = (timezone.localdate() + timedelta(days=settings.LOYALTY_POINTS_VALID_DAYS)).isoformat()
    assert all(e["expires_on"] == expected and e["store"] == "KLA" for e in body["results"])
    assert body["next_offset"] is None


def test_the_ledger_pages_without_counting(api_a, member_a, earn, django_assert_max_num_queries, settings):
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)  # five earns in a day
    for points in range(1, 6):
        earn(member_a, points)
    with django_assert_max_num_queries(8):
        first = api_a.get("/api/v1/me/ledger", {"limit": 2}).json()
    assert [e["points"] for e in first["results"]] == [5, 4] and first["next_offset"] == 2
    second = api_a.get("/api/v1/me/ledger", {"limit": 2, "offset": 2}).json()
    assert [e["points"] for e in second["results"]] == [3, 2] and second["next_offset"] == 4
    last = api_a.get("/api/v1/me/ledger", {"limit": 2, "offset": 4}).json()
    assert [e["points"] for e in last["results"]] == [1] and last["next_offset"] is None


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}, {"page": 2}])
def test_bad_paging_is_a_400(api_a, query):
    response = api_a.get("/api/v1/me/ledger", query)
    assert response.status_code == 400 and error_code(response) == "validation_error"


# --- devices and sessions -----------------------------------------------------------------------


def test_devices_are_listed_without_fingerprints(api_a, member_a):
    sign_in(member_a, channel="web", fingerprint="fp-laptop", device_label="Firefox on Linux")
    body = api_a.get("/api/v1/me/devices").json()
    assert {d["label"] for d in body} == {"", "Firefox on Linux"}
    text = json.dumps(body)
    assert "fingerprint" not in text and "fp-laptop" not in text
    assert MemberDevice.objects.get(member=member_a, label="Firefox on Linux").fingerprint_hash not in text


def test_blocking_a_device_ends_its_sessions(api_a, member_a):
    laptop_tokens = sign_in(member_a, channel="web", fingerprint="fp-laptop")
    laptop = client_for(laptop_tokens)
    response = api_a.post(f"/api/v1/me/devices/{laptop_tokens.device_id}/block")
    assert response.status_code == 200 and response.json()["blocked"] is True
    assert laptop.get("/api/v1/me").status_code == 401
    assert MemberSecurityEvent.objects.filter(member=member_a, kind="device_blocked").exists()


def test_another_members_device_is_a_404_and_stays_unblocked(api_a, api_b):
    b_device = api_b.tokens.device_id
    for device_id in (b_device, 10**12, "abc"):
        response = api_a.post(f"/api/v1/me/devices/{device_id}/block")
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert MemberDevice.objects.get(pk=b_device).blocked_at is None
    assert api_b.get("/api/v1/me").status_code == 200


def test_sessions_mark_the_current_one(api_a, member_a):
    other = sign_in(member_a, channel="web", fingerprint="fp-laptop")
    body = api_a.get("/api/v1/me/sessions").json()
    assert {(s["id"], s["current"]) for s in body} == {
        (str(api_a.tokens.session_id), True),
        (str(other.session_id), False),
    }


def test_revoking_a_session(api_a, member_a):
    other_tokens = sign_in(member_a, channel="web", fingerprint="fp-laptop")
    other = client_for(other_tokens)
    response = api_a.post(f"/api/v1/me/sessions/{other_tokens.session_id}/revoke")
    assert response.status_code == 200 and response.json() == {"ended": 1}
    assert other.get("/api/v1/me").status_code == 401
    again = api_a.post(f"/api/v1/me/sessions/{other_tokens.session_id}/revoke")
    assert again.status_code == 200 and again.json() == {"ended": 0}


def test_another_members_session_is_a_404_and_stays_live(api_a, api_b):
    for session_id in (api_b.tokens.session_id, uuid.uuid4(), "not-a-uuid"):
        response = api_a.post(f"/api/v1/me/sessions/{session_id}/revoke")
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert api_b.get("/api/v1/me").status_code == 200


def test_revoke_all_keeps_the_current_session(api_a, api_b, member_a):
    others = [client_for(sign_in(member_a, channel="web", fingerprint=f"fp-{n}")) for n in range(2)]
    response = api_a.post("/api/v1/me/sessions/revoke-all", {}, format="json")
    assert response.status_code == 200 and response.json() == {"ended": 2}
    assert all(o.get("/api/v1/me").status_code == 401 for o in others)
    assert api_a.get("/api/v1/me").status_code == 200
    assert api_b.get("/api/v1/me").status_code == 200


def test_revoke_all_including_the_current_session(api_a, api_b):
    response = api_a.post("/api/v1/me/sessions/revoke-all", {"include_current": True}, format="json")
    assert response.status_code == 200 and response.json() == {"ended": 1}
    assert api_a.get("/api/v1/me").status_code == 401
    assert api_b.get("/api/v1/me").status_code == 200


def test_revoke_all_refuses_unknown_fields(api_a):
    response = api_a.post("/api/v1/me/sessions/revoke-all", {"everyone": True}, format="json")
    assert response.status_code == 400 and response.json()["error"]["detail"]["everyone"]["code"] == "unknown_field"


# --- security log -----------------------------------------------------------------------------


def test_the_security_log_is_the_members_own_newest_first(api_a, api_b, member_a, member_b):
    MemberSecurityEvent.objects.create(member=member_b, kind="b_secret_event")
    api_a.post("/api/v1/me/sessions/revoke-all", {}, format="json")
    body = api_a.get("/api/v1/me/security-log").json()
    kinds = [e["kind"] for e in body["results"]]
    assert kinds[0] == "sessions_ended" and "login" in kinds and "device_new" in kinds
    assert "b_secret_event" not in kinds
    ids = [e["id"] for e in body["results"]]
    assert set(ids) == set(MemberSecurityEvent.objects.filter(member=member_a).values_list("pk", flat=True))


def test_the_security_log_pages(api_a, member_a):
    for n in range(5):
        MemberSecurityEvent.objects.create(member=member_a, kind=f"k{n}")
    first = api_a.get("/api/v1/me/security-log", {"limit": 3}).json()
    assert [e["kind"] for e in first["results"]] == ["k4", "k3", "k2"] and first["next_offset"] == 3
    rest = api_a.get("/api/v1/me/security-log", {"limit": 3, "offset": 3}).json()
    assert [e["kind"] for e in rest["results"]][:2] == ["k1", "k0"]


# --- contract ------------------------------------------------------------------------------------


def test_the_member_endpoints_generate_a_valid_schema_without_warnings(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json", "--file", str(out))
    paths = json.loads(out.read_text())["paths"]
    # At least these (the contact, password and consent endpoints are checked in their own tests).
    assert {p for p in paths if p.startswith("/api/v1/me")} >= {
        "/api/v1/me",
        "/api/v1/me/balance",
        "/api/v1/me/ledger",
        "/api/v1/me/devices",
        "/api/v1/me/devices/{device_id}/block",
        "/api/v1/me/sessions",
        "/api/v1/me/sessions/revoke-all",
        "/api/v1/me/sessions/{session_id}/revoke",
        "/api/v1/me/security-log",
        "/api/v1/me/preferences",
        "/api/v1/me/phone/confirm",
        "/api/v1/me/contact-changes",
        "/api/v1/me/contact-changes/{verification_id}/cancel",
    }
    assert "/api/v1/auth/email/confirm" in paths
    assert set(paths["/api/v1/me"]["patch"]["responses"]["200"]["content"]["application/json"]["schema"].values()) == {
        "#/components/schemas/MeUpdated"
    }
    assert paths["/api/v1/me"]["patch"]["security"] == [{"memberToken": []}]
