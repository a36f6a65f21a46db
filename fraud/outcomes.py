"""Outcomes enforced (FRAUD.md §2 "Outcomes", §3 "Actions"): what a risk decision does.

**Where it runs.** ``fraud.scoring.signal_raise`` hands each subject it records a signal
about to ``decision_queue``: after the transaction commits, ``risk_decide_apply_task``
decides and applies each subject once (``subject_decide_apply``). A batch detector's run
is one transaction (one snapshot), so a run decides each subject it touched once, not
once per signal; the ledger's transactions raise no signals, so the earn path pays
nothing. Every five minutes ``decisions_catch_up`` decides the subjects whose newest
signal has no decision after it (a message lost, a worker down).

**What an outcome does** (``decision_apply``):

- ``allow``: nothing;
- ``review``: an alert (``risk_outcome``, medium): no friction;
- ``throttle``: an alert and a case (the throttle itself is the detector's own:
  enumeration's 429, the reveal throttle);
- ``step_up``: an alert (high), a case (high) and, for a member, an SMS step-up before
  their next redemption or contact change (``members.services.restrictions
  .member_step_up_require``; passing one lifts it);
- ``block_and_review``: an alert (high), a priority case (critical) and, for a member,
  an automatic spending freeze (``member_spend_freeze(automatic=True)``: it lapses after
  ``freeze_unconfirmed_hours`` unless a Program Administrator confirms it).

Staff, stores, tills and API clients get alerts and cases, never an automatic
restriction (FRAUD.md §2: the reveal throttle and enumeration's 429 are the detectors').
Each action goes through its owner's service (members' restrictions, ``fraud.cases``)
and is recorded on the case (``CaseEvent``: ``outcome_applied``, ``auto_step_up_required``,
``auto_spend_frozen``) and on the decision (``OutcomeApplication``, one per decision).

**Rules.**

- Idempotent: a decision is applied once; the subject's ``SubjectOutcome`` row is
  locked while one is applied, so two decisions at once apply one after the other and
  a second decision at the outcome in force does nothing (``not_an_escalation``).
- It only escalates: a decision applies when it restrains more than the outcome in
  force. A person lowers it (``outcome_lower``); so does the end of its restriction (the
  member passed the step-up, an analyst lifted the freeze, the freeze lapsed), read at
  the next application (``_reconcile``). After a lowering an automatic escalation needs
  new evidence: a counted signal recorded after it (else ``no_new_evidence``).
- A tripped detector (``fraud.services.detector_paused``: a storm) has its automatic
  actions paused: its weight and forced outcome are left out of what is applied
  (``detector_storm``), though the decision records them.
- ``FRAUD_ENFORCEMENT["outcomes_enforced"]`` False: decisions are made and recorded,
  nothing is applied (``not_enforced``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, OuterRef, Q, Subquery
from django.utils import timezone

from fraud import config as fraud_config
from fraud.cases import CaseRefused, case_event_record, case_for_decision
from fraud.models import (
    FraudAlert,
    FraudCase,
    FraudRuleset,
    OutcomeApplication,
    RiskDecision,
    RiskSignal,
    SubjectOutcome,
)
from fraud.permissions import may_work_cases
from fraud.scoring import OUTCOME_RANK, Subject, risk_decide
from fraud.services import detector_paused, fraud_alert_raise
from members.models import Member, MemberRestriction
from members.services import restrictions

logger = logging.getLogger(__name__)

Held = OutcomeApplication.Held
ALERT_KIND = "risk_outcome"
# Outcomes that open (or join) a case, and its severity.
CASE_SEVERITY = {"throttle": "high", "step_up": "high", "block_and_review": "critical"}
ALERT_SEVERITY = {"review": FraudAlert.Severity.MEDIUM}
# The member restriction each outcome puts on (members owns the rows).
RESTRICTION_OF = {"step_up": MemberRestriction.Kind.STEP_UP, "block_and_review": MemberRestriction.Kind.SPEND_FREEZE}
# Where an outcome falls to when its restriction ends: the case stays open, friction goes.
AFTER_RESTRICTION = "review"
# Signals recorded this recently are left to their own commit's task by the catch-up sweep.
CATCH_UP_LAG = timedelta(minutes=2)
CATCH_UP_WINDOW = timedelta(hours=2)


class OutcomeRefused(CaseRefused):
    """A refused change of a subject's outcome: ``permission_denied``, ``invalid_outcome``,
    ``not_lower`` (only a lower outcome than the one in force), ``reason_required``, and
    the member restriction services' codes (a confirmed freeze is a Program
    Administrator's to lift)."""

    MESSAGES = {
        "permission_denied": "You may not do this.",
        "invalid_outcome": "Choose allow, review or step-up.",
        "not_lower": "Only a lower outcome than the one in force can be chosen.",
        "reason_required": "Give a reason.",
        **restrictions.RestrictionRefused.MESSAGES,
        **CaseRefused.MESSAGES,
    }


def rank(outcome: str) -> int:
    return OUTCOME_RANK.get(outcome, 0)


# --- after commit: decide once per touched subject ---------------------------------------------


class _PendingDecisions:
    """The subjects one transaction recorded signals about: decided once after its commit."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __call__(self) -> None:
        decisions_enqueue(sorted(self.keys))


def decision_queue(subject: Subject) -> None:
    """Decide and apply ``subject`` after the current transaction commits (at once
    outside one). One callback per transaction (and savepoint level) collects every
    subject its signals name, so a batch run enqueues each subject once; a rolled-back
    savepoint drops its callback with its signals. No query."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        decisions_enqueue([subject.key])
        return
    level = set(connection.savepoint_ids)
    for savepoints, callback, _robust in connection.run_on_commit:
        if isinstance(callback, _PendingDecisions) and savepoints == level:
            callback.keys.add(subject.key)
            return
    pending = _PendingDecisions()
    pending.keys.add(subject.key)
    transaction.on_commit(pending)


def decisions_enqueue(subject_keys: list[str]) -> None:
    """Hand ``subject_keys`` to ``risk_decide_apply_task`` in chunks of
    ``outcome_subjects_per_task``. A broker failure is logged, never raised: the
    catch-up sweep decides them later."""
    from fraud.tasks import risk_decide_apply_task

    size = max(1, int(settings.FRAUD_ENFORCEMENT["outcome_subjects_per_task"]))
    for start in range(0, len(subject_keys), size):
        chunk = subject_keys[start : start + size]
        try:
            risk_decide_apply_task.delay(chunk)
        except Exception as exc:  # the caller's work is committed; the sweep catches up
            logger.warning("risk decisions for %s subjects not queued (%s)", len(chunk), type(exc).__name__)


def subject_of_key(key: str) -> Subject:
    """The subject named by a ``subject_key`` (``member:12``, ``client:device:ab``)."""
    kind, _, ident = key.partition(":")
    return Subject(kind, ident if kind == "client" else int(ident))


def subject_decide_apply(subject: Subject, *, as_of: datetime | None = None) -> OutcomeApplication:
    """Decide ``subject`` at ``as_of`` (default now; ``fraud.scoring.risk_decide``) and
    apply the decision (``decision_apply``)."""
    decision = risk_decide(subject, as_of)
    return decision_apply(decision)


def decisions_catch_up(*, now: datetime | None = None) -> int:
    """Decide and apply every subject with a signal recorded in the last
    ``CATCH_UP_WINDOW`` (up to ``CATCH_UP_LAG`` ago) and no decision after its newest
    signal: what a lost message or a stopped worker left undecided. One grouped query;
    returns the number of subjects decided."""
    now = now or timezone.now()
    latest_decision = (
        RiskDecision.objects.filter(subject_key=OuterRef("subject_key"))
        .order_by()
        .values("subject_key")
        .annotate(at=Max("created_at"))
        .values("at")
    )
    keys = list(
        RiskSignal.objects.filter(created_at__gt=now - CATCH_UP_WINDOW, created_at__lte=now - CATCH_UP_LAG)
        .order_by()
        .values("subject_key")
        .annotate(newest=Max("created_at"), decided=Subquery(latest_decision))
        .filter(Q(decided__isnull=True) | Q(decided__lt=Max("created_at")))
        .order_by("subject_key")
        .values_list("subject_key", flat=True)
    )
    for key in keys:
        subject_decide_apply(subject_of_key(key))
    return len(keys)


# --- applying a decision -------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one application does: the outcome applied and the record it leaves."""

    before: str
    after: str
    held: str = ""
    actions: list[dict[str, Any]] | None = None
    case: FraudCase | None = None


def _state_locked(subject: Subject) -> SubjectOutcome:
    """The subject's outcome row, created if missing (INSERT … ON CONFLICT DO NOTHING: two
    first decisions cannot collide) and locked until the transaction ends."""
    SubjectOutcome.objects.bulk_create([SubjectOutcome(**subject.fields())], ignore_conflicts=True)
    return SubjectOutcome.objects.select_for_update().get(subject_key=subject.key)


def _ruleset_config(version: int) -> dict[str, Any]:
    config = FraudRuleset.objects.filter(version=version).values_list("config", flat=True).first()
    return config or fraud_config.fraud_config()


def effective_outcome(decision: RiskDecision, *, now: datetime) -> tuple[str, list[str]]:
    """The decision's outcome without the weight and forced outcomes of tripped
    detectors (``detector_paused``), and those detectors (sorted). The decision's own
    outcome when none is tripped."""
    detectors = sorted({row["detector"] for row in decision.contributions})
    paused = [code for code in detectors if detector_paused(code, now)]
    if not paused:
        return decision.outcome, []
    config = _ruleset_config(decision.ruleset_version)
    kept = [row for row in decision.contributions if row["detector"] not in paused]
    outcome = fraud_config.outcome_for_score(min(100, sum(int(row["counted"]) for row in kept)), config)
    for row in kept:
        forced = fraud_config.detector(row["detector"], config).force
        if forced and int(row["age_days"]) < int(row["half_life_days"]) and rank(forced) > rank(outcome):
            outcome = forced
    return outcome, paused


@dataclass(frozen=True)
class _Ended:
    """The restriction an outcome put on has ended: when, by whom, why, and where the
    outcome falls (and the step-up row it keeps, falling from a block)."""

    at: datetime
    by: Any
    why: str
    to: str
    restriction_id: int | None


def _ended(state: SubjectOutcome, subject: Subject, now: datetime) -> _Ended | None:
    """Has the restriction of a member's outcome ended (reads only)? The member passed
    the step-up, an analyst lifted the step-up or the freeze (a confirmed freeze runs
    on: its confirmation is a new live row), or the freeze lapsed. The outcome falls to
    ``step_up`` while a step-up requirement is still live (a block that followed one),
    else to ``review`` (the case stays open)."""
    kind = RESTRICTION_OF.get(state.outcome)
    if subject.kind != "member" or kind is None or state.restriction_id is None:
        return None
    rows = MemberRestriction.objects.filter(member_id=subject.id, kind=kind)
    if rows.filter(lifted_at__isnull=True).filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now)).exists():
        return None
    last = rows.order_by("-starts_at", "-id").first()
    if last is None:
        return None
    if last.lifted_at is not None:
        at, by = last.lifted_at, last.lifted_by
        why = "step_up_passed" if last.lift_reason == "step_up_passed" else f"{kind}_lifted"
    else:
        at, by, why = last.ends_at or now, None, f"{kind}_lapsed"
    step_up = None
    if kind != MemberRestriction.Kind.STEP_UP:
        step_up = MemberRestriction.objects.filter(
            member_id=subject.id, kind=MemberRestriction.Kind.STEP_UP, lifted_at__isnull=True
        ).first()
    if step_up is not None:
        return _Ended(at, by, why, "step_up", step_up.pk)
    return _Ended(at, by, why, AFTER_RESTRICTION, None)


def _reconcile(state: SubjectOutcome, subject: Subject, now: datetime) -> None:
    """Lower the (locked) state when its restriction has ended (``_ended``), recorded on
    the state and the case."""
    ended = _ended(state, subject, now)
    if ended is None:
        return
    _lower(state, to=ended.to, at=ended.at, by=ended.by, why=ended.why, note=ended.why.replace("_", " "))
    if ended.restriction_id is not None:
        state.restriction_id = ended.restriction_id
        state.save(update_fields=["restriction_id", "updated_at"])


def _lower(state: SubjectOutcome, *, to: str, at: datetime, by: Any, why: str, note: str) -> None:
    before = state.outcome
    state.outcome, state.episode, state.restriction_id = to, state.episode + 1, None
    state.lowered_at, state.lowered_by, state.lowered_reason = at, by, why[:40]
    state.save(
        update_fields=[
            "outcome", "episode", "restriction_id", "lowered_at", "lowered_by", "lowered_reason", "updated_at",
        ]
    )  # fmt: skip
    if state.case_id is not None:
        case_event_record(state.case_id, "outcome_lowered", at, actor=by, old=before, new=to, note=note)


def _new_evidence(decision: RiskDecision, since: datetime) -> bool:
    """Does the decision count a signal recorded after ``since``?"""
    ids = [row["signal"] for row in decision.contributions if int(row["counted"]) > 0]
    return RiskSignal.objects.filter(pk__in=ids, created_at__gt=since).exists()


def _largest_detector(decision: RiskDecision) -> str:
    """The detector a case about the decision belongs with: the forcing one, else the
    largest contribution's."""
    if decision.forced_by:
        return decision.forced_by
    rows = sorted(decision.contributions, key=lambda row: (-int(row["counted"]), row["detector"]))
    return rows[0]["detector"] if rows else ""


def _alert(decision: RiskDecision, subject: Subject, outcome: str, episode: int) -> FraudAlert:
    detectors = sorted({row["detector"] for row in decision.contributions if int(row["counted"]) > 0})
    columns = {f"{subject.kind}_id": int(subject.id)} if subject.kind in ("member", "staff", "store") else {}
    alert, _ = fraud_alert_raise(
        kind=ALERT_KIND,
        dedupe_key=f"{ALERT_KIND}:{subject.key}:{outcome}:{episode}"[:120],
        severity=ALERT_SEVERITY.get(outcome, FraudAlert.Severity.HIGH),
        detail={
            "decision_id": decision.pk,
            "subject": subject.key[:80],
            "score": decision.score,
            "outcome": outcome,
            "forced_by": decision.forced_by,
            "detectors": detectors[:10],
        },
        **columns,
    )
    return alert


def _case(decision: RiskDecision, subject: Subject, outcome: str, now: datetime) -> tuple[FraudCase, bool]:
    ids = [row["signal"] for row in decision.contributions]
    first = RiskSignal.objects.filter(pk__in=ids).aggregate(at=Min("occurred_at"))["at"] or decision.as_of
    return case_for_decision(
        subject=subject, detector=_largest_detector(decision), severity=CASE_SEVERITY[outcome],
        score=decision.score, ruleset_version=decision.ruleset_version, first_signal_at=first,
        decision_id=decision.pk, now=now,
    )  # fmt: skip


def _restrict(decision: RiskDecision, subject: Subject, outcome: str, case: FraudCase, now: datetime) -> dict:
    """Put the outcome's restriction on the member (their services: locked, idempotent)."""
    member = Member.objects.get(pk=subject.id)
    reason = f"Fraud score {decision.score}: {outcome} (risk decision {decision.pk})"
    if outcome == "step_up":
        result = restrictions.member_step_up_require(
            member=member, actor=None, automatic=True, reason=reason, case_ref=case.reference, now=now
        )
        kind = "auto_step_up_required"
    else:
        result = restrictions.member_spend_freeze(
            member=member, actor=None, automatic=True, reason=reason, case_ref=case.reference, now=now
        )
        kind = "auto_spend_frozen"
    assert result.restriction is not None
    if result.changed:
        case_event_record(case.pk, kind, now, new="member", note=f"restriction {result.restriction.pk}")
    return {"kind": kind, "restriction_id": result.restriction.pk, "new": result.changed}


def _plan(decision: RiskDecision, state: SubjectOutcome, subject: Subject, now: datetime) -> _Plan:
    """Decide what applying ``decision`` changes (no writes)."""
    before = state.outcome
    if not settings.FRAUD_ENFORCEMENT["outcomes_enforced"]:
        return _Plan(before, before, Held.NOT_ENFORCED)
    if state.decision_id is not None and state.decision is not None and decision.as_of < state.decision.as_of:
        return _Plan(before, before, Held.SUPERSEDED)
    target, paused = effective_outcome(decision, now=now)
    if rank(target) <= rank(before):
        held = Held.DETECTOR_STORM if paused and rank(decision.outcome) > rank(before) else Held.NOT_AN_ESCALATION
        return _Plan(before, before, held)
    if state.lowered_at is not None and not _new_evidence(decision, state.lowered_at):
        return _Plan(before, before, Held.NO_NEW_EVIDENCE)
    return _Plan(before, target, Held.DETECTOR_STORM if paused and target != decision.outcome else "")


@transaction.atomic
def decision_apply(decision: RiskDecision, *, now: datetime | None = None) -> OutcomeApplication:
    """Apply ``decision`` (module docstring): once (a second call returns the first
    application), under the subject's outcome row lock, escalating only. Returns the
    ``OutcomeApplication`` recording what it did."""
    now = now or timezone.now()
    subject = Subject.of(decision)
    state = _state_locked(subject)
    done = OutcomeApplication.objects.filter(decision=decision).first()
    if done is not None:
        return done
    _reconcile(state, subject, now)
    plan = _plan(decision, state, subject, now)
    actions: list[dict[str, Any]] = []
    case: FraudCase | None = None
    if plan.after != plan.before:
        alert = _alert(decision, subject, plan.after, state.episode)
        actions.append({"kind": "alert", "id": alert.pk})
        if plan.after in CASE_SEVERITY:
            case, opened = _case(decision, subject, plan.after, now)
            actions.append({"kind": "case", "id": case.pk, "opened": opened})
            FraudAlert.objects.filter(pk=alert.pk, case__isnull=True).update(case=case)
            case_event_record(
                case.pk, "outcome_applied", now, old=plan.before, new=plan.after,
                note=f"decision {decision.pk}: score {decision.score}"
                + (f", forced by {decision.forced_by}" if decision.forced_by else ""),
            )  # fmt: skip
            if subject.kind == "member" and plan.after in RESTRICTION_OF:
                restricted = _restrict(decision, subject, plan.after, case, now)
                actions.append(restricted)
                state.restriction_id = restricted["restriction_id"]
        state.outcome, state.decision, state.applied_at = plan.after, decision, now
        state.case = case or state.case
        state.save(update_fields=["outcome", "decision", "applied_at", "case", "restriction_id", "updated_at"])
    return OutcomeApplication.objects.create(
        decision=decision, subject_key=subject.key, outcome_before=plan.before, outcome_after=plan.after,
        held=plan.held, actions=actions, case=case, applied_at=now,
    )  # fmt: skip


# --- reading and lowering ----------------------------------------------------------------------


def outcome_in_force(subject: Subject, *, now: datetime | None = None) -> str:
    """The subject's outcome in force (``allow`` when none was ever applied), its
    restriction's end taken into account. Reads only (the next application records the
    fall)."""
    state = SubjectOutcome.objects.filter(subject_key=subject.key).first()
    if state is None:
        return "allow"
    ended = _ended(state, subject, now or timezone.now())
    return ended.to if ended is not None else state.outcome


LOWER_TO = ("allow", "review", "step_up")


@transaction.atomic
def outcome_lower(*, subject: Subject, to: str, actor: Any, reason: str, now: datetime | None = None) -> SubjectOutcome:
    """A person (a fraud analyst: ``fraud.work_fraudcase``) lowers the subject's outcome
    in force to ``to`` (allow, review or step_up), with a reason: a member's step-up or
    spending freeze is lifted through the members services (a confirmed freeze is a
    Program Administrator's to lift: ``permission_denied``), and lowering a block to a
    step-up requires the step-up instead. Recorded on the case (``outcome_lowered``)
    and the member's restrictions. The same outcome again changes nothing. After a
    lowering, only a new signal escalates it again. Raises ``OutcomeRefused``."""
    if not may_work_cases(actor):
        raise OutcomeRefused("permission_denied")
    if to not in LOWER_TO:
        raise OutcomeRefused("invalid_outcome")
    text = (reason or "").strip()
    if not text:
        raise OutcomeRefused("reason_required")
    now = now or timezone.now()
    state = _state_locked(subject)
    _reconcile(state, subject, now)
    if state.outcome == to:
        return state
    if rank(to) > rank(state.outcome):
        raise OutcomeRefused("not_lower")
    before = state.outcome
    new_restriction: int | None = None
    if subject.kind == "member":
        member = Member.objects.get(pk=subject.id)
        case_ref = state.case.reference if state.case is not None else None
        try:
            if before == "block_and_review":
                restrictions.member_spend_unfreeze(member=member, actor=actor, reason=text, now=now)
            if to == "step_up":
                result = restrictions.member_step_up_require(
                    member=member, actor=actor, reason=text, case_ref=case_ref, now=now
                )
                new_restriction = result.restriction.pk if result.restriction is not None else None
            elif before in ("step_up", "block_and_review"):
                restrictions.member_step_up_lift(member=member, actor=actor, reason=text, now=now)
        except restrictions.RestrictionRefused as refusal:
            raise OutcomeRefused(refusal.code, str(refusal)) from None
    _lower(state, to=to, at=now, by=actor, why="lowered_by_staff", note=text)
    if new_restriction is not None:
        state.restriction_id = new_restriction
        state.save(update_fields=["restriction_id", "updated_at"])
    logger.info("fraud outcome lowered for %s: %s to %s", subject.kind, before, to)
    return state


def applications_of(subject: Subject, *, limit: int = 20) -> Iterable[OutcomeApplication]:
    """The subject's latest applications, newest first (the case page's panel)."""
    return (
        OutcomeApplication.objects.filter(subject_key=subject.key)
        .select_related("decision")
        .order_by("-applied_at", "-id")[:limit]
    )
