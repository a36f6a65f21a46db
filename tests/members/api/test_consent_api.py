"""Consents over the member API: given at enrolment (auth/otp/verify), read and changed at
me/preferences, their record at me/consents."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from loyalty.notifications import LocmemSmsBackend
from members.models import Consent, ConsentRecord, Member, MemberSecurityEvent, MemberSession, OtpChallenge
from members.selectors import member_by_phone
from members.services.consents import consents_record
from members.services.membership import member_create
from members.services.sessions import session_start
from tests.concurrency import race

pytestmark = pytest.mark.django_db

REQUEST = "/api/v1/auth/otp/request"
VERIFY = "/api/v1/auth/otp/verify"
PREFERENCES = "/api/v1/me/preferences"
CONSENTS = "/api/v1/me/consents"
NEWCOMER = "+60 13-555 0202"
NEWCOMER_E164 = "+60135550202"
DEVICE = {"fingerprint": "fp-consents-1", "label": "Pixel 8"}
PURPOSES = ["essential", "sms_marketing", "email_marketing", "analytics", "data_sharing", "personalisation"]
OPT_INS = PURPOSES[1:]


def error(response) -> dict:
    return response.json()["error"]


# --- enrolment ----------------------------------------------------------------------------------


@pytest.fixture
def challenge(db, django_capture_on_commit_callbacks):
    """An enrolment code requested for NEWCOMER: (challenge id, the code from the SMS)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(REQUEST, {"phone": NEWCOMER, "purpose": "enrol"}, format="json")
    assert response.status_code == 202, response.content
    text = next(m["text"] for m in LocmemSmsBackend.outbox if m["to"] == NEWCOMER_E164)
    return response.json()["challenge_id"], re.search(r"\b(\d{6})\b", text).group(1)


def enrol(challenge, **changes):
    challenge_id, code = challenge
    body = {
        "challenge_id": challenge_id,
        "phone": NEWCOMER,
        "code": code,
        "purpose": "enrol",
        "channel": "app",
        "device": DEVICE,
        "consents": {"essential": True},
    }
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not ...}
    return APIClient().post(VERIFY, body, format="json")


def _unspent(challenge) -> bool:
    row = OtpChallenge.objects.get(pk=challenge[0])
    return row.verified_at is None and row.guesses == 0


def test_enrolment_records_the_consents_given_in_the_same_transaction_as_the_member(challenge):
    response = enrol(challenge, consents={"essential": True, "email_marketing": True, "analytics": True})

    assert response.status_code == 201, response.content
    member = member_by_phone(NEWCOMER)
    current = dict(Consent.objects.filter(member=member).values_list("purpose", "granted"))
    assert current == {
        "essential": True, "sms_marketing": False, "email_marketing": True,
        "analytics": True, "data_sharing": False, "personalisation": False,
    }  # fmt: skip
    records = ConsentRecord.objects.filter(member=member)
    assert records.count() == 6
    assert {(r.source, r.version, r.session_id) for r in records} == {("enrolment", "2026-11", None)}
    event = MemberSecurityEvent.objects.get(member=member, kind="consent_changed")
    assert event.detail == {"purposes": PURPOSES, "source": "enrolment"}


@pytest.mark.parametrize(
    "consents",
    [..., None, {}, {"essential": False}, {"sms_marketing": True}, {"essential": False, "analytics": True}],
    ids=["missing", "null", "empty", "false", "opt-in-only", "false-with-opt-in"],
)
def test_enrolment_without_the_essential_consent_creates_nothing_and_leaves_the_code_unspent(challenge, consents):
    response = enrol(challenge, consents=consents)

    assert response.status_code == 400, response.content
    assert response["Cache-Control"] == "no-store"
    if consents is None:  # null is malformed, not a refusal of consent
        assert error(response)["code"] == "validation_error" and "consents" in error(response)["detail"]
    else:
        assert error(response)["code"] == "essential_consent_required"
        assert "consents" in error(response)["detail"]
    assert not Member.objects.exists() and not ConsentRecord.objects.exists() and not Consent.objects.exists()
    assert not MemberSession.objects.exists()
    assert _unspent(challenge)
    # and the same code still enrols once the consent is given
    assert enrol(challenge).status_code == 201
    assert Member.objects.count() == 1


def test_the_essential_refusal_names_the_field(challenge):
    body = error(enrol(challenge, consents={"essential": False}))

    assert body["detail"] == {"consents": {"essential": [body["message"]]}}
    assert "essential" in body["message"]


@pytest.mark.parametrize("purpose", OPT_INS)
def test_each_opt_in_at_enrolment_is_separate(challenge, purpose):
    assert enrol(challenge, consents={"essential": True, purpose: True}).status_code == 201

    granted = set(Consent.objects.filter(granted=True).values_list("purpose", flat=True))
    assert granted == {"essential", purpose}


@pytest.mark.parametrize(
    "consents",
    [
        {"essential": True, "sms_marketing": "true"},
        {"essential": True, "sms_marketing": 1},
        {"essential": "true"},
        {"essential": True, "newsletter": True},
        [True],
    ],
)
def test_malformed_enrolment_consents_are_400_per_field_and_spend_nothing(challenge, consents):
    response = enrol(challenge, consents=consents)

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error" and "consents" in error(response)["detail"]
    assert not Member.objects.exists() and _unspent(challenge)


def test_a_wrong_code_with_valid_consents_creates_nothing(challenge):
    wrong = f"{(int(challenge[1]) + 1) % 10**6:06d}"
    response = enrol((challenge[0], wrong))

    assert response.status_code == 401 and error(response)["code"] == "otp_wrong_code"
    assert not Member.objects.exists() and not ConsentRecord.objects.exists()


def test_consents_are_refused_at_login_and_the_code_is_not_spent(db, store_a, django_capture_on_commit_callbacks):
    member_create(home_store=store_a, phone=NEWCOMER)
    with django_capture_on_commit_callbacks(execute=True):
        requested = APIClient().post(REQUEST, {"phone": NEWCOMER, "purpose": "login"}, format="json")
    code = re.search(r"\b(\d{6})\b", LocmemSmsBackend.outbox[-1]["text"]).group(1)
    login = (requested.json()["challenge_id"], code)

    response = enrol(login, purpose="login", consents={"essential": True, "sms_marketing": True})

    assert response.status_code == 400 and error(response)["code"] == "validation_error"
    assert "consents" in error(response)["detail"]
    assert _unspent(login) and not ConsentRecord.objects.exists()
    assert enrol(login, purpose="login", consents=...).status_code == 200


# --- me/preferences ------------------------------------------------------------------------------


@pytest.fixture
def member_a(db, store_a):
    member = member_create(home_store=store_a, phone="+60 12-555 0101")
    consents_record(member=member, choices={"essential": True}, source="enrolment")
    return member


@pytest.fixture
def member_b(db, store_a):
    member = member_create(home_store=store_a, phone="+60 16-555 0303")
    consents_record(member=member, choices={"essential": True, "data_sharing": True}, source="enrolment")
    return member


def client_for(member, **kwargs) -> APIClient:
    tokens = session_start(member=member, device_fingerprint=f"fp-{member.pk}-{uuid.uuid4()}", **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    client.session_id = str(tokens.session_id)
    return client


@pytest.fixture
def api_a(member_a):
    return client_for(member_a, channel="app")


@pytest.fixture
def api_b(member_b):
    return client_for(member_b, channel="app")


def test_preferences_list_every_purpose_with_its_state(api_a, member_a):
    response = api_a.get(PREFERENCES)

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"consent_version", *PURPOSES}
    assert body["consent_version"] == "2026-11"
    assert body["essential"]["granted"] is True and body["essential"]["version"] == "2026-11"
    assert body["essential"]["updated_at"] is not None
    for purpose in OPT_INS:  # never recorded: not granted
        assert body[purpose] == {"granted": False, "version": None, "updated_at": None}


def test_a_member_without_any_record_reads_all_not_granted(db, store_a):
    member = member_create(home_store=store_a, phone="+60 17-555 0404")  # e.g. enrolled at a counter
    body = client_for(member, channel="app").get(PREFERENCES).json()

    assert all(body[p]["granted"] is False for p in PURPOSES)


def test_patch_changes_only_what_is_sent_and_records_the_session(api_a, member_a):
    response = api_a.patch(PREFERENCES, {"sms_marketing": True, "personalisation": True}, format="json")

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert {p for p in PURPOSES if body[p]["granted"]} == {"essential", "sms_marketing", "personalisation"}
    records = ConsentRecord.objects.filter(member=member_a, source="member").order_by("id")
    assert [(r.purpose, r.granted, r.version) for r in records] == [
        ("sms_marketing", True, "2026-11"),
        ("personalisation", True, "2026-11"),
    ]
    assert {str(r.session_id) for r in records} == {api_a.session_id}
    event = MemberSecurityEvent.objects.filter(member=member_a, kind="consent_changed").order_by("-id").first()
    assert event.detail == {
        "purposes": ["sms_marketing", "personalisation"],
        "source": "member",
        "session_id": api_a.session_id,
    }

    # withdrawing one leaves the other
    body = api_a.patch(PREFERENCES, {"sms_marketing": False}, format="json").json()
    assert body["sms_marketing"]["granted"] is False and body["personalisation"]["granted"] is True


def test_an_empty_patch_changes_nothing(api_a, member_a):
    before = ConsentRecord.objects.count()
    response = api_a.patch(PREFERENCES, {}, format="json")

    assert response.status_code == 200 and ConsentRecord.objects.count() == before


def test_essential_processing_cannot_be_withdrawn_here(api_a, member_a):
    before = ConsentRecord.objects.count()
    response = api_a.patch(PREFERENCES, {"essential": False, "analytics": True}, format="json")

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "essential_consent_required"
    assert body["detail"]["essential"]["code"] == "essential_consent_required"
    assert "close the account" in body["message"] and "erased" in body["message"]
    assert ConsentRecord.objects.count() == before
    assert not Consent.objects.filter(member=member_a, purpose="analytics").exists()
    # re-confirming it is harmless
    assert api_a.patch(PREFERENCES, {"essential": True}, format="json").status_code == 200
    assert ConsentRecord.objects.count() == before


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"sms_marketing": "yes"}, "sms_marketing", "invalid"),
        ({"sms_marketing": 1}, "sms_marketing", "invalid"),
        ({"analytics": None}, "analytics", "null"),
        ({"data_sharing": [True]}, "data_sharing", "invalid"),
        ({"newsletter": True}, "newsletter", "unknown_field"),
        ({"essential": "false"}, "essential", "invalid"),
    ],
)
def test_bad_input_is_400_per_field_and_writes_nothing(api_a, member_a, body, field, code):
    before = ConsentRecord.objects.count()
    response = api_a.patch(PREFERENCES, body, format="json")

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert error(response)["detail"][field]["code"] == code
    assert ConsentRecord.objects.count() == before


def test_every_bad_field_is_reported_at_once_and_nothing_is_half_saved(api_a, member_a):
    before = ConsentRecord.objects.count()
    response = api_a.patch(PREFERENCES, {"sms_marketing": True, "analytics": "no", "personalisation": 0}, format="json")

    assert response.status_code == 400
    assert set(error(response)["detail"]) == {"analytics", "personalisation"}
    assert ConsentRecord.objects.count() == before  # not even the valid sms_marketing


def test_a_body_that_is_not_an_object_or_not_json_is_refused(api_a):
    assert api_a.patch(PREFERENCES, [True], format="json").status_code == 400
    assert (
        api_a.patch(PREFERENCES, "sms_marketing=1", content_type="application/x-www-form-urlencoded").status_code == 415
    )


def test_a_remember_me_session_may_withdraw_but_not_grant(member_a):
    consents_record(member=member_a, choices={"analytics": True}, source="member")
    web = client_for(member_a, channel="web", remember_me=True)

    grant = web.patch(PREFERENCES, {"sms_marketing": True}, format="json")
    assert grant.status_code == 403 and error(grant)["code"] == "change_details_not_allowed"
    assert error(grant)["detail"] == {"purposes": ["sms_marketing"]}
    assert not Consent.objects.filter(member=member_a, purpose="sms_marketing").exists()

    withdraw = web.patch(PREFERENCES, {"analytics": False}, format="json")
    assert withdraw.status_code == 200 and withdraw.json()["analytics"]["granted"] is False


# --- me/consents ---------------------------------------------------------------------------------


def test_the_record_of_consent_is_the_members_own_newest_first(api_a, api_b, member_a, member_b):
    api_a.patch(PREFERENCES, {"email_marketing": True}, format="json")
    api_a.patch(PREFERENCES, {"email_marketing": False}, format="json")

    response = api_a.get(CONSENTS)

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["next_offset"] is None
    rows = [(r["purpose"], r["granted"], r["source"]) for r in body["results"]]
    assert rows == [
        ("email_marketing", False, "member"),
        ("email_marketing", True, "member"),
        ("essential", True, "enrolment"),
    ]
    assert set(body["results"][0]) == {"id", "purpose", "granted", "version", "source", "created_at"}
    # member A never sees B's records (B granted data sharing), and B never sees A's
    ids_b = set(ConsentRecord.objects.filter(member=member_b).values_list("id", flat=True))
    assert not ids_b & {r["id"] for r in body["results"]}
    rows_b = [(r["purpose"], r["granted"]) for r in api_b.get(CONSENTS).json()["results"]]
    assert ("email_marketing", True) not in rows_b and ("data_sharing", True) in rows_b
    assert api_a.get(PREFERENCES).json()["data_sharing"]["granted"] is False
    assert api_b.get(PREFERENCES).json()["email_marketing"]["granted"] is False


def test_a_members_changes_never_touch_another_member(api_a, member_a, member_b):
    before = list(ConsentRecord.objects.filter(member=member_b).values_list("id", "granted"))

    api_a.patch(PREFERENCES, {"data_sharing": True, "analytics": True}, format="json")

    assert list(ConsentRecord.objects.filter(member=member_b).values_list("id", "granted")) == before
    assert not Consent.objects.filter(member=member_b, purpose="analytics").exists()


def test_the_record_of_consent_pages(api_a, member_a):
    for n in range(4):
        consents_record(member=member_a, choices={"analytics": n % 2 == 0}, source="member")

    first = api_a.get(CONSENTS, {"limit": 2}).json()
    rest = api_a.get(CONSENTS, {"limit": 2, "offset": first["next_offset"]}).json()

    assert len(first["results"]) == 2 and first["next_offset"] == 2
    assert len(rest["results"]) == 2 and rest["next_offset"] == 4
    assert api_a.get(CONSENTS, {"limit": 2, "offset": 4}).json() == {
        "results": [{**api_a.get(CONSENTS).json()["results"][-1]}],
        "next_offset": None,
    }
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}, {"page": 2}):
        response = api_a.get(CONSENTS, bad)
        assert response.status_code == 400 and error(response)["code"] == "validation_error", bad


@pytest.mark.parametrize(("method", "path"), [("get", PREFERENCES), ("patch", PREFERENCES), ("get", CONSENTS)])
def test_every_consent_endpoint_needs_a_valid_token(member_a, method, path):
    anonymous = getattr(APIClient(), method)(path, {}, format="json") if method == "patch" else APIClient().get(path)
    assert anonymous.status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert (bad.patch(path, {}, format="json") if method == "patch" else bad.get(path)).status_code == 401


# --- concurrency ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_patches_leave_history_and_current_state_consistent(store_a):
    member = member_create(home_store=store_a, phone="+60 12-555 0101")
    consents_record(member=member, choices={"essential": True}, source="enrolment")
    clients = [client_for(member, channel="app") for _ in range(6)]
    bodies = [
        {"sms_marketing": True, "email_marketing": True},
        {"sms_marketing": False},
        {"sms_marketing": True, "analytics": True},
        {"email_marketing": False, "analytics": False},
        {"sms_marketing": False, "email_marketing": True},
        {"sms_marketing": True},
    ]

    responses = race(
        *[lambda c=c, b=b: c.patch(PREFERENCES, b, format="json") for c, b in zip(clients, bodies, strict=True)]
    )

    assert [r.status_code for r in responses] == [200] * 6
    final = clients[0].get(PREFERENCES).json()
    for purpose in PURPOSES:
        values = list(
            ConsentRecord.objects.filter(member=member, purpose=purpose)
            .order_by("id")
            .values_list("granted", flat=True)
        )
        assert all(a != b for a, b in zip(values, values[1:], strict=False)), (purpose, values)  # only changes
        assert final[purpose]["granted"] == (values[-1] if values else False), purpose
    # every change carries the session that made it
    sessions = {str(c.session_id) for c in clients}
    assert {
        str(s) for s in ConsentRecord.objects.filter(source="member").values_list("session_id", flat=True)
    } <= sessions


# --- contract ------------------------------------------------------------------------------------


def test_the_consent_endpoints_are_in_a_valid_schema(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json", "--file", str(out))
    paths = json.loads(out.read_text())["paths"]

    assert set(paths[PREFERENCES]) == {"get", "patch"} and set(paths[CONSENTS]) == {"get"}
    assert paths[PREFERENCES]["patch"]["security"] == [{"memberToken": []}]
    assert set(paths[PREFERENCES]["patch"]["responses"]) == {"200", "400", "401", "403", "413"}
    assert "essential_consent_required" in paths[PREFERENCES]["patch"]["responses"]["400"]["description"]
    assert {p["name"] for p in paths[CONSENTS]["get"]["parameters"]} == {"limit", "offset"}
    verify = json.loads(out.read_text())["components"]["schemas"]["MemberEnrolmentConsents"]
    assert verify["required"] == ["essential"] and set(verify["properties"]) == set(PURPOSES)
