"""Signals, the ruleset, and the explainable risk score (FRAUD.md §2).

- ``ruleset_current()``: the active ``FraudRuleset``; a new version whenever the
  configuration's hash changes.
- ``signal_raise(...)``: one ``RiskSignal`` per ``dedupe_key`` (concurrent raises find
  the first), its weight copied from the ruleset, its facts checked (no PII, no card
  number), nothing written while the detector is snoozed for the subject.
- ``risk_score(subject, as_of)``: pure and deterministic from the signals:
  ``min(100, Σ_detector min(2W, Σ weight >> ⌊age_days / half_life⌋))``, integers only,
  every contribution returned largest first.
- ``risk_decide(subject, as_of)``: the score mapped to an outcome (or the outcome a
  detector forces), stored as a ``RiskDecision``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from fraud import config as fraud_config
from fraud.models import SUBJECT_KINDS, DetectorSnooze, FraudAlert, FraudRuleset, RiskDecision, RiskSignal
from loyalty.kernel.pan import contains_pan
from loyalty.kernel.refusals import Refusal

SECONDS_PER_DAY = 86_400
# The outcomes by how much they restrain, mildest first: a forced outcome applies when
# it restrains more than the score's.
OUTCOME_RANK = {outcome: rank for rank, outcome in enumerate(fraud_config.OUTCOMES)}


class SignalRefused(Refusal):
    """A signal that cannot be recorded: ``invalid_subject``, ``invalid_facts``
    (a value that is not an id, count, enum or time, or that holds a card number)."""

    MESSAGES = {
        "invalid_subject": "A signal needs exactly one subject.",
        "invalid_facts": "Signal facts must be ids, counts, codes or times.",
    }


@dataclass(frozen=True)
class Subject:
    """Who a signal is about: ``kind`` one of member, staff, store, till, client and its
    id (a primary key; for a client a non-personal key: till key id, session id,
    keyed network hash)."""

    kind: str
    id: int | str

    def __post_init__(self) -> None:
        if self.kind not in SUBJECT_KINDS or self.id in (None, ""):
            raise SignalRefused("invalid_subject")

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def fields(self) -> dict[str, Any]:
        """The model fields naming this subject (``member_id=...`` and ``subject_key``)."""
        column = {"client": "client"}.get(self.kind, f"{self.kind}_id")
        return {column: str(self.id) if self.kind == "client" else int(self.id), "subject_key": self.key}

    @classmethod
    def member(cls, pk: int) -> Subject:
        return cls("member", pk)

    @classmethod
    def staff(cls, pk: int) -> Subject:
        return cls("staff", pk)

    @classmethod
    def store(cls, pk: int) -> Subject:
        return cls("store", pk)

    @classmethod
    def till(cls, pk: int) -> Subject:
        return cls("till", pk)

    @classmethod
    def client(cls, key: str) -> Subject:
        return cls("client", key)

    @classmethod
    def of(cls, record: Any) -> Subject:
        """The subject of a signal, decision, case or snooze row."""
        kind, _, ident = record.subject_key.partition(":")
        return cls(kind, ident if kind == "client" else int(ident))


# --- Ruleset --------------------------------------------------------------------------------


def ruleset_current() -> FraudRuleset:
    """The ruleset of today's configuration: found by its hash, or written as the next
    version (concurrent callers find the one written first)."""
    digest = fraud_config.config_sha256()
    found = FraudRuleset.objects.filter(sha256=digest).first()
    if found is not None:
        return found
    for _ in range(3):
        try:
            with transaction.atomic():
                last = FraudRuleset.objects.order_by("-version").values_list("version", flat=True).first() or 0
                return FraudRuleset.objects.create(version=last + 1, config=fraud_config.fraud_config(), sha256=digest)
        except IntegrityError:
            found = FraudRuleset.objects.filter(sha256=digest).first()
            if found is not None:
                return found
    raise RuntimeError("fraud ruleset: could not write a version")


# --- Facts ----------------------------------------------------------------------------------

# Strings a fact may hold: codes, ids, uuids, ISO dates and times, hashes. No spaces,
# no "@" (emails), no "+" (phones), at most 80 characters; no card number standing on its
# own (digit runs glued to letters are random parts of uuids and hashes: a uuid holds a
# card-like run about once in 500, which must not refuse the signal).
_SAFE_STRING = re.compile(r"^[A-Za-z0-9_.:\-/]{0,80}$")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([+-]\d{2}:\d{2}|Z)?$")


def facts_check(facts: Any, *, depth: int = 0) -> None:
    """Refuse facts that could carry personal data: only ints, bools, None, short code-like
    strings (never a card number) and lists/dicts of them. Raises SignalRefused."""
    if depth > 3:
        raise SignalRefused("invalid_facts")
    if facts is None or isinstance(facts, bool | int):
        return
    if isinstance(facts, float):
        return
    if isinstance(facts, str):
        if not (_SAFE_STRING.match(facts) or _ISO_TIME.match(facts)) or contains_pan(facts, standalone=True):
            raise SignalRefused("invalid_facts")
        return
    if isinstance(facts, list | tuple):
        for item in facts:
            facts_check(item, depth=depth + 1)
        return
    if isinstance(facts, dict):
        for key, value in facts.items():
            if not isinstance(key, str) or not _SAFE_STRING.match(key):
                raise SignalRefused("invalid_facts")
            facts_check(value, depth=depth + 1)
        return
    raise SignalRefused("invalid_facts")


# --- Signals --------------------------------------------------------------------------------


def detector_snoozed(*, detector: str, subject: Subject, at: datetime) -> bool:
    """True while a snooze of ``detector`` for ``subject`` runs at ``at``."""
    return DetectorSnooze.objects.filter(detector=detector, subject_key=subject.key, until__gt=at).exists()


@dataclass(frozen=True)
class SignalResult:
    signal: RiskSignal | None  # None when snoozed
    created: bool
    snoozed: bool = False


def signal_raise(
    *,
    detector: str,
    subject: Subject,
    facts: dict[str, Any],
    occurred_at: datetime,
    dedupe_key: str,
    weight: int | None = None,
    alert: FraudAlert | None = None,
) -> SignalResult:
    """Record what ``detector`` saw about ``subject`` once per ``dedupe_key`` (a second
    raise, even a concurrent one, finds the first and writes nothing). The weight is the
    ruleset's for the detector unless given (a detector with two weights, e.g.
    ``redemption_deviation`` 25 / 40 ATO). While the detector is snoozed for the subject,
    nothing is written (``snoozed=True``). A new signal has its subject decided and the
    decision applied after the transaction commits (``fraud.outcomes.decision_queue``:
    once per subject and transaction). Raises SignalRefused for bad facts."""
    facts_check(facts)
    existing = RiskSignal.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return SignalResult(existing, False)
    if detector_snoozed(detector=detector, subject=subject, at=occurred_at):
        return SignalResult(None, False, snoozed=True)
    ruleset = ruleset_current()
    if weight is None:
        weight = fraud_config.detector(detector, ruleset.config).weight
    try:
        with transaction.atomic():
            signal = RiskSignal.objects.create(
                detector=detector,
                ruleset_version=ruleset.version,
                weight=max(0, min(100, int(weight))),
                occurred_at=occurred_at,
                facts=facts,
                dedupe_key=dedupe_key,
                alert=alert,
                **subject.fields(),
            )
    except IntegrityError:
        return SignalResult(RiskSignal.objects.get(dedupe_key=dedupe_key), False)
    from fraud.outcomes import decision_queue  # fraud.outcomes applies what scoring decides

    decision_queue(subject)
    return SignalResult(signal, True)


# --- Score ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    signal_id: int
    detector: str
    weight: int
    age_days: int
    half_life_days: int
    decayed: int
    counted: int
    facts: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal_id,
            "detector": self.detector,
            "weight": self.weight,
            "age_days": self.age_days,
            "half_life_days": self.half_life_days,
            "decayed": self.decayed,
            "counted": self.counted,
            "facts": self.facts,
        }


@dataclass(frozen=True)
class RiskScore:
    subject: Subject
    as_of: datetime
    score: int
    ruleset_version: int
    contributions: list[Contribution] = field(default_factory=list)
    # The most restraining outcome a detector forces at ``as_of`` and its detector, if any.
    forced_outcome: str | None = None
    forced_by: str = ""


def decay(weight: int, age_days: int, half_life: int) -> int:
    """``weight`` halved once per whole half-life of age (integer shift; never negative age)."""
    halvings = max(0, age_days) // max(1, half_life)
    return weight >> halvings if halvings < 63 else 0


def score_signals(
    signals: list[RiskSignal], as_of: datetime, config: dict[str, Any]
) -> tuple[int, list[Contribution], str | None, str]:
    """The arithmetic of ``risk_score`` over given signals (pure: no queries)."""
    by_detector: dict[str, list[tuple[RiskSignal, int, int, int]]] = {}
    forced: str | None = None
    forced_by = ""
    for signal in sorted(signals, key=lambda s: (s.occurred_at, s.pk)):
        spec = fraud_config.detector(signal.detector, config)
        half_life = fraud_config.half_life_days(spec.family, config)
        age_days = max(0, int((as_of - signal.occurred_at).total_seconds()) // SECONDS_PER_DAY)
        by_detector.setdefault(signal.detector, []).append(
            (signal, age_days, half_life, decay(signal.weight, age_days, half_life))
        )
        if (
            spec.force
            and age_days < half_life
            and OUTCOME_RANK.get(spec.force, 0) > OUTCOME_RANK.get(forced or "allow", 0)
        ):
            forced, forced_by = spec.force, signal.detector
    contributions: list[Contribution] = []
    total = 0
    for detector in sorted(by_detector):
        rows = by_detector[detector]
        room = 2 * max(signal.weight for signal, *_ in rows)  # the cap: 2W
        for signal, age_days, half_life, decayed in sorted(rows, key=lambda r: (-r[3], r[0].pk)):
            counted = min(decayed, room)
            room -= counted
            total += counted
            contributions.append(
                Contribution(signal.pk, detector, signal.weight, age_days, half_life, decayed, counted, signal.facts)
            )
    contributions.sort(key=lambda c: (-c.counted, -c.decayed, c.detector, c.signal_id))
    return min(100, total), contributions, forced, forced_by


def risk_score(subject: Subject, as_of: datetime) -> RiskScore:
    """The subject's score at ``as_of`` from its signals that occurred by then (pure: the
    same records and ruleset give the same answer). Reads; writes only a new ruleset
    version if the configuration changed."""
    ruleset = ruleset_current()
    signals = list(RiskSignal.objects.filter(subject_key=subject.key, occurred_at__lte=as_of))
    score, contributions, forced, forced_by = score_signals(signals, as_of, ruleset.config)
    return RiskScore(subject, as_of, score, ruleset.version, contributions, forced, forced_by)


def outcome_of(result: RiskScore) -> str:
    """The outcome of a score: its band, or a forced outcome that restrains more."""
    banded = fraud_config.outcome_for_score(result.score)
    if result.forced_outcome and OUTCOME_RANK[result.forced_outcome] > OUTCOME_RANK[banded]:
        return result.forced_outcome
    return banded


def risk_decide(subject: Subject, as_of: datetime | None = None) -> RiskDecision:
    """Score ``subject`` at ``as_of`` (default now), map it to an outcome (``allow``,
    ``review``, ``throttle``, ``step_up``, ``block_and_review``) and store the
    ``RiskDecision`` with its contributions, largest first."""
    as_of = as_of or timezone.now()
    result = risk_score(subject, as_of)
    outcome = outcome_of(result)
    return RiskDecision.objects.create(
        as_of=as_of,
        score=result.score,
        outcome=outcome,
        forced_by=result.forced_by if outcome == result.forced_outcome else "",
        ruleset_version=result.ruleset_version,
        contributions=[c.as_json() for c in result.contributions],
        **subject.fields(),
    )
