"""Cases (``fraud.cases`` through ``fraud.services``): alerts join one open case per
(inbox, subject), the state machine with its refusals, permissions, snoozes, storms,
overdue escalation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from fraud import config as fraud_config
from fraud.models import CaseEvent, FraudAlert, FraudCase, RiskSignal
from fraud.services import (
    CaseRefused,
    Subject,
    alert_raise,
    case_assign,
    case_await_action,
    case_close,
    case_note,
    case_reopen,
    case_snooze,
    case_start,
    case_unsnooze,
    cases_escalate_overdue,
    detector_paused,
    signal_raise,
)
from fraud.tasks import cases_escalate_overdue_task
from members.models import Member
from tests.concurrency import race

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def analyst(staff_by_role):
    return staff_by_role["fraud_analyst"]


def _alert(member, key="a1", detector="devices_rapid_change", severity="medium", **kw):
    return alert_raise(
        detector=detector, subjects=[Subject.member(member.pk)], facts={"devices": 3},
        occurred_at=kw.pop("occurred_at", timezone.now()), dedupe_key=key, severity=severity,
        member_id=member.pk, **kw,
    )  # fmt: skip


def test_an_alert_opens_a_case_and_the_next_joins_it(member, analyst):
    first = _alert(member)
    case = first.cases[0]
    assert (case.inbox, case.status, case.member_id, case.severity) == ("ato", "new", member.pk, "medium")
    assert case.reference == f"FC-{case.opened_at.year}-{case.pk:06d}"
    assert case.assigned_to == analyst  # the only analyst, under the cap
    assert case.due_at == case.opened_at + timedelta(hours=24)
    assert first.alert.case == case and first.signals[0].alert == first.alert

    second = _alert(member, key="a2", detector="many_ips", severity="high")
    assert second.cases[0].pk == case.pk
    case.refresh_from_db()
    assert case.severity == "high"  # a more severe alert raises it
    kinds = list(case.events.order_by("pk").values_list("kind", flat=True))
    assert kinds == ["opened", "assigned", "signal_joined", "severity_raised"]
    # A repeat of an incident writes nothing new.
    again = _alert(member)
    assert not again.created and again.cases == [case] and RiskSignal.objects.count() == 2


def test_a_returns_signal_goes_to_the_returns_inbox(member):
    ato = _alert(member).cases[0]
    returns = _alert(member, key="r1", detector="return_cycle").cases[0]
    assert (ato.inbox, returns.inbox) == ("ato", "returns") and ato.pk != returns.pk


def test_a_till_alert_signals_staff_and_store_each_with_its_case(staff_by_role, store_a, member):
    from fraud.services import cashier_frequency_alert_raise

    cashier = staff_by_role["cashier"]
    alert = cashier_frequency_alert_raise(
        staff_id=cashier.pk, store_id=store_a.pk, redemptions=21, threshold=20, window_minutes=60, now=timezone.now()
    )
    keys = set(alert.signals.values_list("subject_key", flat=True))
    assert keys == {f"staff:{cashier.pk}", f"store:{store_a.pk}"}
    inboxes = dict(FraudCase.objects.values_list("subject_key", "inbox"))
    assert inboxes == {f"staff:{cashier.pk}": "insider", f"store:{store_a.pk}": "store"}
    assert alert.case.subject_key == f"staff:{cashier.pk}"


@pytest.mark.django_db(transaction=True)
def test_concurrent_alerts_about_one_subject_share_one_case(member):
    def raise_one(n):
        return lambda: _alert(member, key=f"race{n}").cases[0].pk

    case_ids = race(*[raise_one(n) for n in range(8)])

    assert len(set(case_ids)) == 1
    case = FraudCase.objects.get()
    assert (
        FraudAlert.objects.filter(case=case).count() == 8 and RiskSignal.objects.filter(alert__case=case).count() == 8
    )
    assert case.events.filter(kind="signal_joined").count() == 7


def test_the_state_machine(member, analyst):
    case = _alert(member).cases[0]
    assert case_start(case_id=case.pk, actor=analyst).status == "investigating"
    events = case.events.count()
    assert case_start(case_id=case.pk, actor=analyst).status == "investigating"  # a repeat
    assert case.events.count() == events
    assert case_await_action(case_id=case.pk, actor=analyst).status == "awaiting_action"
    assert case_start(case_id=case.pk, actor=analyst).status == "investigating"
    closed = case_close(case_id=case.pk, outcome="confirmed_fraud", resolution_reason="contained", actor=analyst,
                        note="reversal proposed")  # fmt: skip
    assert (closed.status, closed.outcome, closed.closed_by) == ("closed", "confirmed_fraud", analyst)
    assert (
        closed.closed_at
        and case_close(
            case_id=case.pk, outcome="confirmed_fraud", resolution_reason="contained", actor=analyst
        ).closed_at
        == closed.closed_at
    )
    reopened = case_reopen(case_id=case.pk, reason="new evidence", actor=analyst)
    assert (reopened.status, reopened.outcome, reopened.closed_at) == ("investigating", "", None)
    kinds = list(CaseEvent.objects.filter(case=case, actor=analyst).order_by("pk").values_list("kind", flat=True))
    assert kinds == ["started", "awaiting_action", "started", "closed", "reopened"]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c, a: case_await_action(case_id=c, actor=a), "illegal_transition"),  # new → awaiting
        (lambda c, a: case_reopen(case_id=c, reason="x", actor=a), "illegal_transition"),  # not closed
        (lambda c, a: case_reopen(case_id=c, reason=" ", actor=a), "reason_required"),
        (lambda c, a: case_close(case_id=c, outcome="guilty", resolution_reason="contained", actor=a),
         "invalid_outcome"),
        (lambda c, a: case_close(case_id=c, outcome="not_fraud", resolution_reason="whatever", actor=a),
         "invalid_reason"),
        (lambda c, a: case_start(case_id=999_999, actor=a), "not_found"),
        (lambda c, a: case_snooze(case_id=c, until=timezone.now() - timedelta(hours=1), actor=a), "invalid_snooze"),
        (lambda c, a: case_note(case_id=c, note="", actor=a), "reason_required"),
    ],
)  # fmt: skip
def test_illegal_operations_are_refused_with_stable_codes(member, analyst, call, code):
    case = _alert(member).cases[0]
    with pytest.raises(CaseRefused) as caught:
        call(case.pk, analyst)
    assert caught.value.code == code


def test_a_closed_case_refuses_another_outcome_and_changes(member, analyst):
    case = _alert(member).cases[0]
    case_close(case_id=case.pk, outcome="inconclusive", resolution_reason="insufficient_evidence", actor=analyst)
    for call in (
        lambda: case_close(case_id=case.pk, outcome="not_fraud", resolution_reason="benign", actor=analyst),
        lambda: case_start(case_id=case.pk, actor=analyst),
        lambda: case_assign(case_id=case.pk, assignee_id=analyst.pk, actor=analyst),
        lambda: case_snooze(case_id=case.pk, until=timezone.now() + timedelta(days=1), actor=analyst),
    ):
        with pytest.raises(CaseRefused) as caught:
            call()
        assert caught.value.code == "already_closed"


@pytest.mark.parametrize("role", ["cashier", "store_manager", "program_admin", "system_admin"])
def test_only_a_fraud_analyst_works_cases(member, staff_by_role, role):
    case = _alert(member).cases[0]
    actor = staff_by_role[role]
    for call in (
        lambda: case_start(case_id=case.pk, actor=actor),
        lambda: case_close(case_id=case.pk, outcome="not_fraud", resolution_reason="benign", actor=actor),
        lambda: case_note(case_id=case.pk, note="n", actor=actor),
        lambda: case_assign(case_id=case.pk, assignee_id=None, actor=actor),
    ):
        with pytest.raises(CaseRefused) as caught:
            call()
        assert caught.value.code == "permission_denied"
    assert FraudCase.objects.get().status == "new"


def test_a_program_admin_reads_cases_but_does_not_work_them(staff_by_role):
    admin, analyst = staff_by_role["program_admin"], staff_by_role["fraud_analyst"]
    assert admin.has_perm("fraud.view_fraudcase") and not admin.has_perm("fraud.work_fraudcase")
    assert analyst.has_perm("fraud.work_fraudcase") and analyst.has_perm("fraud.view_riskdecision")


def test_assignment_only_to_analysts(member, analyst, staff_by_role):
    case = _alert(member).cases[0]
    with pytest.raises(CaseRefused) as caught:
        case_assign(case_id=case.pk, assignee_id=staff_by_role["cashier"].pk, actor=analyst)
    assert caught.value.code == "not_an_analyst"
    assert case_assign(case_id=case.pk, assignee_id=None, actor=analyst).assigned_to is None
    events = case.events.count()
    assert case_assign(case_id=case.pk, assignee_id=None, actor=analyst).assigned_to is None
    assert case.events.count() == events


def test_auto_assignment_picks_the_least_loaded_analyst_under_the_cap(store_a, make_staff):
    first, second = make_staff("fa1", "fraud_analyst"), make_staff("fa2", "fraud_analyst")
    members = [Member.objects.create(home_store=store_a) for _ in range(3)]
    cases = [_alert(m, key=f"k{m.pk}").cases[0] for m in members]
    assert [c.assigned_to_id for c in cases] == [first.pk, second.pk, first.pk]
    with override_settings(FRAUD={**fraud_config.fraud_config(), "auto_assign_cap": 2}):
        extra = _alert(Member.objects.create(home_store=store_a), key="cap").cases[0]
        full = _alert(Member.objects.create(home_store=store_a), key="full").cases[0]
    assert extra.assigned_to_id == second.pk and full.assigned_to_id is None


def test_a_new_signal_lifts_a_snooze(member, analyst):
    case = _alert(member).cases[0]
    snoozed = case_snooze(case_id=case.pk, until=timezone.now() + timedelta(days=2), actor=analyst, reason="wait")
    assert snoozed.snoozed_until
    _alert(member, key="a2")
    case.refresh_from_db()
    assert case.snoozed_until is None and case.events.filter(kind="snooze_lifted").exists()
    case_snooze(case_id=case.pk, until=timezone.now() + timedelta(days=2), actor=analyst)
    assert case_unsnooze(case_id=case.pk, actor=analyst).snoozed_until is None


def test_not_fraud_snoozes_the_fired_detectors_for_90_days(member, analyst):
    case = _alert(member).cases[0]
    case_close(case_id=case.pk, outcome="not_fraud", resolution_reason="false_positive", actor=analyst)
    later = _alert(member, key="a2", occurred_at=timezone.now() + timedelta(days=89))
    assert later.signals == [] and later.cases == []
    after = signal_raise(
        detector="devices_rapid_change", subject=Subject.member(member.pk), facts={},
        occurred_at=timezone.now() + timedelta(days=91), dedupe_key="after",
    )  # fmt: skip
    assert after.created


def test_a_signal_after_closure_opens_a_new_case_linked_to_the_old(member, analyst):
    old = _alert(member).cases[0]
    case_close(case_id=old.pk, outcome="confirmed_fraud", resolution_reason="contained", actor=analyst)
    new = _alert(member, key="a2").cases[0]
    assert new.pk != old.pk and new.previous_case_id == old.pk and new.status == "new"
    with pytest.raises(CaseRefused) as caught:
        case_reopen(case_id=old.pk, reason="again", actor=analyst)
    assert caught.value.code == "open_case_exists"


def test_a_missed_due_time_raises_the_severity_once(member):
    case = _alert(member, severity="low").cases[0]
    assert case.due_at == case.opened_at + timedelta(hours=72)
    later = case.due_at + timedelta(minutes=1)
    assert cases_escalate_overdue(later) == 1
    case.refresh_from_db()
    assert (case.severity, case.due_at) == ("medium", later + timedelta(hours=24))
    assert cases_escalate_overdue(later) == 0
    assert cases_escalate_overdue(later + timedelta(days=30)) == 1  # medium → high
    assert cases_escalate_overdue(later + timedelta(days=31)) == 1  # high → critical
    assert cases_escalate_overdue(later + timedelta(days=32)) == 0  # critical stays
    assert cases_escalate_overdue_task.run() == 0


def test_a_storm_trips_the_detector(member, store_a):
    with override_settings(FRAUD={**fraud_config.fraud_config(), "storm_alerts_per_hour": 3}):
        members = [Member.objects.create(home_store=store_a) for _ in range(4)]
        for m in members:
            assert _alert(m, key=f"s{m.pk}").alert is not None
        storm = FraudAlert.objects.get(kind="detector_storm")
        assert storm.detail == {"detector": "devices_rapid_change", "alerts": 4, "limit": 3}
        assert detector_paused("devices_rapid_change") and not detector_paused("many_ips")
        paused = _alert(member, key="during")
        assert paused.paused and paused.alert is None and len(paused.signals) == 1 and paused.cases == []
    assert FraudAlert.objects.filter(kind="devices_rapid_change").count() == 4
