"""Members with personal data, through the services."""

import re
from datetime import date

import pytest
import time_machine

from loyalty.notifications import LocmemSmsBackend
from members.services.membership import member_create
from members.services.otp import otp_request, otp_verify
from members.services.pii import member_pii_read

# The ledger's fixtures, for the fraud team's actions on a member's spending (test_restrictions*).
from tests.loyalty.conftest import earn, till, till_actor, velocity_off  # noqa: F401

# Distinctive values, so a hit in a dump cannot be chance.
SEEDED = [
    {
        "name": "Siti Nurhaliza binti Tarudin",
        "phone": "+60 12-345 6789",
        "email": "Siti.Nurhaliza@Example.COM",
        "address": "12 Jalan Ampang Hilir, 55000 Kuala Lumpur",
        "birth_date": date(1979, 1, 11),
        "preferred_channel": "sms",
    },
    {
        "name": "Tan Ah Kowloon Zhiwei",
        "phone": "016-789 4321",
        "email": "tan.zhiwei@mail-demo.my",
        "address": "88 Lebuh Chulia, 10200 George Town, Penang",
        "birth_date": date(1990, 7, 23),
        "preferred_channel": "email",
    },
    {
        "name": "Arumugam Selvaraj Krishnan",
        "phone": "+6019 222 3344",
        "email": "a.selvaraj@kedai-contoh.test",
        "address": "3 Persiaran Gurney, 10250 Penang",
        "birth_date": date(2001, 12, 2),
        "preferred_channel": "sms",
    },
]
# What the plaintext looks like once normalised (E.164, lower-cased domain).
NORMALISED = {
    "phone": ["+60123456789", "+60167894321", "+60192223344"],
    "email": ["Siti.Nurhaliza@example.com", "tan.zhiwei@mail-demo.my", "a.selvaraj@kedai-contoh.test"],
}


@pytest.fixture
def seeded_members(db, store_a):
    return [member_create(home_store=store_a, **data) for data in SEEDED]


def plaintexts() -> list[str]:
    values = []
    for data in SEEDED:
        values += [data["name"], data["address"], data["birth_date"].isoformat(), data["email"].lower()]
        values += [data["name"].split()[0], data["address"].split(",")[0]]
    values += NORMALISED["phone"] + NORMALISED["email"]
    values += [phone.lstrip("+") for phone in NORMALISED["phone"]]  # digits alone
    return values


@pytest.fixture(autouse=True)
def sms_outbox():
    """The text messages sent (the in-memory SMS backend), empty for each test."""
    LocmemSmsBackend.outbox.clear()
    yield LocmemSmsBackend.outbox
    LocmemSmsBackend.outbox.clear()


@pytest.fixture
def step_up(django_capture_on_commit_callbacks):
    """Verify a step-up code for ``action`` as the member would (the SMS read back)."""

    def verify(member, action: str) -> None:
        phone = member_pii_read(member).phone
        with django_capture_on_commit_callbacks(execute=True):
            result = otp_request(phone=phone, purpose="step_up", action=action)
        text = [m for m in LocmemSmsBackend.outbox if m["to"] == phone][-1]["text"]
        code = re.search(r"\b(\d{6})\b", text).group(1)
        otp_verify(challenge_id=result.challenge_id, phone=phone, code=code, purpose="step_up", action=action)

    return verify


@pytest.fixture
def member(db, store_a, request):
    """A member enrolled with the test module's ``PHONE``, told by SMS."""
    return member_create(home_store=store_a, phone=request.module.PHONE, preferred_channel="sms")


@pytest.fixture
def clock(request):
    """Time stands still at the test module's ``START``."""
    with time_machine.travel(request.module.START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def phone_step_up(django_capture_on_commit_callbacks, request):
    """Verify an SMS step-up code for ``action`` as the member would: for the test
    module's ``PHONE`` unless told another number, asked from its ``KL`` address."""

    def verify(action, phone=None):
        phone = phone or request.module.PHONE
        with django_capture_on_commit_callbacks(execute=True):
            result = otp_request(phone=phone, purpose="step_up", action=action, ip=request.module.KL)
        code = re.search(r"\b(\d{6})\b", LocmemSmsBackend.outbox[-1]["text"]).group(1)
        otp_verify(challenge_id=result.challenge_id, phone=phone, code=code, purpose="step_up", action=action)

    return verify
