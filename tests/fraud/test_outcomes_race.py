"""Two decisions about one member applied at once (``fraud.outcomes.decision_apply``):
real threads and committed transactions. The subject's outcome row serialises them: one
freeze, one case, one application that escalates; the other finds the outcome in force."""

from __future__ import annotations

from unittest import mock

import pytest
from django.utils import timezone

from fraud.models import FraudAlert, FraudCase, OutcomeApplication, SubjectOutcome
from fraud.outcomes import decision_apply, subject_decide_apply
from fraud.scoring import Subject, risk_decide, signal_raise
from members.models import Member, MemberRestriction, MemberSecurityEvent
from tests.concurrency import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_broker():
    """Signals committed here would enqueue their decisions: the tests apply them themselves."""
    with mock.patch("fraud.tasks.risk_decide_apply_task.delay"):
        yield


def _blocked(member: Member, key: str) -> None:
    signal_raise(
        detector="test_outcome", subject=Subject.member(member.pk), facts={"n": 1}, occurred_at=timezone.now(),
        dedupe_key=key, weight=90,
    )  # fmt: skip


def test_two_decisions_applied_at_once_freeze_once_and_open_one_case(store_a):
    member = Member.objects.create(home_store=store_a)
    subject = Subject.member(member.pk)
    _blocked(member, "race-1")
    first, second = risk_decide(subject), risk_decide(subject)

    results = race(lambda: decision_apply(first), lambda: decision_apply(second))

    applied, waited = sorted(results, key=lambda r: r.held)
    assert applied.held == "" and waited.held in ("not_an_escalation", "superseded")  # whichever came second
    assert OutcomeApplication.objects.count() == 2
    assert MemberRestriction.objects.filter(member=member, kind="spend_freeze").count() == 1
    assert MemberSecurityEvent.objects.filter(member=member, kind="spend_frozen").count() == 1
    assert FraudCase.objects.filter(subject_key=subject.key).count() == 1
    assert FraudAlert.objects.filter(kind="risk_outcome").count() == 1
    assert SubjectOutcome.objects.get(subject_key=subject.key).outcome == "block_and_review"


def test_one_decision_applied_twice_at_once_is_applied_once(store_a):
    member = Member.objects.create(home_store=store_a)
    _blocked(member, "race-2")
    decision = risk_decide(Subject.member(member.pk))

    results = race(*[lambda: decision_apply(decision)] * 4)

    assert len({r.pk for r in results}) == 1 and OutcomeApplication.objects.count() == 1
    assert MemberRestriction.objects.filter(member=member).count() == 1


def test_tasks_for_one_member_at_once_restrict_once(store_a):
    member = Member.objects.create(home_store=store_a)
    _blocked(member, "race-3")

    race(*[lambda: subject_decide_apply(Subject.member(member.pk))] * 3)

    assert MemberRestriction.objects.filter(member=member).count() == 1
    assert FraudCase.objects.count() == 1
    assert [a.held for a in OutcomeApplication.objects.order_by("applied_at", "id")].count("") == 1
