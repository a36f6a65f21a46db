"""The terms gate of the member API (issue 15): a member who has not accepted the terms in
force may read but not change things, but for the exempt endpoints; and the acceptance
recorded at enrolment (``terms_version`` on ``POST /api/v1/auth/otp/verify``)."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from compliance import consumer
from compliance.models import TermsAcceptance
from loyalty.notifications import LocmemSmsBackend
from members.api.base import MeApi
from members.models import Member
from members.selectors import member_by_phone
from members.services.membership import member_create
from tests.member_client import member_client

pytestmark = pytest.mark.django_db

UNSAFE = ("post", "put", "patch", "delete")

# Every state-changing member endpoint a member who has not accepted the terms may still
# call, and why (the reason is the view's ``terms_exempt``).
EXEMPT = {
    "api/v1/me/terms/accept",  # accepting the terms: the way through the gate
    "api/v1/me/sessions/revoke-all",  # managing sessions (security)
    "api/v1/me/sessions/<str:session_id>/revoke",  # managing sessions (the current one: signing out)
    "api/v1/me/devices/<str:device_id>/block",  # security: a lost or stolen device
    "api/v1/me/step-up",  # the step-up data-subject requests and contact changes need
    "api/v1/me/step-up/verify",
    "api/v1/me/complaints",  # complaints (about the terms too)
    "api/v1/me/data-requests",  # data-subject requests: PDPA rights
    "api/v1/me/data-requests/<str:pk>/confirm",
    "api/v1/me/data-requests/<str:pk>/cancel",
    "api/v1/me/data-export",
    "api/v1/me",  # correction of personal data (PDPA s.22), through the verified-contact flow
    "api/v1/me/phone/confirm",
    "api/v1/me/contact-changes/<str:verification_id>/cancel",
    "api/v1/me/preferences",  # consent choices: withdrawing consent is a right
    "api/v1/me/vouchers/<str:voucher_id>/report-lost",  # security: a lost voucher
}
GATED = {
    "api/v1/me/vouchers",  # points spent on a voucher
    "api/v1/me/redemptions/<str:hold_id>/confirm",  # a redemption at the till
    "api/v1/me/password",  # a password set or removed
    "api/v1/me/restriction/lift",  # spending unfrozen
}


def _member_routes():
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), getattr(p.callback, "view_class", None)

    for route, view in walk(get_resolver().url_patterns):
        if view is not None and issubclass(view, MeApi) and any(hasattr(view, m) for m in UNSAFE):
            yield route, view


def test_every_state_changing_member_endpoint_is_gated_or_exempt_with_a_reason():
    routes = dict(_member_routes())
    exempt = {route for route, view in routes.items() if view.terms_exempt}
    assert exempt == EXEMPT
    assert set(routes) - exempt == GATED
    assert all(len(view.terms_exempt) > 20 for view in routes.values() if view.terms_exempt)


@pytest.fixture
def member(store_a):
    return member_create(home_store=store_a, phone="+60125550111", name="Aina Gate", preferred_channel="sms")


@pytest.fixture
def publish(staff_by_role):
    def publish(title="Terms"):
        admin = staff_by_role["program_admin"]
        draft = consumer.terms_draft_save(actor=admin, title=title, body="Body", effective_from=timezone.now())
        return consumer.terms_publish(actor=admin, version=draft)

    return publish


def _code(response) -> str:
    return response.json()["error"]["code"]


def test_without_terms_in_force_nothing_is_refused(member):
    api = member_client(member)
    answer = api.post("/api/v1/me/restriction/lift", {}, format="json")
    assert answer.status_code != 403 and _code(answer) == "not_restricted"
    assert api.post("/api/v1/me/vouchers", {}, format="json").status_code == 400


def test_writes_refused_until_the_member_accepts_then_allowed(member, publish):
    terms = publish()
    api = member_client(member)
    for url in ("/api/v1/me/restriction/lift", "/api/v1/me/vouchers"):
        answer = api.post(url, {}, format="json")
        assert answer.status_code == 403 and _code(answer) == "terms_acceptance_required", url
        assert "Accept the current terms" in answer.json()["error"]["message"]
        assert answer.json()["error"]["detail"] == {"current_version": terms.version}
    assert api.delete("/api/v1/me/password").status_code == 403
    # reads keep working
    for url in ("/api/v1/me", "/api/v1/me/balance", "/api/v1/me/terms", "/api/v1/me/sessions", "/api/v1/me/vouchers"):
        assert api.get(url).status_code == 200, url
    # accepting lifts the gate: the same calls reach their own answers
    assert api.post("/api/v1/me/terms/accept", {"version": terms.version}, format="json").status_code == 200
    assert _code(api.post("/api/v1/me/restriction/lift", {}, format="json")) == "not_restricted"
    assert api.post("/api/v1/me/vouchers", {}, format="json").status_code == 400


def test_a_new_version_closes_the_gate_again(member, publish):
    api = member_client(member)
    first = publish()
    consumer.terms_accept(member=member, version=first.version)
    assert _code(api.post("/api/v1/me/restriction/lift", {}, format="json")) == "not_restricted"
    publish("Terms v2")
    assert _code(api.post("/api/v1/me/restriction/lift", {}, format="json")) == "terms_acceptance_required"


def test_the_exempt_endpoints_work_before_acceptance(member, publish, store_a):
    publish()
    api = member_client(member)
    filed = api.post("/api/v1/me/complaints", {"kind": "service", "subject": "Terms", "body": "Unclear"}, format="json")
    assert filed.status_code == 201, filed.content
    assert api.patch("/api/v1/me", {"name": "Aina Corrected"}, format="json").status_code == 200
    assert api.patch("/api/v1/me/preferences", {"sms_marketing": False}, format="json").status_code == 200
    # a data-subject request passes the gate and meets its own step-up refusal
    asked = api.post("/api/v1/me/data-requests", {"kind": "access"}, format="json")
    assert asked.status_code == 403 and _code(asked) == "step_up_required"
    assert api.post("/api/v1/me/step-up", {"action": "data_request"}, format="json").status_code != 403
    other = member_client(member, fingerprint="fp-other")
    assert api.post("/api/v1/me/sessions/revoke-all", {}, format="json").status_code == 200
    assert other.get("/api/v1/me").status_code == 401
    # signing out (auth/logout is not a /me endpoint: never gated)
    assert api.post("/api/v1/auth/logout").status_code == 204


# --- acceptance at enrolment ---------------------------------------------------------------------

STRANGER, STRANGER_E164 = "+60 13-555 0299", "+60135550299"
DEVICE = {"fingerprint": "fp-terms-enrol", "label": "Pixel"}


@pytest.fixture
def enrol(django_capture_on_commit_callbacks):
    client = APIClient()

    def code():
        with django_capture_on_commit_callbacks(execute=True):
            asked = client.post("/api/v1/auth/otp/request", {"phone": STRANGER, "purpose": "enrol"}, format="json")
        sent = [m for m in LocmemSmsBackend.outbox if m["to"] == STRANGER_E164][-1]["text"]
        return asked.json()["challenge_id"], re.search(r"\b(\d{6})\b", sent).group(1)

    def enrol(challenge=None, **extra):
        challenge_id, sms = challenge or code()
        body = {"challenge_id": challenge_id, "phone": STRANGER, "code": sms, "purpose": "enrol", "channel": "app",
                "device": DEVICE, "consents": {"essential": True}, **extra}  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/v1/auth/otp/verify", body, format="json")

    enrol.code = code
    return enrol


def test_enrolment_records_the_acceptance_of_the_terms_in_force(publish, enrol):
    terms = publish()
    answer = enrol(terms_version=terms.version)
    assert answer.status_code == 201, answer.content
    acceptance = TermsAcceptance.objects.get(member=member_by_phone(STRANGER_E164))
    assert acceptance.version == terms and acceptance.channel == "enrolment"
    token = answer.json()["access_token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/me/terms").json()["acceptance_required"] is False


def test_enrolment_without_terms_version_records_nothing_and_asks_later(publish, enrol):
    publish()
    assert enrol().status_code == 201
    member = member_by_phone(STRANGER_E164)
    assert not TermsAcceptance.objects.filter(member=member).exists()
    assert consumer.terms_acceptance_required(member)


def test_enrolment_naming_another_version_is_409_before_the_code_is_spent(publish, enrol):
    terms = publish()
    challenge = enrol.code()
    stale = enrol(challenge, terms_version=terms.version + 1)
    assert stale.status_code == 409 and _code(stale) == "terms_not_current"
    assert stale.json()["error"]["detail"] == {"current_version": terms.version}
    assert not Member.objects.exists()
    # the same code still enrols
    assert enrol(challenge, terms_version=terms.version).status_code == 201


def test_enrolment_naming_terms_when_none_are_in_force_is_409(enrol):
    answer = enrol(terms_version=1)
    assert answer.status_code == 409 and _code(answer) == "terms_not_current"
    assert not Member.objects.exists()


def test_terms_version_with_a_login_is_400(member, django_capture_on_commit_callbacks):
    client = APIClient()
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post("/api/v1/auth/otp/request", {"phone": "+60125550111", "purpose": "login"}, format="json")
    sms = re.search(r"\b(\d{6})\b", LocmemSmsBackend.outbox[-1]["text"]).group(1)
    body = {"challenge_id": asked.json()["challenge_id"], "phone": "+60125550111", "code": sms, "purpose": "login",
            "channel": "app", "device": DEVICE, "terms_version": 1}  # fmt: skip
    answer = client.post("/api/v1/auth/otp/verify", body, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["detail"]["terms_version"]
