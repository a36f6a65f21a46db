"""Outcomes enforced (FRAUD.md §2 "Outcomes"; ``fraud.outcomes``): each band at its
threshold, one below and one above; idempotency and escalation; lowering by a person and
by the end of a restriction; forced outcomes, storms, subjects other than members; and
where it runs (once per subject and transaction, after commit; the catch-up sweep)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from fraud.models import CaseEvent, FraudAlert, FraudCase, OutcomeApplication, RiskDecision, SubjectOutcome
from fraud.outcomes import (
    OutcomeRefused,
    decision_apply,
    decision_queue,
    decisions_catch_up,
    outcome_in_force,
    outcome_lower,
    subject_decide_apply,
)
from fraud.scoring import Subject, risk_decide, signal_raise
from fraud.services import STORM_KIND, fraud_alert_raise
from members.models import Member, MemberRestriction, MemberSecurityEvent, OtpChallenge
from members.services.restrictions import member_spend_freeze_confirm, member_step_up_pass

pytestmark = pytest.mark.django_db

Kind = MemberRestriction.Kind
# Not in the catalogue: family insider (half-life 30 days), no forced outcome; the weight
# given is the score (one signal, 0 days old, under its 2W cap).
TEST_DETECTOR = "test_outcome"
_keys = itertools.count(1)


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


@pytest.fixture
def analyst(staff_by_role):
    return staff_by_role["fraud_analyst"]


def raise_signal(subject: Subject, weight: int, *, detector: str = TEST_DETECTOR, at=None):
    return signal_raise(
        detector=detector, subject=subject, facts={"n": 1}, occurred_at=at or timezone.now(),
        dedupe_key=f"test:{next(_keys)}", weight=weight,
    ).signal  # fmt: skip


def decide(subject: Subject, weight: int | None = None, **kwargs) -> OutcomeApplication:
    """A new signal of ``weight`` (if given), then the subject decided and the decision applied."""
    if weight is not None:
        raise_signal(subject, weight, **kwargs)
    return subject_decide_apply(subject)


def live(member, kind):
    return MemberRestriction.objects.filter(member=member, kind=kind, lifted_at__isnull=True)


# --- the bands, at each threshold, one below and one above ------------------------------------


@pytest.mark.parametrize(
    ("score", "outcome"),
    [
        (29, "allow"), (30, "review"), (31, "review"), (59, "review"), (60, "step_up"), (61, "step_up"),
        (79, "step_up"), (80, "block_and_review"), (81, "block_and_review"),
    ],
)  # fmt: skip
def test_each_band_applies_its_outcome_to_a_member(member, score, outcome):
    subject = Subject.member(member.pk)

    application = decide(subject, score)

    held = "not_an_escalation" if outcome == "allow" else ""  # allow is where every subject starts
    assert (application.decision.score, application.outcome_after, application.held) == (score, outcome, held)
    alerts = FraudAlert.objects.filter(kind="risk_outcome", member=member)
    cases = FraudCase.objects.filter(subject_key=subject.key)
    member.refresh_from_db()
    if outcome == "allow":
        assert not alerts.exists() and not cases.exists() and not application.actions
        assert not MemberRestriction.objects.filter(member=member).exists()
        return
    alert = alerts.get()
    assert alert.detail["outcome"] == outcome and alert.detail["decision_id"] == application.decision_id
    if outcome == "review":  # an alert, no friction, no case
        assert alert.severity == "medium" and alert.case is None and not cases.exists()
        assert not MemberRestriction.objects.filter(member=member).exists()
        assert member.spend_frozen_until is None
        return
    case = cases.get()
    assert alert.case == case and application.case == case
    assert CaseEvent.objects.filter(case=case, kind="outcome_applied", new_value=outcome).count() == 1
    if outcome == "step_up":
        assert case.severity == "high" and member.spend_frozen_until is None
        step_up = live(member, Kind.STEP_UP).get()
        assert (step_up.case_ref, step_up.created_by) == (case.reference, None)
        assert CaseEvent.objects.filter(case=case, kind="auto_step_up_required").exists()
    else:
        assert case.severity == "critical"  # a priority case
        freeze = live(member, Kind.SPEND_FREEZE).get()
        assert (freeze.case_ref, freeze.confirmed, freeze.created_by) == (case.reference, False, None)
        assert member.spend_frozen_until == freeze.ends_at  # lapses unless confirmed
        assert freeze.ends_at - freeze.starts_at == timedelta(hours=72)
        assert not live(member, Kind.STEP_UP).exists()
        assert CaseEvent.objects.filter(case=case, kind="auto_spend_frozen").exists()
    assert SubjectOutcome.objects.get(subject_key=subject.key).outcome == outcome


def test_the_application_is_recorded_on_the_decision(member):
    application = decide(Subject.member(member.pk), 65)
    decision = RiskDecision.objects.get(pk=application.decision_id)
    assert decision.application == application
    kinds = [action["kind"] for action in application.actions]
    assert kinds == ["alert", "case", "auto_step_up_required"]
    assert (application.outcome_before, application.outcome_after) == ("allow", "step_up")


# --- idempotency and escalation ------------------------------------------------------------------


def test_applying_a_decision_twice_does_it_once(member):
    subject = Subject.member(member.pk)
    raise_signal(subject, 85)
    decision = risk_decide(subject)
    first = decision_apply(decision)
    assert decision_apply(decision) == first
    assert OutcomeApplication.objects.count() == 1 and live(member, Kind.SPEND_FREEZE).count() == 1


def test_a_second_decision_at_the_same_outcome_does_nothing_new(member):
    subject = Subject.member(member.pk)
    decide(subject, 62)
    events = CaseEvent.objects.count()
    restrictions = MemberRestriction.objects.count()
    security_events = MemberSecurityEvent.objects.count()

    again = decide(subject, 3)  # a new signal, the same band

    assert (again.outcome_before, again.outcome_after, again.held) == ("step_up", "step_up", "not_an_escalation")
    assert again.actions == [] and again.case is None
    assert CaseEvent.objects.count() == events and MemberRestriction.objects.count() == restrictions
    assert MemberSecurityEvent.objects.count() == security_events
    assert FraudAlert.objects.filter(kind="risk_outcome").count() == 1


def test_a_lower_decision_lowers_nothing(member):
    subject = Subject.member(member.pk)
    decide(subject, 82)
    lower = RiskDecision.objects.create(as_of=timezone.now(), score=10, outcome="allow", ruleset_version=1,
                                        contributions=[], **subject.fields())  # fmt: skip
    assert decision_apply(lower).held == "not_an_escalation"
    assert live(member, Kind.SPEND_FREEZE).exists()
    assert outcome_in_force(subject) == "block_and_review"


def test_an_outcome_escalates_within_one_case(member):
    subject = Subject.member(member.pk)
    decide(subject, 35)
    decide(subject, 30)  # 65: step-up
    application = decide(subject, 20, detector="test_outcome_b")  # 85 (one detector is capped at 2W): block

    assert (application.outcome_before, application.outcome_after) == ("step_up", "block_and_review")
    case = FraudCase.objects.get(subject_key=subject.key)
    assert case.severity == "critical"
    assert list(
        case.events.filter(kind="outcome_applied").order_by("at", "id").values_list("old_value", "new_value")
    ) == [("review", "step_up"), ("step_up", "block_and_review")]
    assert live(member, Kind.SPEND_FREEZE).exists() and live(member, Kind.STEP_UP).exists()
    assert FraudAlert.objects.filter(kind="risk_outcome").count() == 3


def test_a_decision_older_than_the_one_applied_changes_nothing(member):
    subject = Subject.member(member.pk)
    raise_signal(subject, 70)
    older = risk_decide(subject, timezone.now() - timedelta(minutes=1))
    raise_signal(subject, 1)
    decision_apply(risk_decide(subject))
    assert decision_apply(older).held == "superseded"


# --- lowering: a person, the member's step-up, the freeze's end ---------------------------------


def test_a_person_lowers_an_outcome_and_only_new_evidence_raises_it_again(member, analyst):
    subject = Subject.member(member.pk)
    decide(subject, 85)
    case = FraudCase.objects.get(subject_key=subject.key)

    state = outcome_lower(subject=subject, to="review", actor=analyst, reason="Customer called, verified")

    member.refresh_from_db()
    assert state.outcome == "review" and state.lowered_by == analyst and member.spend_frozen_until is None
    assert not live(member, Kind.SPEND_FREEZE).exists()
    event = case.events.get(kind="outcome_lowered")
    assert (event.old_value, event.new_value, event.actor) == ("block_and_review", "review", analyst)
    # The same signals decided again: held, a person lowered it.
    assert decide(subject).held == "no_new_evidence"
    assert not live(member, Kind.SPEND_FREEZE).exists()
    # A new signal: it escalates again (a new freeze, the same case).
    again = decide(subject, 5)
    assert (again.outcome_after, again.held, again.case) == ("block_and_review", "", case)
    assert live(member, Kind.SPEND_FREEZE).count() == 1


def test_lowering_a_block_to_a_step_up_swaps_the_restriction(member, analyst):
    subject = Subject.member(member.pk)
    decide(subject, 90)
    outcome_lower(subject=subject, to="step_up", actor=analyst, reason="Lower risk after review")
    assert not live(member, Kind.SPEND_FREEZE).exists()
    assert live(member, Kind.STEP_UP).get().created_by == analyst
    assert outcome_in_force(subject) == "step_up"


@pytest.mark.parametrize(
    ("role", "to", "code"),
    [
        ("program_admin", "review", "permission_denied"),
        ("cashier", "review", "permission_denied"),
        ("fraud_analyst", "block_and_review", "invalid_outcome"),
        ("fraud_analyst", "step_up", "not_lower"),
    ],
)
def test_who_may_lower_and_to_what(member, staff_by_role, role, to, code):
    subject = Subject.member(member.pk)
    decide(subject, 40)
    with pytest.raises(OutcomeRefused) as refused:
        outcome_lower(subject=subject, to=to, actor=staff_by_role[role], reason="r")
    assert refused.value.code == code


def test_a_confirmed_freeze_is_a_program_administrators_to_lift(member, analyst, staff_by_role):
    subject = Subject.member(member.pk)
    decide(subject, 90)
    member_spend_freeze_confirm(member=member, actor=staff_by_role["program_admin"], reason="Confirmed fraud")
    with pytest.raises(OutcomeRefused) as refused:
        outcome_lower(subject=subject, to="allow", actor=analyst, reason="r")
    assert refused.value.code == "permission_denied"
    assert outcome_in_force(subject) == "block_and_review"  # the confirmation runs on


def test_a_passed_step_up_lowers_the_outcome_and_a_new_signal_asks_again(member):
    subject = Subject.member(member.pk)
    Member.objects.filter(pk=member.pk).update(phone_index="settled", created_at=timezone.now() - timedelta(days=90))
    member.refresh_from_db()
    decide(subject, 65)
    challenge = OtpChallenge.objects.create(
        phone_index="settled", member=member, purpose="step_up", action="redeem", code_hmac="-",
        expires_at=timezone.now() + timedelta(minutes=5), verified_at=timezone.now(),
    )  # fmt: skip

    assert member_step_up_pass(member=member, challenge=challenge)

    assert not live(member, Kind.STEP_UP).exists()
    assert outcome_in_force(subject) == "review"
    held = decide(subject)  # the same signals: the fall is recorded, nothing asked again
    assert (held.outcome_before, held.held) == ("review", "no_new_evidence")
    case = FraudCase.objects.get(subject_key=subject.key)
    assert case.events.get(kind="outcome_lowered").note == "step up passed"
    again = decide(subject, 2)
    assert again.outcome_after == "step_up" and live(member, Kind.STEP_UP).count() == 1


def test_a_lapsed_freeze_lowers_the_outcome(member):
    subject = Subject.member(member.pk)
    decide(subject, 90)
    later = timezone.now() + timedelta(hours=73)
    assert outcome_in_force(subject, now=later) == "review"
    decision = risk_decide(subject, later)
    assert decision_apply(decision, now=later).held == "no_new_evidence"
    state = SubjectOutcome.objects.get(subject_key=subject.key)
    assert (state.outcome, state.lowered_reason, state.episode) == ("review", "spend_freeze_lapsed", 1)


# --- forced outcomes, storms, other subjects, the switch -----------------------------------------


def test_impossible_travel_blocks_whatever_the_score(member):
    application = decide(Subject.member(member.pk), 40, detector="impossible_travel")
    assert application.decision.score == 40 and application.decision.forced_by == "impossible_travel"
    assert application.outcome_after == "block_and_review"
    assert live(member, Kind.SPEND_FREEZE).exists()


def test_token_reuse_forces_a_step_up(member):
    application = decide(Subject.member(member.pk), 50, detector="refresh_token_reuse")
    assert application.outcome_after == "step_up" and live(member, Kind.STEP_UP).exists()


def test_a_tripped_detectors_weight_is_left_out_of_what_is_applied(member):
    subject = Subject.member(member.pk)
    fraud_alert_raise(kind=STORM_KIND, dedupe_key="storm-test", severity="high", detail={"detector": "storm_test"})
    raise_signal(subject, 40, detector="storm_test")

    application = decide(subject, 45)  # 85 in all: block; 45 without the tripped detector: review

    assert application.decision.outcome == "block_and_review"
    assert (application.outcome_after, application.held) == ("review", "detector_storm")
    assert not MemberRestriction.objects.filter(member=member).exists()


@pytest.mark.parametrize("kind", ["staff", "store"])
def test_staff_and_stores_get_a_case_never_a_restriction(staff_by_role, store_a, kind):
    subject = Subject.staff(staff_by_role["cashier"].pk) if kind == "staff" else Subject.store(store_a.pk)
    application = decide(subject, 90)
    assert application.outcome_after == "block_and_review"
    case = FraudCase.objects.get(subject_key=subject.key)
    assert case.severity == "critical" and case.inbox == ("insider" if kind == "staff" else "store")
    assert [action["kind"] for action in application.actions] == ["alert", "case"]
    assert not MemberRestriction.objects.exists()


def test_a_throttled_client_gets_a_case(settings):
    subject = Subject.client("till-key:probe")
    application = decide(subject, 50, detector="enumeration_404")
    assert application.outcome_after == "throttle"
    assert FraudCase.objects.get(subject_key=subject.key).inbox == "api"


def test_the_kill_switch_records_decisions_and_applies_nothing(member, settings):
    settings.FRAUD_ENFORCEMENT = {**settings.FRAUD_ENFORCEMENT, "outcomes_enforced": False}
    application = decide(Subject.member(member.pk), 95)
    assert (application.outcome_after, application.held) == ("allow", "not_enforced")
    assert not MemberRestriction.objects.exists() and not FraudCase.objects.exists()


# --- where it runs --------------------------------------------------------------------------------


def test_one_transaction_decides_each_subject_once_after_it_commits(
    member, store_a, django_capture_on_commit_callbacks
):
    other = Member.objects.create(home_store=store_a)
    with (
        mock.patch("fraud.tasks.risk_decide_apply_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        for _ in range(3):  # a batch run: many signals about one member
            raise_signal(Subject.member(member.pk), 5)
        raise_signal(Subject.member(other.pk), 5)
        assert not delay.called  # nothing before the commit
    assert len(callbacks) == 1
    delay.assert_called_once_with(sorted([f"member:{member.pk}", f"member:{other.pk}"]))


def test_a_rolled_back_savepoint_takes_its_subjects_with_it(member, store_a, django_capture_on_commit_callbacks):
    other = Member.objects.create(home_store=store_a)
    with (
        mock.patch("fraud.tasks.risk_decide_apply_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        raise_signal(Subject.member(member.pk), 5)
        try:
            with transaction.atomic():
                raise_signal(Subject.member(other.pk), 5)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        raise_signal(Subject.member(member.pk), 5)
    delay.assert_called_once_with([f"member:{member.pk}"])


def test_the_queue_runs_no_query(member, django_assert_num_queries):
    subject = Subject.member(member.pk)
    with mock.patch("fraud.tasks.risk_decide_apply_task.delay"), django_assert_num_queries(0):
        decision_queue(subject)
        decision_queue(subject)


def test_the_task_decides_and_applies(member):
    from fraud.tasks import risk_decide_apply_task

    raise_signal(Subject.member(member.pk), 70)
    assert risk_decide_apply_task.run([f"member:{member.pk}"]) == {"step_up": 1}
    assert live(member, Kind.STEP_UP).exists()


def test_the_catch_up_decides_what_no_task_did(member, store_a):
    decided = Member.objects.create(home_store=store_a)
    raise_signal(Subject.member(member.pk), 70)
    decide(Subject.member(decided.pk), 70)
    later = timezone.now() + timedelta(minutes=3)

    assert decisions_catch_up(now=later) == 1
    assert live(member, Kind.STEP_UP).exists()
    assert decisions_catch_up(now=later) == 0


# --- the case page -------------------------------------------------------------------------------


def test_the_case_page_shows_the_outcome_and_lowers_it(member, analyst, client):
    from django.urls import reverse

    from tests.conftest import login_verified

    subject = Subject.member(member.pk)
    case = decide(subject, 65).case
    login_verified(client, analyst)
    page = reverse("admin:fraud_fraudcase_change", args=[case.pk])
    body = client.get(page).content.decode()
    assert 'id="case-outcome-value">Step up<' in body and 'id="action-lower-outcome"' in body
    assert "Case opened on a risk decision" in body and "SMS step-up required (automatic)" in body

    client.post(reverse("admin:fraud_fraudcase_act", args=[case.pk, "lower_outcome"]), {"to": "allow", "reason": "ok"})

    body = client.get(page).content.decode()
    assert 'id="case-outcome-value">Allow<' in body and "Risk outcome lowered" in body
    assert not live(member, Kind.STEP_UP).exists()
