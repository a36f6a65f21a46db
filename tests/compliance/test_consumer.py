"""Consumer protection: terms versions and acceptances, complaints and their deadlines."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from compliance import consumer
from compliance.consumer import ConsumerRefused
from compliance.models import Complaint, ComplaintEvent, TermsAcceptance, TermsVersion
from loyalty.adjustments.models import AdjustmentRequest
from loyalty.models import OutboundMessage
from members.models import Member

KL = ZoneInfo("Asia/Kuala_Lumpur")
PAN = "4111 1111 1111 1111"


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def admin(staff_by_role):
    return staff_by_role["program_admin"]


@pytest.fixture
def published(admin):
    draft = consumer.terms_draft_save(
        actor=admin, title="Programme terms", body="Points are worth RM0.01.", effective_from=timezone.now()
    )
    return consumer.terms_publish(actor=admin, version=draft)


# --- business days -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (datetime(2026, 12, 4, 10, tzinfo=KL), 5, datetime(2026, 12, 11, 10, tzinfo=KL)),  # Friday -> Friday
        (datetime(2026, 12, 7, 10, tzinfo=KL), 4, datetime(2026, 12, 11, 10, tzinfo=KL)),  # Monday + 4 -> Friday
        (datetime(2026, 12, 7, 10, tzinfo=KL), 5, datetime(2026, 12, 14, 10, tzinfo=KL)),  # Monday + 5 -> Monday
        (datetime(2026, 12, 5, 23, tzinfo=KL), 1, datetime(2026, 12, 8, 0, tzinfo=KL)),  # Saturday -> Monday 00:00 + 1
    ],
)
def test_business_days(start, days, due):
    assert consumer.add_business_days(start, days) == due


# --- terms ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_terms_publish_accept_and_new_version_requires_acceptance(admin, member, published):
    assert consumer.terms_current() == published
    assert consumer.terms_acceptance_required(member)
    acceptance = consumer.terms_accept(member=member, version=published.version)
    assert consumer.terms_accept(member=member, version=published.version) == acceptance  # idempotent
    assert not consumer.terms_acceptance_required(member)
    second = consumer.terms_publish(
        actor=admin,
        version=consumer.terms_draft_save(actor=admin, title="v2", body="New rules.", effective_from=timezone.now()),
    )
    assert second.version == 2
    assert consumer.terms_acceptance_required(member)
    with pytest.raises(ConsumerRefused) as refused:
        consumer.terms_accept(member=member, version=1)
    assert refused.value.code == "terms_not_current"
    assert refused.value.facts == {"current_version": 2}


@pytest.mark.django_db
def test_future_terms_are_not_current_until_effective(admin, member, published):
    later = timezone.now() + timedelta(days=30)
    future = consumer.terms_publish(
        actor=admin, version=consumer.terms_draft_save(actor=admin, title="v2", body="b", effective_from=later)
    )
    assert consumer.terms_current() == published
    assert consumer.terms_current(at=later - timedelta(seconds=1)) == published
    assert consumer.terms_current(at=later) == future


@pytest.mark.django_db
def test_published_terms_cannot_be_edited_or_published_twice(admin, published, staff_by_role):
    with pytest.raises(ConsumerRefused) as refused:
        consumer.terms_draft_save(actor=admin, title="x", body="y", effective_from=timezone.now(), version=published)
    assert refused.value.code == "terms_published"
    with pytest.raises(ConsumerRefused) as refused:
        consumer.terms_publish(actor=admin, version=published)
    assert refused.value.code == "terms_published"
    draft = consumer.terms_draft_save(actor=admin, title="d", body="b", effective_from=timezone.now())
    with pytest.raises(ConsumerRefused) as refused:
        consumer.terms_publish(actor=staff_by_role["store_manager"], version=draft)
    assert refused.value.code == "not_allowed"


@pytest.mark.django_db
def test_database_refuses_changing_published_terms_and_acceptances(member, published):
    acceptance = consumer.terms_accept(member=member, version=published.version)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE compliance_termsversion SET body = 'changed' WHERE id = %s", [published.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM compliance_termsversion WHERE id = %s", [published.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM compliance_termsacceptance WHERE id = %s", [acceptance.pk])
    published.refresh_from_db()
    assert published.body == "Points are worth RM0.01."


@pytest.mark.django_db
def test_terms_refuse_card_numbers(admin):
    with pytest.raises(ConsumerRefused) as refused:
        consumer.terms_draft_save(actor=admin, title="t", body=f"Card {PAN}", effective_from=timezone.now())
    assert refused.value.code == "card_number_refused"
    assert not TermsVersion.objects.exists()


# --- complaints ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_member_files_a_complaint_with_deadlines_and_acknowledgement(member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        complaint = consumer.complaint_file(member=member, kind="service", subject="Rude", body="At the counter.")
    assert complaint.channel == "api" and complaint.state == "open"
    assert complaint.respond_by == consumer.add_business_days(complaint.received_at, 5)
    assert complaint.resolve_by == consumer.add_business_days(complaint.received_at, 20)
    assert [e.kind for e in complaint.events.all()] == ["filed"]
    assert OutboundMessage.objects.filter(member=member, topic="complaint").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("subject", "", "subject_required"),
        ("subject", "x" * 200, None),
        ("subject", "x" * 201, "subject_too_long"),
        ("body", "y" * 5000, None),
        ("body", "y" * 5001, "body_too_long"),
        ("body", f"my card {PAN} was charged", "card_number_refused"),
        ("kind", "other", "kind_invalid"),
    ],
)
def test_complaint_input_refusals(member, field, value, code):
    fields = {"kind": "complaint", "subject": "s", "body": "b"} | {field: value}
    if code is None:
        consumer.complaint_file(member=member, **fields)
        return
    with pytest.raises(ConsumerRefused) as refused:
        consumer.complaint_file(member=member, **fields)
    assert refused.value.code == code
    assert not Complaint.objects.exists()
    assert PAN not in str(refused.value)


@pytest.mark.django_db
def test_related_records_must_be_the_members(member, store_a):
    other = Member.objects.create(home_store=store_a)
    from vouchers.models import Voucher

    assert not Voucher.objects.filter(member=other).exists()
    with pytest.raises(ConsumerRefused) as refused:
        consumer.complaint_file(member=member, kind="points_dispute", subject="s", body="b", ledger_operation_id=999999)
    assert refused.value.code == "related_not_found"


@pytest.mark.django_db
def test_store_manager_intake_is_store_scoped(member, staff_by_role, store_a, store_b):
    manager = staff_by_role["store_manager"]
    with pytest.raises(ConsumerRefused) as refused:
        consumer.complaint_file(
            member=member, kind="service", subject="s", body="b", actor=manager, store_id=store_b.pk
        )
    assert refused.value.code == "store_required"
    mine = consumer.complaint_file(
        member=member, kind="service", subject="s", body="b", actor=manager, store_id=store_a.pk
    )
    assert mine.channel == "staff" and mine.filed_by == manager
    hq = consumer.complaint_file(
        member=member, kind="service", subject="s", body="b", actor=staff_by_role["program_admin"]
    )
    assert list(consumer.complaints_visible_to(manager)) == [mine]
    assert set(consumer.complaints_visible_to(staff_by_role["program_admin"])) == {mine, hq}
    assert not consumer.complaints_visible_to(staff_by_role["cashier"]).exists()
    with pytest.raises(ConsumerRefused) as refused:
        consumer.complaint_respond(actor=manager, complaint=hq, text="hello")
    assert refused.value.code == "not_found"


@pytest.mark.django_db
def test_respond_then_resolve_tells_the_member_and_records_history(member, admin, django_capture_on_commit_callbacks):
    complaint = consumer.complaint_file(member=member, kind="service", subject="s", body="b")
    with django_capture_on_commit_callbacks(execute=True):
        consumer.complaint_note(actor=admin, complaint=complaint, text="Called the store.")
        consumer.complaint_respond(actor=admin, complaint=complaint, text="We are looking into it.")
        consumer.complaint_resolve(actor=admin, complaint=complaint, text="Sorry: staff retrained.")
    complaint.refresh_from_db()
    assert complaint.state == "resolved" and complaint.first_responded_at and complaint.closed_at
    kinds = [e.kind for e in complaint.events.all()]
    assert kinds == ["filed", "note", "response", "state", "response", "state"]
    assert OutboundMessage.objects.filter(member=member, topic="complaint").count() == 2  # responses only, notes never
    with pytest.raises(ConsumerRefused) as refused:
        consumer.complaint_reject(actor=admin, complaint=complaint, text="no")
    assert refused.value.code == "complaint_closed"


@pytest.mark.django_db
def test_points_dispute_resolution_raises_an_adjustment_request(member, admin):
    complaint = consumer.complaint_file(member=member, kind="points_dispute", subject="Missing", body="Receipt 42")
    consumer.complaint_resolve(actor=admin, complaint=complaint, text="Credited.", points=100)
    complaint.refresh_from_db()
    request = AdjustmentRequest.objects.get()
    assert complaint.adjustment == request and request.points == 100 and request.member == member
    assert complaint.events.filter(kind="adjustment").exists()


@pytest.mark.django_db
def test_refused_adjustment_leaves_the_complaint_open(member, admin):
    complaint = consumer.complaint_file(member=member, kind="points_dispute", subject="Missing", body="Receipt 42")
    with pytest.raises(Exception) as refused:  # the adjustments service's own refusal (evidence for 1,000 points)
        consumer.complaint_resolve(actor=admin, complaint=complaint, text="Credited.", points=1000)
    assert refused.value.code == "justification_required"
    complaint.refresh_from_db()
    assert complaint.state == "open" and not AdjustmentRequest.objects.exists()
    assert list(complaint.events.values_list("kind", flat=True)) == ["filed"]
    other = consumer.complaint_file(member=member, kind="service", subject="s", body="b")
    with pytest.raises(ConsumerRefused) as refused:
        consumer.complaint_resolve(actor=admin, complaint=other, text="x", points=10)
    assert refused.value.code == "not_points_dispute"


@pytest.mark.django_db
def test_deadline_sweep_reminds_once_then_escalates_once(member, settings):
    settings.COMPLAINTS = settings.COMPLAINTS | {"desk_email": "desk@example.com", "remind_hours": 24}
    complaint = consumer.complaint_file(member=member, kind="service", subject="s", body="b")
    due = complaint.respond_by
    before_window = due - timedelta(hours=24)
    assert consumer.complaints_deadline_sweep(now=before_window) == {"reminded": 0, "escalated": 0}
    at_window = before_window + timedelta(seconds=1)
    assert consumer.complaints_deadline_sweep(now=at_window) == {"reminded": 1, "escalated": 0}
    assert consumer.complaints_deadline_sweep(now=at_window) == {"reminded": 0, "escalated": 0}
    assert consumer.complaints_deadline_sweep(now=due) == {"reminded": 0, "escalated": 0}  # due, not yet past
    assert consumer.complaints_deadline_sweep(now=due + timedelta(seconds=1)) == {"reminded": 0, "escalated": 1}
    assert consumer.complaints_deadline_sweep(now=due + timedelta(hours=1)) == {"reminded": 0, "escalated": 0}
    complaint.refresh_from_db()
    assert complaint.state == "escalated"
    assert list(complaint.events.values_list("kind", flat=True)) == ["filed", "reminder", "escalated", "state"]


@pytest.mark.django_db
def test_database_refuses_rewriting_a_complaint_or_its_history(member, admin):
    complaint = consumer.complaint_file(member=member, kind="service", subject="s", body="b")
    consumer.complaint_reject(actor=admin, complaint=complaint, text="Not upheld.")
    for sql in (
        "UPDATE compliance_complaint SET body = 'x' WHERE id = %s",
        "UPDATE compliance_complaint SET state = 'open' WHERE id = %s",
        "UPDATE compliance_complaintevent SET text = 'x' WHERE complaint_id = %s",
        "DELETE FROM compliance_complaint WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [complaint.pk])
    assert ComplaintEvent.objects.filter(complaint=complaint).count() == 3
    assert TermsAcceptance.objects.count() == 0
