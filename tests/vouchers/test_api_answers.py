"""Issue 13: the API answers one way, whichever endpoint and whoever built the body.

- Every timestamp in every answer is ISO 8601 in UTC written with ``Z``
  (``loyalty.kernel.timestamps``): a walk of representative calls of every endpoint family
  (till earn, return, balance, hold, authorise, capture, void, voucher validate and redeem,
  offline redemptions, shifts; the member's balance, history, vouchers, rewards, devices,
  sessions, consents, security log, pending redemptions; a refusal's detail) finds no other
  offset. DRF's own fields used to answer in the programme's zone (``+08:00``) while the
  services' bodies answered ``+00:00``: the same ``authorised_at`` both ways.
- A retry under the same Idempotency-Key answers the first answer's bytes exactly.
- The till's balance and the member's balance agree field by field, in the ledger's
  words: ``available``, ``held`` (redemptions in progress), ``pending`` (return window).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from loyalty.kernel.timestamps import API_DATETIME_PATTERN
from tests.member_client import member_client
from tests.vouchers.till_api_helpers import hold
from tests.vouchers.till_helpers import sms_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("till_settings", "sms_outbox")]

LOOKS_LIKE_A_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
API_DATETIME = re.compile(API_DATETIME_PATTERN)


def strings_in(value, path="$"):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


class Answers:
    """Every answer seen, by call, for the timestamp walk."""

    def __init__(self):
        self.seen: list[tuple[str, object]] = []

    def add(self, label: str, response, *statuses: int):
        assert response.status_code in (statuses or (200, 201)), (label, response.status_code, response.content)
        self.seen.append((label, json.loads(response.content)))
        return response

    def timestamps(self):
        for label, body in self.seen:
            for path, text in strings_in(body):
                if LOOKS_LIKE_A_TIMESTAMP.search(text):
                    yield f"{label} {path}", text


@pytest.fixture
def pending_window(settings):
    settings.LOYALTY_PENDING_DAYS = 14


@pytest.fixture
def answers():
    return Answers()


def test_the_programme_zone_is_not_utc():
    """The walk below would prove nothing in a UTC programme: DRF's fields answer in it."""
    assert settings.TIME_ZONE not in ("UTC", "Etc/UTC")


def test_every_timestamp_of_every_answer_is_utc_with_z(
    pos, shopper, voucher, make_voucher, make_reward, answers, pending_window, django_capture_on_commit_callbacks
):
    number = shopper.loyalty_number
    # the till: points
    answers.add(
        "purchase", pos.post("purchases", {"loyalty_number": number, "receipt_number": "R1", "amount_minor": 9900})
    )
    answers.add("return", pos.post("returns", {"loyalty_number": number, "receipt_number": "R1", "points": 1}))
    answers.add("balance", pos.post("members/balance", {"loyalty_number": number}, key=None), 200)
    with django_capture_on_commit_callbacks(execute=True):
        held = answers.add("hold", hold(pos, shopper, 300)).json()
    offer = held["authorisation"]
    body = {"challenge_id": offer["challenge_id"], "code": sms_code()}
    answers.add("authorise", pos.post(f"redemptions/{held['hold_id']}/authorise", body, key=None), 200)
    answers.add("capture", pos.post(f"redemptions/{held['hold_id']}/capture", {}))
    other = hold(pos, shopper, 200, key="hold-2").json()
    answers.add("void", pos.post(f"redemptions/{other['hold_id']}/void", {}))
    # the till: vouchers, offline
    mine = make_voucher(owner=shopper)
    code = {"code": mine.code, "loyalty_number": number}
    answers.add("voucher validate", pos.post("vouchers/validate", code, key=None), 200)
    answers.add("voucher redeem", pos.post("vouchers/redeem", code))
    answers.add("public keys", pos.get("vouchers/public-key", key=None), 200)
    attempted = (timezone.now() - timedelta(minutes=5)).isoformat()
    offline = {"loyalty_number": number, "attempted_at": attempted, "points": 150}
    answers.add("offline", pos.post("offline/redemptions", offline), 202)
    # the member
    api = member_client(shopper)
    for path in ("balance", "ledger", "vouchers", "devices", "sessions", "consents", "security-log"):
        answers.add(f"me/{path}", api.get(f"/api/v1/me/{path}"), 200)
    answers.add("me/voucher", api.get(f"/api/v1/me/vouchers/{mine.pk}"), 200)
    answers.add("me/redemptions/pending", api.get("/api/v1/me/redemptions/pending"), 200)
    answers.add("rewards", api.get("/api/v1/rewards"), 200)
    # a refusal whose detail carries a time
    later = make_reward(available_from=timezone.now() + timedelta(days=3), points_price=100)
    refused = api.post("/api/v1/me/vouchers", {"reward_id": later.pk}, format="json", HTTP_IDEMPOTENCY_KEY="early")
    answers.add("reward not yet available", refused, 409)
    answers.add("shift end", pos.post("shifts/end", {}, key=None), 200)

    found = list(answers.timestamps())
    wrong = [(where, text) for where, text in found if not API_DATETIME.match(text)]
    assert not wrong
    where = {label.split(" $")[0] for label, _ in found}
    # the walk saw the fields that used to differ, DRF's and the services' alike
    assert {"purchase", "hold", "authorise", "capture", "voucher redeem", "offline", "me/sessions"} <= where
    assert {"reward not yet available", "me/ledger", "me/devices", "me/vouchers"} <= where


def test_a_replayed_write_is_the_first_answer_byte_for_byte(pos, shopper, pending_window):
    body = {"loyalty_number": shopper.loyalty_number, "receipt_number": "R-replay", "amount_minor": 12_345}
    first = pos.post("purchases", body, key="replay-1")
    again = pos.post("purchases", body, key="replay-1")

    assert first.status_code == again.status_code == 201, first.content
    assert again["Idempotency-Replayed"] == "true" and "Idempotency-Replayed" not in first
    assert again.content == first.content


def test_a_replayed_capture_and_voucher_redemption_are_their_first_answers_byte_for_byte(
    pos, shopper, make_voucher, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        held = hold(pos, shopper, 300).json()
    pos.post(f"redemptions/{held['hold_id']}/authorise", {"challenge_id": held["authorisation"]["challenge_id"],
                                                           "code": sms_code()}, key=None)  # fmt: skip
    first = pos.post(f"redemptions/{held['hold_id']}/capture", {}, key="capture-1")
    again = pos.post(f"redemptions/{held['hold_id']}/capture", {}, key="capture-1")
    assert first.status_code == 201 and again["Idempotency-Replayed"] == "true"
    assert again.content == first.content

    voucher = make_voucher(owner=shopper)
    code = {"code": voucher.code, "loyalty_number": shopper.loyalty_number}
    first = pos.post("vouchers/redeem", code, key="voucher-1")
    again = pos.post("vouchers/redeem", code, key="voucher-1")
    assert first.status_code == 201 and again["Idempotency-Replayed"] == "true"
    assert again.content == first.content


def test_the_till_and_the_member_see_the_same_balance_field_by_field(pos, shopper, pending_window):
    """10,000 points available, then 2,000 earned inside the return window and 300 held."""
    purchase = {"loyalty_number": shopper.loyalty_number, "receipt_number": "R-window", "amount_minor": 200_000}
    assert pos.post("purchases", purchase).status_code == 201
    assert hold(pos, shopper, 300).status_code == 201

    at_till = pos.post("members/balance", {"loyalty_number": shopper.loyalty_number}, key=None).json()["balance"]
    in_app = member_client(shopper).get("/api/v1/me/balance").json()

    assert at_till["held"] == 300 and at_till["pending"] > 0 and at_till["available"] == 10_000 - 300
    assert at_till == {field: in_app[field] for field in ("available", "held", "pending")}


def test_a_write_answers_the_same_balance_as_the_look_up(pos, shopper, pending_window):
    purchase = {"loyalty_number": shopper.loyalty_number, "receipt_number": "R-w2", "amount_minor": 50_000}
    written = pos.post("purchases", purchase).json()["balance"]
    looked_up = pos.post("members/balance", {"loyalty_number": shopper.loyalty_number}, key=None).json()["balance"]
    assert written == looked_up and written["pending"] > 0
