"""The analyst's workplace for cases (``fraud.admin.cases``, ``fraud.actions``): the queue,
the case page (score, timeline, files), the actions (idempotent, recorded, refused
clearly), and the fraud dashboard on the analyst's landing page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fraud.actions import (
    CaseActionRefused,
    case_device_block,
    case_file_add,
    case_member_lock,
    case_member_spend_freeze,
    case_member_suspend,
    case_reversal_draft,
    case_staff_deactivation_request,
    case_suspension_recommend,
    case_voucher_report,
    case_voucher_revoke,
)
from fraud.admin.cases import contribution_text
from fraud.models import CaseEvent, CaseFile, FraudAlert, FraudCase
from fraud.services import Subject, alert_raise, case_close
from loyalty.kernel.models import OutboundMessage
from members.models import Member, MemberDevice
from tests.concurrency import race
from tests.conftest import login_verified
from vouchers.models import Reward, Voucher
from vouchers.services.issuing import voucher_goodwill_issue

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%evidence\n"


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def analyst(staff_by_role):
    return staff_by_role["fraud_analyst"]


@pytest.fixture
def case(member):
    raised = alert_raise(
        detector="devices_rapid_change", subjects=[Subject.member(member.pk)], facts={"devices": 3},
        occurred_at=timezone.now() - timedelta(days=8), dedupe_key="ui-1", severity="high", member_id=member.pk,
    )  # fmt: skip
    return raised.cases[0]


@pytest.fixture
def staff_case(staff_by_role):
    cashier = staff_by_role["cashier"]
    raised = alert_raise(
        detector="staff_adjust_frequency", subjects=[Subject.staff(cashier.pk)], facts={"count": 6},
        occurred_at=timezone.now(), dedupe_key="ui-staff", staff_id=cashier.pk,
    )  # fmt: skip
    return raised.cases[0]


@pytest.fixture
def voucher(staff_by_role, member):
    reward = Reward.objects.create(name="Case mug", kind="free_item", item="Mug", points_price=100)
    return voucher_goodwill_issue(staff=staff_by_role["program_admin"], member=member, reward=reward, reason="Test")


def act(client, case, action, **data):
    return client.post(reverse("admin:fraud_fraudcase_act", args=[case.pk, action]), data)


def page(client, case):
    return client.get(reverse("admin:fraud_fraudcase_change", args=[case.pk]))


def test_contribution_reads_weight_decay_age_and_half_life():
    row = {"detector": "impossible_travel", "weight": 40, "decayed": 20, "age_days": 8, "half_life_days": 7}
    assert contribution_text({**row, "counted": 20}) == "impossible_travel 40 → 20 (8 d old, half-life 7)"
    assert contribution_text({**row, "counted": 5}).endswith(", counted 5")


def test_the_queue_lists_cases_with_names_and_filters(client, analyst, case, member):
    login_verified(client, analyst)
    url = reverse("admin:fraud_fraudcase_changelist")
    body = client.get(url).content.decode()
    assert case.reference in body and member.loyalty_number[:4] in body
    search = reverse("admin:fraud_fraudcase_search")
    for term, found in ((case.reference, True), (case.reference.lower(), True), (member.loyalty_number, True),
                        ("FC-1999-000001", False), ("no such member", False)):  # fmt: skip
        response = client.post(search, {"q": term}, follow=True)
        assert response.status_code == 200
        assert [c.pk for c in response.context_data["cl"].result_list] == ([case.pk] if found else []), term
        assert term not in response.redirect_chain[-1][0]  # the term never goes into a URL
    refused = client.get(url, {"q": member.loyalty_number}, follow=True)  # a term in the address is refused
    assert "not accepted" in refused.content.decode() and "q=" not in refused.redirect_chain[-1][0]
    assert case.reference not in client.get(url, {"due": "overdue"}).content.decode()
    FraudCase.objects.filter(pk=case.pk).update(due_at=timezone.now() - timedelta(hours=1))
    overdue = client.get(url, {"due": "overdue"}).content.decode()
    assert case.reference in overdue and 'class="overdue"' in overdue


def test_the_case_page_explains_the_score_and_shows_the_timeline(client, analyst, case):
    login_verified(client, analyst)
    response = page(client, case)
    assert response.status_code == 200
    body = response.content.decode()
    assert "devices_rapid_change" in body and "d old, half-life" in body
    assert 'id="case-timeline"' in body and "Case opened on a signal" in body
    assert 'id="action-close"' in body and 'id="action-freeze"' in body


def test_assign_start_note_close_reopen_are_recorded(client, analyst, case):
    login_verified(client, analyst)
    act(client, case, "assign_me")
    act(client, case, "start")
    act(client, case, "note", reason="Called the store.")
    response = act(client, case, "close", outcome="not_fraud", resolution_reason="benign", reason="Family device.")
    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.status, case.outcome, case.assigned_to_id) == ("closed", "not_fraud", analyst.pk)
    kinds = list(CaseEvent.objects.filter(case=case).values_list("kind", flat=True))
    assert {"assigned", "started", "note", "closed"} <= set(kinds)
    act(client, case, "reopen", reason="New evidence.")
    case.refresh_from_db()
    assert case.status == "investigating"


def test_a_close_without_a_reason_or_outcome_is_refused_clearly(client, analyst, case):
    login_verified(client, analyst)
    response = act(client, case, "close", outcome="", resolution_reason="benign", reason="x")
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("invalid_outcome" in m for m in messages)
    response = act(client, case, "close", outcome="not_fraud", resolution_reason="benign", reason="")
    assert any("reason_required" in str(m) for m in response.wsgi_request._messages)
    case.refresh_from_db()
    assert case.status != "closed"


def test_program_admin_reads_but_cannot_act(client, staff_by_role, case):
    login_verified(client, staff_by_role["program_admin"])
    body = page(client, case).content.decode()
    assert 'id="action-close"' not in body
    response = act(client, case, "close", outcome="not_fraud", resolution_reason="benign", reason="x")
    assert any("permission_denied" in str(m) for m in response.wsgi_request._messages)
    case.refresh_from_db()
    assert case.status != "closed"


@pytest.mark.parametrize("role", ["cashier", "store_manager", "system_admin"])
def test_other_roles_are_refused_the_case_pages(client, staff_by_role, case, role):
    login_verified(client, staff_by_role[role])
    assert page(client, case).status_code == 403
    assert act(client, case, "note", reason="x").status_code == 403
    assert CaseEvent.objects.filter(case=case, kind="note").count() == 0


def test_an_unknown_action_or_case_is_404(client, analyst, case):
    login_verified(client, analyst)
    assert act(client, case, "delete_everything").status_code == 404
    assert client.post(reverse("admin:fraud_fraudcase_act", args=[999999, "note"]), {"reason": "x"}).status_code == 404


def test_actions_are_get_refused(client, analyst, case):
    login_verified(client, analyst)
    assert client.get(reverse("admin:fraud_fraudcase_act", args=[case.pk, "start"])).status_code == 405


def test_recommend_suspension_is_idempotent(analyst, case):
    first = case_suspension_recommend(case_id=case.pk, actor=analyst, reason="Takeover confirmed.")
    again = case_suspension_recommend(case_id=case.pk, actor=analyst, reason="Takeover confirmed.")
    assert (first.done, again.done) == (True, False)
    assert CaseEvent.objects.filter(case=case, kind="suspension_recommended").count() == 1


def test_an_action_needs_a_reason_and_an_open_case(analyst, case):
    with pytest.raises(CaseActionRefused) as refused:
        case_suspension_recommend(case_id=case.pk, actor=analyst, reason=" ")
    assert refused.value.code == "reason_required"
    case_close(case_id=case.pk, outcome="not_fraud", resolution_reason="benign", actor=analyst)
    with pytest.raises(CaseActionRefused) as refused:
        case_suspension_recommend(case_id=case.pk, actor=analyst, reason="Late.")
    assert refused.value.code == "already_closed"


def test_the_analyst_reports_a_voucher_and_the_program_admin_revokes(staff_by_role, analyst, case, voucher):
    reported = case_voucher_report(case_id=case.pk, voucher_id=str(voucher.pk), actor=analyst, reason="Stolen.")
    assert reported.done
    voucher.refresh_from_db()
    assert voucher.status == Voucher.Status.REPORTED
    with pytest.raises(CaseActionRefused) as refused:
        case_voucher_revoke(case_id=case.pk, voucher_id=str(voucher.pk), actor=analyst, reason="x")
    assert refused.value.code == "permission_denied"
    with pytest.raises(CaseActionRefused) as refused:  # already reported: no longer active
        case_voucher_revoke(
            case_id=case.pk, voucher_id=str(voucher.pk), actor=staff_by_role["program_admin"], reason="Fraud."
        )
    assert refused.value.code == "voucher_not_active"


def test_a_voucher_of_another_member_is_refused(analyst, case, staff_by_role, store_a):
    other = Member.objects.create(home_store=store_a)
    reward = Reward.objects.create(name="Other mug", kind="free_item", item="Mug", points_price=100)
    theirs = voucher_goodwill_issue(staff=staff_by_role["program_admin"], member=other, reward=reward, reason="T")
    with pytest.raises(CaseActionRefused) as refused:
        case_voucher_report(case_id=case.pk, voucher_id=str(theirs.pk), actor=analyst, reason="x")
    assert refused.value.code == "not_the_subjects"


def test_the_analyst_drafts_a_reversal_and_the_program_admin_gets_a_prefilled_request(
    client, staff_by_role, analyst, case, member
):
    assert case_reversal_draft(case_id=case.pk, points=250, actor=analyst, reason="Stolen points.").done
    assert not case_reversal_draft(case_id=case.pk, points=250, actor=analyst, reason="Again.").done
    with pytest.raises(CaseActionRefused):
        case_reversal_draft(case_id=case.pk, points=-5, actor=analyst, reason="x")
    login_verified(client, staff_by_role["program_admin"])
    body = page(client, case).content.decode()
    assert 'id="raise-reversal"' in body and "points=-250" in body and "FRAUD_REVERSAL" in body
    form = client.get(
        reverse("admin:loyalty_adjustmentrequest_add"),
        {"member": member.pk, "points": -250, "reason": "FRAUD_REVERSAL", "case": case.reference},
    )
    assert form.context["adminform"].form.initial["points"] == -250


def test_staff_deactivation_is_asked_through_the_outbox(analyst, staff_case):
    done = case_staff_deactivation_request(case_id=staff_case.pk, actor=analyst, reason="Salami credits.")
    again = case_staff_deactivation_request(case_id=staff_case.pk, actor=analyst, reason="Salami credits.")
    assert (done.done, again.done) == (True, False)
    message = OutboundMessage.objects.get(topic="fraud_staff_deactivation")
    assert staff_case.reference in message.subject


def test_evidence_files_are_type_checked_and_served_privately(client, analyst, staff_by_role, case):
    with pytest.raises(CaseActionRefused) as refused:
        case_file_add(case_id=case.pk, upload=SimpleUploadedFile("x.pdf", b"MZ\x90\x00 not a pdf"), actor=analyst)
    assert refused.value.code == "file_type"
    login_verified(client, analyst)
    upload = SimpleUploadedFile("evidence.pdf", PDF, content_type="application/pdf")
    act(client, case, "add_file", file=upload, description="Store CCTV log")
    stored = CaseFile.objects.get(case=case)
    assert stored.content_type == "application/pdf"
    url = reverse("admin:fraud_fraudcase_file", args=[case.pk, stored.pk])
    response = client.get(url)
    assert response.status_code == 200 and response.content == PDF
    assert "no-store" in response["Cache-Control"]
    cashier = login_verified(Client(), staff_by_role["cashier"])
    assert cashier.get(url).status_code == 403


def test_the_alert_list_links_each_alert_to_its_case(client, analyst, case):
    login_verified(client, analyst)
    body = client.get(reverse("admin:fraud_fraudalert_changelist")).content.decode()
    assert reverse("admin:fraud_fraudcase_change", args=[case.pk]) in body


def test_the_analysts_landing_page_is_a_fraud_dashboard(client, analyst, case):
    FraudCase.objects.filter(pk=case.pk).update(assigned_to=analyst, due_at=timezone.now() - timedelta(hours=2))
    login_verified(client, analyst)
    body = client.get(reverse("admin:index")).content.decode()
    assert 'id="workplace-fraud"' in body
    assert case.reference in body  # mine and overdue
    assert "Fraud alerts by detector" in body and "Risk signals per day" in body
    assert FraudAlert.objects.filter(case=case).exists()


def test_other_landing_pages_have_no_fraud_dashboard(client, staff_by_role, case):
    login_verified(client, staff_by_role["program_admin"])
    assert 'id="workplace-fraud"' not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_double_click_records_one_action(staff_by_role, store_a):
    # given: a case, and an analyst pressing "Recommend suspension" twice at once
    analyst = staff_by_role["fraud_analyst"]
    member = Member.objects.create(home_store=store_a)
    case = alert_raise(
        detector="devices_rapid_change", subjects=[Subject.member(member.pk)], facts={"devices": 3},
        occurred_at=timezone.now(), dedupe_key="ui-race", member_id=member.pk,
    ).cases[0]  # fmt: skip

    def press():
        return case_suspension_recommend(case_id=case.pk, actor=analyst, reason="Race.").done

    # when
    results = race(press, press, press, press)

    # then: one recorded, the others saw it (the case row lock serialises them)
    assert sorted(results) == [False, False, False, True]
    assert CaseEvent.objects.filter(case=case, kind="suspension_recommended").count() == 1


# --- member actions (members.services.restrictions) ------------------------------------------


def test_freeze_from_a_case_freezes_spending_once_and_contains_the_case(analyst, case, member):
    first = case_member_spend_freeze(case_id=case.pk, actor=analyst, reason="New device and a large redemption.")
    again = case_member_spend_freeze(case_id=case.pk, actor=analyst, reason="Again.")
    member.refresh_from_db()
    case.refresh_from_db()
    assert (first.done, again.done) == (True, False)
    assert member.spend_frozen_until is not None and member.spend_frozen_until > timezone.now()
    assert case.contained_at is not None
    assert CaseEvent.objects.filter(case=case, kind="spend_frozen").count() == 1


def test_lock_from_a_case_locks_the_member(analyst, case, member):
    assert case_member_lock(case_id=case.pk, actor=analyst, reason="Takeover in progress.").done
    member.refresh_from_db()
    assert member.status == Member.Status.LOCKED


def test_block_device_from_a_case_blocks_only_the_members_device(analyst, case, member, store_a):
    device = MemberDevice.objects.create(member=member, fingerprint_hash="a" * 64, label="Phone")
    other = MemberDevice.objects.create(
        member=Member.objects.create(home_store=store_a), fingerprint_hash="b" * 64, label="Other"
    )
    with pytest.raises(CaseActionRefused) as refused:
        case_device_block(case_id=case.pk, device_id=other.pk, actor=analyst, reason="x")
    assert refused.value.code == "not_the_subjects"
    assert case_device_block(case_id=case.pk, device_id=device.pk, actor=analyst, reason="Attacker's phone.").done
    device.refresh_from_db()
    assert device.blocked_at is not None


def test_the_analyst_recommends_and_the_program_admin_suspends(client, staff_by_role, analyst, case, member):
    with pytest.raises(CaseActionRefused) as refused:
        case_member_suspend(case_id=case.pk, actor=analyst, reason="x")
    assert refused.value.code == "permission_denied"
    case_suspension_recommend(case_id=case.pk, actor=analyst, reason="Confirmed takeover.")
    login_verified(client, staff_by_role["program_admin"])
    assert 'id="action-confirm-suspension"' in page(client, case).content.decode()
    act(client, case, "suspend", reason="Recommended by the fraud team; confirmed.")
    member.refresh_from_db()
    assert member.status == Member.Status.SUSPENDED
    assert CaseEvent.objects.filter(case=case, kind="member_suspended").count() == 1


# --- the analyst recommends and never moves points (FRAUD.md §3) -------------------------------

POINT_MOVING_PERMISSIONS = {
    "loyalty.add_adjustmentrequest", "loyalty.approve_adjustmentrequest", "loyalty.add_ledgeroperation",
    "loyalty.change_ledgeroperation", "vouchers.issue_goodwill_voucher", "vouchers.decide_pendingredemption",
    "vouchers.revoke_voucher", "members.suspend_member",
}  # fmt: skip


def test_a_fraud_analyst_cannot_move_points(client, analyst, case, member, voucher, store_a):
    from loyalty.adjustments.models import AdjustmentRequest
    from loyalty.kernel.models import Till
    from loyalty.ledger.models import LedgerOperation
    from loyalty.ledger.operations import Actor, points_earn
    from loyalty.ledger.selectors import member_balance_figures

    # given: the member holds points and a voucher; the analyst's role has no point-moving permission
    till = Till.objects.create(store=store_a, code="T1", key_id="case-till", secret_encrypted="-")
    points_earn(member=member, points=800, receipt_ref="R-1", actor=Actor(till=till), idempotency_key="case-earn")
    assert not {perm for perm in POINT_MOVING_PERMISSIONS if analyst.has_perm(perm)}
    operations, balance = LedgerOperation.objects.count(), member_balance_figures(member)
    # when: they take every action a case offers them, through the case page
    login_verified(client, analyst)
    device = MemberDevice.objects.create(member=member, fingerprint_hash="d" * 64, label="phone")
    for action, data in [
        ("start", {}), ("freeze", {"reason": "Stolen points."}), ("lock", {"reason": "Takeover."}),
        ("block_device", {"reason": "Attacker's phone.", "device": device.pk}),
        ("report_voucher", {"reason": "Stolen.", "voucher": voucher.pk}),
        ("draft_reversal", {"reason": "Stolen points.", "points": 250}),
        ("recommend_suspension", {"reason": "Confirmed."}),
        ("revoke_voucher", {"reason": "Stolen.", "voucher": voucher.pk}),
        ("suspend", {"reason": "Confirmed."}),
    ]:  # fmt: skip
        act(client, case, action, **data)
    # then: not one point moved, no adjustment was raised, and the two Program
    # Administrator actions were refused
    assert LedgerOperation.objects.count() == operations and member_balance_figures(member) == balance
    assert not AdjustmentRequest.objects.filter(member=member).exists()
    voucher.refresh_from_db()
    member.refresh_from_db()
    assert voucher.status == "reported" and member.status != Member.Status.SUSPENDED
    assert member.spend_frozen_until is not None  # the actions did act: restrictions, not points
