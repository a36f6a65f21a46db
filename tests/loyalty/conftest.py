"""Ledger fixtures: members with accounts, a till actor, the invariant check, and
manual adjustments (staff per role, reasons, evidence per band, raising a request)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from loyalty.adjustments.models import AdjustmentReason, AdjustmentRequest
from loyalty.adjustments.services import Evidence, adjustment_request
from loyalty.kernel.models import Till
from loyalty.ledger.models import MemberBalance
from loyalty.ledger.operations import Actor
from loyalty.ledger.verify import ledger_verify
from members.models import Member
from tests.points import points_giver


@pytest.fixture
def till(store_a):
    return Till.objects.create(store=store_a, code="T1", key_id="till-test-1", secret_encrypted="-")


@pytest.fixture
def till_actor(till):
    return Actor(till=till)


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def earn(till_actor):
    """Earn points for a member under a fresh key and receipt; returns the outcome."""
    return points_giver(till_actor)


def available(member) -> int:
    """The member's spendable points, as the balance row has them."""
    return MemberBalance.objects.get(account__member=member).available


def assert_ledger_verified():
    report = ledger_verify()
    assert report.ok, report.problems
    return report


@pytest.fixture
def velocity_off(settings):
    """The ledger's mechanics without the programme's velocity limits (tested on their own)."""
    settings.LOYALTY_VELOCITY = dict.fromkeys(settings.LOYALTY_VELOCITY)


# --- Manual adjustments ------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def reason():
    return AdjustmentReason.objects.get_or_create(code="MISSED_EARN", defaults={"label": "Purchase not credited"})[0]


@pytest.fixture
def staff(staff_by_role, make_staff, store_a, store_b):
    """The roles, plus a second store manager of store A and one of store B, and a
    second programme administrator."""
    return {
        **staff_by_role,
        "manager_2": make_staff("manager_2", "store_manager", stores=[store_a]),
        "manager_b": make_staff("manager_b", "store_manager", stores=[store_b]),
        "program_admin_2": make_staff("program_admin_2", "program_admin"),
    }


def evidence(points: int, **overrides) -> Evidence:
    """What the band of ``points`` asks for, complete."""
    size = abs(points)
    fields = {}
    if size >= 500:
        fields = {
            "justification": "Customer showed the receipt; the till was offline during the purchase.",
            "verification_method": AdjustmentRequest.Verification.PHONE,
            "verified_by": "A. Manager",
            "verified_at": timezone.now() - timedelta(minutes=5),
            "verification_outcome": "Member confirmed the purchase and the date.",
        }
    if size > 2000:
        fields["document"] = SimpleUploadedFile("justification.pdf", PDF, content_type="application/pdf")
    return Evidence(**{**fields, **overrides})


@pytest.fixture
def raise_request(staff, member, reason, store_a):
    def do(points, *, by="store_manager", store=store_a, **overrides):
        return adjustment_request(
            actor=staff[by],
            member=member,
            points=points,
            reason=reason,
            store=store,
            evidence=evidence(points, **overrides),
        )

    return do
