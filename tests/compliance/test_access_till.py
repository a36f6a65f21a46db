"""A till's member look-up is an access event: the till, the member by id, never the number."""

from __future__ import annotations

from datetime import date

import pytest

from compliance.models import AccessEvent
from members.services.membership import member_create
from tests.loyalty.api.conftest import pos, till  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

BALANCE = "/api/v1/pos/members/balance"


def test_a_till_balance_look_up_is_recorded(pos, store_a):  # noqa: F811
    member = member_create(
        home_store=store_a, name="Till Lookup", phone="+60 12-555 0777", email="tl@example.com",
        address="1 Jalan Test", birth_date=date(1990, 1, 1),
    )  # fmt: skip
    response = pos.request("POST", BALANCE, {"loyalty_number": member.loyalty_number}, key=None)
    assert response.status_code == 200
    (event,) = AccessEvent.objects.all()
    assert (event.kind, event.member_id, event.staff_id) == ("till_lookup", member.pk, None)
    assert event.object_type == "loyalty.till" and event.object_id == str(pos.till.pk)
    assert event.parameters == {"by": "number"} and member.loyalty_number not in str(event.parameters)


def test_a_look_up_of_an_unknown_number_records_nothing(pos):  # noqa: F811
    response = pos.request("POST", BALANCE, {"loyalty_number": "9900000000000127"}, key=None)
    assert response.status_code in (400, 404)
    assert not AccessEvent.objects.exists()
