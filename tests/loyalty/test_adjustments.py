"""Manual adjustments: every row of the policy table and its boundaries, the
maker-checker rules, expiry, and exactly-once posting (settings.ADJUSTMENT_POLICY)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from loyalty.adjustments import services as adjustments
from loyalty.adjustments.models import AdjustmentEvent, AdjustmentRequest
from loyalty.adjustments.services import (
    AdjustmentRefused,
    adjustment_allowed_steps,
    adjustment_approve,
    adjustments_awaiting,
)
from loyalty.kernel.models import OutboundMessage
from loyalty.kernel.statuses import refusal_status
from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.operations import points_redeem
from loyalty.ledger.verify import ledger_verify
from loyalty.notifications import messages_deliver_queued
from tests.concurrency import race
from tests.db import rewriting_history
from tests.loyalty.conftest import PDF, assert_ledger_verified

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]


class refused:  # noqa: N801 (used like pytest.raises)
    """``with refused("code") as refusal:`` the block must raise that refusal."""

    def __init__(self, code: str):
        self.code, self.status = code, None

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        assert isinstance(exc, AdjustmentRefused), f"expected the refusal {self.code}, got {exc!r}"
        assert exc.code == self.code, (exc.code, str(exc))
        self.status = refusal_status(exc)
        return True


def events(request) -> list[str]:
    return list(AdjustmentEvent.objects.filter(request=request).values_list("kind", flat=True))


# --- The policy table, row by row and at its boundaries --------------------------------------------


@pytest.mark.parametrize("points", [1, 250, 499, -1, -499])
def test_below_500_posts_at_once_and_tells_the_member(raise_request, member, earn, points):
    earn(member, 1_000)
    request = raise_request(points)
    assert request.state == "posted" and request.band == "direct"
    assert events(request) == ["requested", "posted"]
    op = LedgerOperation.objects.get(pk=request.operation_id)
    assert (op.kind, op.points, op.actor_staff_id) == ("adjust", abs(points), request.requested_by_id)
    assert member.adjustment_requests.get().operation == op
    assert OutboundMessage.objects.filter(member=member, topic="adjustment").count() == 1
    assert_ledger_verified()


@pytest.mark.parametrize(("points", "band"), [(500, "supervisor"), (2_000, "supervisor"), (2_001, "headquarters")])
def test_from_500_the_request_waits_for_approval(raise_request, points, band):
    request = raise_request(points)
    assert (request.state, request.band, request.operation) == ("pending", band, None)
    assert not LedgerOperation.objects.filter(kind="adjust").exists()


@pytest.mark.parametrize("role", ["cashier", "system_admin", "fraud_analyst"])
def test_roles_that_may_not_adjust(raise_request, role):
    with refused("not_allowed") as refusal:
        raise_request(100, by=role)
    assert refusal.status == 403 and not AdjustmentRequest.objects.exists()


def test_a_programme_administrator_adjusts_directly_without_a_store(raise_request):
    assert raise_request(100, by="program_admin", store=None).state == "posted"


def test_store_staff_raise_requests_for_their_own_store_only(raise_request, store_b):
    with refused("store_required"):
        raise_request(100, store=store_b)
    with refused("store_required"):
        raise_request(100, store=None)


@pytest.mark.parametrize(
    ("points", "overrides", "code"),
    [
        (500, {"justification": "too short"}, "justification_required"),
        (500, {"verification_method": ""}, "verification_required"),
        (500, {"verification_method": "identity_document"}, "verification_required"),  # 500-2,000: a phone call
        (500, {"verification_outcome": ""}, "verification_required"),
        (500, {"verified_at": timezone.now() + timedelta(days=1)}, "verification_in_future"),
        (2_001, {"document": None}, "document_required"),
        (
            2_001,
            {"document": SimpleUploadedFile("x.pdf", b"just text, named .pdf", content_type="application/pdf")},
            "document_type_refused",
        ),
    ],
)
def test_evidence_each_band_requires(raise_request, points, overrides, code):
    with refused(code):
        raise_request(points, **overrides)
    assert not AdjustmentRequest.objects.exists()


def test_the_document_size_is_limited(raise_request, settings):
    settings.ADJUSTMENT_POLICY = {**settings.ADJUSTMENT_POLICY, "document_max_bytes": len(PDF) - 1}
    with refused("document_too_large"):
        raise_request(2_001)


def test_above_2000_an_identity_check_in_person_is_enough_and_the_document_is_kept(raise_request):
    request = raise_request(2_500, verification_method="identity_document")
    assert request.document_type == "application/pdf"
    with request.document.open("rb") as stored:
        assert stored.read() == PDF


# --- Approvals --------------------------------------------------------------------------------


def test_supervisor_band_a_manager_of_the_same_store_approves_and_it_posts(raise_request, staff, member, earn):
    request = raise_request(1_200)
    assert adjustment_allowed_steps(staff["manager_b"], request) == set()  # another store's manager
    posted = adjustment_approve(actor=staff["manager_2"], request_id=request.pk, comment="Receipt checked.")
    assert posted.state == "posted" and posted.approved_by == staff["manager_2"]
    assert events(posted) == ["requested", "approved", "posted"]
    assert AdjustmentEvent.objects.get(request=posted, kind="approved").comment == "Receipt checked."
    assert LedgerOperation.objects.get(pk=posted.operation_id).points == 1_200
    message = OutboundMessage.objects.get(member=member)
    assert message.channel == "email" and "1,200 points were credited" in message.body
    # Members have no contact details yet: the message is held, not lost.
    assert messages_deliver_queued() == 0 and OutboundMessage.objects.get(pk=message.pk).status == "held"


def test_supervisor_band_a_programme_administrator_approves_too(raise_request, staff):
    request = raise_request(800)
    assert adjustment_approve(actor=staff["program_admin"], request_id=request.pk).state == "posted"


def test_another_stores_manager_may_not_approve(raise_request, staff):
    request = raise_request(800)
    with refused("not_allowed") as refusal:
        adjustment_approve(actor=staff["manager_b"], request_id=request.pk)
    assert refusal.status == 403 and AdjustmentRequest.objects.get(pk=request.pk).state == "pending"


@pytest.mark.parametrize("role", ["cashier", "system_admin", "fraud_analyst"])
def test_roles_that_may_not_approve_a_supervisor_request(raise_request, staff, role):
    request = raise_request(800)
    assert adjustment_allowed_steps(staff[role], request) == set()
    with refused("not_allowed"):
        adjustment_approve(actor=staff[role], request_id=request.pk)


def test_nobody_approves_their_own_request(raise_request, staff):
    request = raise_request(800, by="program_admin", store=None)
    assert adjustment_allowed_steps(staff["program_admin"], request) == set()
    assert request not in adjustments_awaiting(staff["program_admin"])
    with refused("own_request") as refusal:
        adjustment_approve(actor=staff["program_admin"], request_id=request.pk)
    assert refusal.status == 403


def test_the_database_refuses_a_self_approval_too(raise_request, staff):
    request = raise_request(800)
    with pytest.raises(IntegrityError), transaction.atomic():
        AdjustmentRequest.objects.filter(pk=request.pk).update(approved_by=request.requested_by)


def test_nobody_adjusts_or_approves_for_their_own_member_account(raise_request, staff, member):
    staff["store_manager"].member_account = member
    staff["store_manager"].save(update_fields=["member_account"])
    with refused("own_account"):
        raise_request(100)
    request = raise_request(800, by="manager_2")
    assert request not in adjustments_awaiting(staff["store_manager"])
    with refused("own_account"):
        adjustment_approve(actor=staff["store_manager"], request_id=request.pk)


def test_headquarters_band_needs_a_programme_administrator_and_the_fraud_team(raise_request, staff):
    request = raise_request(5_000)
    hq_requested = OutboundMessage.objects.get(to="loyalty-hq@localhost")
    assert "requested" in hq_requested.subject and hq_requested.member is None
    # A store manager cannot approve at this level.
    assert adjustment_allowed_steps(staff["manager_2"], request) == set()
    assert adjustment_allowed_steps(staff["fraud_analyst"], request) == {"review", "reject"}
    approved = adjustment_approve(actor=staff["program_admin"], request_id=request.pk)
    assert approved.state == "pending" and not LedgerOperation.objects.filter(kind="adjust").exists()
    with refused("not_allowed"):  # the administrator's step is done; a second one adds nothing
        adjustment_approve(actor=staff["program_admin_2"], request_id=request.pk)
    posted = adjustments.adjustment_review(actor=staff["fraud_analyst"], request_id=request.pk, comment="No pattern.")
    assert posted.state == "posted" and events(posted) == ["requested", "approved", "reviewed", "posted"]
    assert OutboundMessage.objects.filter(to="loyalty-hq@localhost").count() == 2  # requested, posted
    assert_ledger_verified()


def test_the_fraud_review_may_come_first(raise_request, staff):
    request = raise_request(5_000)
    adjustments.adjustment_review(actor=staff["fraud_analyst"], request_id=request.pk)
    assert adjustment_approve(actor=staff["program_admin"], request_id=request.pk).state == "posted"


def test_the_queue_lists_what_each_user_may_act_on(raise_request, staff):
    supervisor, large = raise_request(800), raise_request(3_000)
    assert set(adjustments_awaiting(staff["manager_2"])) == {supervisor}
    assert set(adjustments_awaiting(staff["manager_b"])) == set()
    assert set(adjustments_awaiting(staff["program_admin"])) == {supervisor, large}
    assert set(adjustments_awaiting(staff["fraud_analyst"])) == {large}
    assert set(adjustments_awaiting(staff["store_manager"])) == set()  # the requester
    assert set(adjustments_awaiting(staff["cashier"])) == set()


# --- Rejection, expiry, and the ledger's own limits ---------------------------------------------


def test_a_rejection_needs_a_reason_and_ends_the_request(raise_request, staff):
    request = raise_request(800)
    with refused("rejection_reason_required"):
        adjustments.adjustment_reject(actor=staff["manager_2"], request_id=request.pk, reason="  ")
    rejected = adjustments.adjustment_reject(actor=staff["manager_2"], request_id=request.pk, reason="No receipt.")
    assert rejected.state == "rejected" and events(rejected) == ["requested", "rejected"]
    with refused("not_pending") as refusal:
        adjustment_approve(actor=staff["program_admin"], request_id=request.pk)
    assert refusal.status == 409 and not LedgerOperation.objects.filter(kind="adjust").exists()


def test_requests_expire_after_seven_days(raise_request, staff):
    request = raise_request(800)
    with time_machine.travel(timezone.now() + timedelta(days=7, seconds=1), tick=False):
        assert adjustment_allowed_steps(staff["manager_2"], request) == set()
        with refused("expired") as refusal:
            adjustment_approve(actor=staff["manager_2"], request_id=request.pk)
        assert refusal.status == 409
    assert AdjustmentRequest.objects.get(pk=request.pk).state == "expired"
    assert events(request) == ["requested", "expired"]


def test_the_expiry_job_sweeps_and_is_idempotent(raise_request):
    early, late = raise_request(800), raise_request(900)
    with rewriting_history():
        AdjustmentRequest.objects.filter(pk=early.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert adjustments.adjustments_expire() == 1 and adjustments.adjustments_expire() == 0
    assert AdjustmentRequest.objects.get(pk=early.pk).state == "expired"
    assert AdjustmentRequest.objects.get(pk=late.pk).state == "pending"


def test_a_debit_larger_than_the_balance_is_refused(raise_request, member, earn):
    earn(member, 300)
    with refused("insufficient_points") as refusal:
        raise_request(-301)
    assert refusal.status == 409 and not AdjustmentRequest.objects.exists()


def test_a_debit_the_balance_no_longer_covers_is_not_posted_and_stays_pending(
    raise_request, staff, member, earn, till_actor
):
    earn(member, 1_000)
    request = raise_request(-900)
    assert points_redeem(member=member, points=200, actor=till_actor, idempotency_key="spend").ok
    with refused("insufficient_points"):
        adjustment_approve(actor=staff["manager_2"], request_id=request.pk)
    request.refresh_from_db()
    assert (request.state, request.approved_by, events(request)) == ("pending", None, ["requested"])
    assert not LedgerOperation.objects.filter(kind="adjust").exists()
    assert_ledger_verified()


def test_the_reason_must_be_in_use(raise_request, reason):
    reason.active = False
    reason.save()
    with refused("reason_inactive"):
        raise_request(100)


@pytest.mark.parametrize("points", [0, True, 1.5])
def test_points_must_be_a_nonzero_whole_number(staff, member, reason, store_a, points):
    with refused("points_invalid"):
        adjustments.adjustment_request(
            actor=staff["store_manager"], member=member, points=points, reason=reason, store=store_a
        )


def test_events_are_append_only(raise_request):
    request = raise_request(100)
    event = AdjustmentEvent.objects.filter(request=request).first()
    with pytest.raises(TypeError):
        event.save()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deciders", [("manager_2", "manager_2"), ("manager_2", "program_admin")])
def test_a_double_approval_in_parallel_posts_exactly_once(raise_request, staff, member, deciders):
    """Two clicks (or two approvers) at the same moment: one posts, the other finds the
    request decided; one ledger operation, one posted event."""
    request = raise_request(1_500)

    def approve(key):
        return lambda: _outcome(lambda: adjustment_approve(actor=staff[key], request_id=request.pk))

    outcomes = race(*(approve(key) for key in deciders))
    assert sorted(outcomes) == ["not_pending", "posted"]
    assert LedgerOperation.objects.filter(kind="adjust", member=member).count() == 1
    assert events(request).count("posted") == 1
    assert_ledger_verified()


def _outcome(call) -> str:
    try:
        return call().state
    except AdjustmentRefused as refusal:
        return refusal.code


def test_verify_ledger_flags_a_posted_request_that_lost_its_approval(raise_request, staff):
    request = raise_request(800)
    adjustment_approve(actor=staff["manager_2"], request_id=request.pk)
    assert ledger_verify().ok and ledger_verify().checks["adjustments"] == 1
    with rewriting_history():  # tampering behind the services
        AdjustmentRequest.objects.filter(pk=request.pk).update(approved_by=None)
    assert ledger_verify().problems == [f"adjustment request {request.pk}: posted without the approvals its band needs"]


def test_a_document_given_below_its_band_is_checked_and_kept(raise_request):
    with refused("document_type_refused"):
        raise_request(800, document=SimpleUploadedFile("note.pdf", b"<html>", content_type="application/pdf"))
    request = raise_request(800, document=SimpleUploadedFile("note.pdf", PDF, content_type="application/pdf"))
    assert request.document_type == "application/pdf" and request.document
