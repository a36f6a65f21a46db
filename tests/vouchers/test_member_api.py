"""The member's vouchers over HTTP: /api/v1/rewards and /api/v1/me/vouchers."""

# ruff: noqa: F811  (the fixtures imported from test_issuing are parameters here)
from __future__ import annotations

import base64
import json
import os
import re
import uuid

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from members.models import Member
from members.services.membership import member_create
from tests.member_client import member_client
from vouchers.models import Voucher
from vouchers.services.tokens import qr_token_verify

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limits_off", "sms_outbox")]


@pytest.fixture
def member(member_with_phone):
    """This module's member has a name and a phone on file, like the issuing tests'."""
    return member_with_phone


FORMATTED_CODE = re.compile(r"\A[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){3}\Z")


client_for = member_client


@pytest.fixture
def api(member):
    return client_for(member)


@pytest.fixture
def other(store_a):
    return member_create(home_store=store_a, name="Other Person", phone="+60 13-555 0888")


@pytest.fixture
def other_api(other):
    return client_for(other)


def error_code(response) -> str:
    return response.json()["error"]["code"]


def purchase(api, reward_id, key="key-1", **extra):
    return api.post("/api/v1/me/vouchers", {"reward_id": reward_id, **extra}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def bought(api, member, give, reward):
    give(member, 1000)
    response = purchase(api, reward.pk)
    assert response.status_code == 201, response.content
    return response.json()


# --- authentication and headers -------------------------------------------------------------------

PATHS = [
    ("get", "/api/v1/rewards"),
    ("get", "/api/v1/me/vouchers"),
    ("post", "/api/v1/me/vouchers"),
    ("get", f"/api/v1/me/vouchers/{uuid.uuid4()}"),
    ("get", f"/api/v1/me/vouchers/{uuid.uuid4()}/qr"),
    ("get", f"/api/v1/me/vouchers/{uuid.uuid4()}/barcode"),
    ("post", f"/api/v1/me/vouchers/{uuid.uuid4()}/report-lost"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_every_endpoint_needs_a_member_token_and_is_never_cached(member, method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401 and response["Cache-Control"] == "no-store"


# --- catalogue ------------------------------------------------------------------------------------


def test_the_catalogue_flags_what_the_member_may_buy(api, member, give, make_reward):
    give(member, 1000)
    cheap = make_reward(name="Coffee", kind="free_item", value_minor=None, item="Latte", points_price=300)
    dear = make_reward(name="Voucher RM50", points_price=5001, stock_remaining=3)

    response = api.get("/api/v1/rewards")

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    offers = {o["id"]: o for o in response.json()}
    assert offers[cheap.pk] == {
        "id": cheap.pk, "name": "Coffee", "kind": "free_item", "value_minor": None, "percent": None,
        "item": "Latte", "description": "", "points_price": 300, "valid_days": 30, "available_from": None,
        "available_until": None, "stock_remaining": None, "min_tier": 1, "per_member_limit": None, "held": 0,
        "eligible": True, "reasons": [], "step_up_required": False,
    }  # fmt: skip
    assert offers[dear.pk]["eligible"] is False and offers[dear.pk]["reasons"] == ["insufficient_points"]
    assert offers[dear.pk]["step_up_required"] is True and offers[dear.pk]["stock_remaining"] == 3


# --- buying ---------------------------------------------------------------------------------------


def test_buying_answers_201_and_a_replay_200_with_the_same_voucher(api, member, give, reward):
    give(member, 1000)

    first = purchase(api, reward.pk)
    again = purchase(api, reward.pk)

    assert first.status_code == 201 and "Idempotency-Replayed" not in first
    body = first.json()
    assert FORMATTED_CODE.match(body["code"]) and body["state"] == "active" and body["source"] == "purchase"
    assert body["points_paid"] == 500 and body["reward"]["id"] == reward.pk
    assert again.status_code == 200 and again["Idempotency-Replayed"] == "true"
    assert again.json() == body
    assert Voucher.objects.get().code == body["code"].replace("-", "")


def test_the_same_key_for_another_reward_is_422(api, member, give, make_reward):
    give(member, 2000)
    first, second = make_reward(), make_reward()
    purchase(api, first.pk)
    response = purchase(api, second.pk)
    assert response.status_code == 422 and error_code(response) == "idempotency_key_reused"


@pytest.mark.parametrize("key", [None, "", "é", "x" * 129])
def test_the_idempotency_key_is_required(api, member, give, reward, key):
    give(member, 1000)
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    response = api.post("/api/v1/me/vouchers", {"reward_id": reward.pk}, format="json", **headers)
    assert response.status_code == 400 and error_code(response) == "idempotency_key_required"
    assert not Voucher.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"), [({}, "reward_id"), ({"reward_id": "1"}, "reward_id"), ({"reward_id": 1, "x": 1}, "x")]
)
def test_a_malformed_body_is_400(api, body, field):
    response = api.post("/api/v1/me/vouchers", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400 and error_code(response) == "validation_error"
    assert field in response.json()["error"]["detail"]


def test_refusals_over_http(api, member, give, make_reward, settings):
    give(member, 1000)
    cases = {
        "missing": (purchase(api, 999_999, key="a"), 404, "reward_not_found"),
        "inactive": (purchase(api, make_reward(active=False).pk, key="b"), 409, "reward_inactive"),
        "stock": (purchase(api, make_reward(stock_remaining=0).pk, key="c"), 409, "out_of_stock"),
        "tier": (purchase(api, make_reward(min_tier=4).pk, key="d"), 403, "tier_too_low"),
        "points": (purchase(api, make_reward(points_price=1001).pk, key="e"), 422, "insufficient_points"),
    }
    for name, (response, status, code) in cases.items():
        assert (response.status_code, error_code(response)) == (status, code), name
        assert response["Cache-Control"] == "no-store"
    assert not Voucher.objects.exists()


def test_the_per_member_limit_over_http(api, member, give, make_reward):
    give(member, 2000)
    limited = make_reward(per_member_limit=1)
    assert purchase(api, limited.pk, key="1").status_code == 201
    response = purchase(api, limited.pk, key="2")
    assert response.status_code == 409 and error_code(response) == "per_member_limit_reached"
    assert response.json()["error"]["detail"] == {"limit": 1}


def test_a_web_remember_me_session_may_not_buy(member, give, reward):
    give(member, 1000)
    response = purchase(client_for(member, channel="web", remember_me=True), reward.pk)
    assert response.status_code == 403 and error_code(response) == "redeem_not_allowed"


def test_above_5000_points_a_step_up_is_needed(api, member, give, make_reward, verified_step_up):
    give(member, 20_000)
    at, above = make_reward(points_price=5000), make_reward(points_price=5001)

    assert purchase(api, at.pk, key="at").status_code == 201
    refused = purchase(api, above.pk, key="above")
    assert refused.status_code == 403 and error_code(refused) == "step_up_required"
    assert refused.json()["error"]["detail"] == {"actions": ["redeem"]}

    verified_step_up(member)
    assert purchase(api, above.pk, key="above").status_code == 201


# --- the member's vouchers ------------------------------------------------------------------------


def test_the_list_pages_and_filters_by_state(api, member, give, reward):
    give(member, 5000)
    ids = [purchase(api, reward.pk, key=f"k{n}").json()["id"] for n in range(3)]
    api.post(f"/api/v1/me/vouchers/{ids[0]}/report-lost")

    first = api.get("/api/v1/me/vouchers", {"limit": 2})
    assert first.status_code == 200 and first["Cache-Control"] == "no-store"
    page = first.json()
    assert [v["id"] for v in page["results"]] == ids[::-1][:2] and page["next_offset"] == 2
    rest = api.get("/api/v1/me/vouchers", {"limit": 2, "offset": 2}).json()
    assert [v["id"] for v in rest["results"]] == [ids[0]] and rest["next_offset"] is None
    reported = api.get("/api/v1/me/vouchers", {"state": "reported"}).json()["results"]
    assert [v["id"] for v in reported] == [ids[0]] and reported[0]["state"] == "reported"
    bad = api.get("/api/v1/me/vouchers", {"state": "lost"})
    assert bad.status_code == 400 and error_code(bad) == "validation_error"


def test_a_voucher_expires_at_its_expiry(api, bought):
    from django.utils.dateparse import parse_datetime

    expires_at = parse_datetime(bought["expires_at"])
    with time_machine.travel(expires_at, tick=False):
        # The access token outlives nothing here: sign in again at that time.
        member = Member.objects.get(vouchers__id=bought["id"])
        later = client_for(member)
        assert later.get(f"/api/v1/me/vouchers/{bought['id']}").json()["state"] == "expired"
        response = later.get(f"/api/v1/me/vouchers/{bought['id']}/qr")
        assert response.status_code == 409 and error_code(response) == "voucher_not_active"
        assert response.json()["error"]["detail"] == {"state": "expired"}


def test_another_members_voucher_is_404_everywhere(bought, other_api):
    voucher_id = bought["id"]
    for method, path in [
        ("get", f"/api/v1/me/vouchers/{voucher_id}"),
        ("get", f"/api/v1/me/vouchers/{voucher_id}/qr"),
        ("get", f"/api/v1/me/vouchers/{voucher_id}/barcode"),
        ("post", f"/api/v1/me/vouchers/{voucher_id}/report-lost"),
        ("get", "/api/v1/me/vouchers/not-a-uuid"),
        ("get", "/api/v1/me/vouchers/not-a-uuid/barcode"),
    ]:
        response = getattr(other_api, method)(path)
        assert response.status_code == 404 and error_code(response) == "not_found", path
        assert response["Cache-Control"] == "no-store"
    assert other_api.get("/api/v1/me/vouchers").json()["results"] == []
    assert Voucher.objects.get(pk=voucher_id).status == "active"


def test_the_qr_json_holds_a_token_that_verifies(api, member, bought):
    response = api.get(f"/api/v1/me/vouchers/{bought['id']}/qr")

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"voucher_id", "token", "step", "expires_at", "svg", "png"}
    claims = qr_token_verify(body["token"])
    assert str(claims.voucher_id) == bought["id"] == body["voucher_id"]
    assert claims.member_id == member.member_id and claims.step == body["step"]
    assert "<svg" in body["svg"]
    assert base64.b64decode(body["png"]).startswith(b"\x89PNG\r\n\x1a\n")
    # The code is not in the token (the member binding travels signed, the code does not).
    assert bought["code"].replace("-", "") not in json.dumps(body)


def test_a_web_remember_me_session_may_not_show_the_qr(member, bought):
    response = client_for(member, channel="web", remember_me=True).get(f"/api/v1/me/vouchers/{bought['id']}/qr")
    assert response.status_code == 403 and error_code(response) == "redeem_not_allowed"


def test_the_barcode_is_an_svg_of_the_code(api, bought):
    response = api.get(f"/api/v1/me/vouchers/{bought['id']}/barcode", HTTP_ACCEPT="image/svg+xml")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml" and response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content.lstrip().startswith((b"<svg", b"<?xml"))


def test_reporting_lost_stops_the_qr_at_once(api, bought):
    response = api.post(f"/api/v1/me/vouchers/{bought['id']}/report-lost")
    assert response.status_code == 200 and response.json()["state"] == "reported"
    assert response.json()["reported_at"] is not None
    qr = api.get(f"/api/v1/me/vouchers/{bought['id']}/qr")
    assert qr.status_code == 409 and qr.json()["error"]["detail"] == {"state": "reported"}
    again = api.post(f"/api/v1/me/vouchers/{bought['id']}/report-lost")
    assert again.status_code == 409 and error_code(again) == "voucher_not_active"


# --- schema ---------------------------------------------------------------------------------------


def test_the_schema_documents_the_voucher_endpoints(client):
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", os.devnull)
    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)
    paths = schema["paths"]
    assert {
        "/api/v1/rewards",
        "/api/v1/me/vouchers",
        "/api/v1/me/vouchers/{voucher_id}",
        "/api/v1/me/vouchers/{voucher_id}/qr",
        "/api/v1/me/vouchers/{voucher_id}/barcode",
        "/api/v1/me/vouchers/{voucher_id}/report-lost",
    } <= set(paths)
    buy = paths["/api/v1/me/vouchers"]["post"]
    assert {"200", "201", "400", "401", "403", "404", "409", "422"} <= set(buy["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in buy["parameters"])
    assert "Idempotency-Replayed" in buy["responses"]["200"]["headers"]
    assert "image/svg+xml" in paths["/api/v1/me/vouchers/{voucher_id}/barcode"]["get"]["responses"]["200"]["content"]
