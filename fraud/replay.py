"""Ruleset replay ("phantom decisions", FRAUD.md §2 "Reproducible") and approval.

Before a configuration is relied on, its effect on the last ``days`` is shown: every
subject with signals in the window is scored again at the ``as_of`` of each of its
stored decisions in the window, under the **baseline** (the last approved ruleset
version; without one, the newest other version) and under the **candidate** (the
current settings' configuration, a stored version, or a JSON file), and the decisions
whose outcome would change are counted per outcome ("block_and_review → step_up: 3")
and per detector.

What is replayed, and what is not:

- **Replayed** (pure arithmetic over the stored signals, ``fraud.scoring.score_signals``):
  detector weights, second weights (``*_weight`` keys, e.g. ``many_ips.high_weight``),
  families (which half-life applies), half-lives, outcome bands and forced outcomes.
  Signals keep the weight copied at raise time (history is fixed): a detector whose
  weight changed has the candidate's weight put on its signals that carry the
  baseline's; signals raised under yet another weight keep theirs. Each decision sees
  the signals that had been recorded when it was made (``created_at``), as it did.
- **Not replayed**: thresholds and windows. They decide whether a signal exists at all;
  replaying them means running the detectors over history again. They are listed
  (``not_replayable``) with configuration changes outside the score (case due times,
  storm limits…: ``not_scoring``).
- Subjects with signals in the window but no stored decision are counted, not scored.

**Approval.** A ruleset version is *pending* until a Program Administrator
(``fraud.approve_fraudruleset``) approves it after its replay (``ruleset_approve``:
once; ``replay_required`` without one). Approval is a record, not a gate: signals and
decisions use the version of the configuration in force (``ruleset_current``), because
detectors read their thresholds from the settings, so holding back a version's weights
while its thresholds already run would score with a configuration nobody wrote. The
replay shows what an approval accepts; the approval records who accepted it.
"""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from fraud import config as fraud_config
from fraud.models import FraudRuleset, RiskDecision, RiskSignal
from fraud.scoring import OUTCOME_RANK, score_signals
from loyalty.kernel.refusals import Refusal

SUBJECTS_PER_QUERY = 500
# Weights are at most 100 (< 2**7): seven half-lives take any signal's weight to 0; a
# forced outcome lasts one half-life. Older signals cannot change a score.
HALVINGS_TO_ZERO = 7
SCORE_KEYS = ("detectors", "half_life_days", "outcome_bands")
DETECTOR_SCORE_KEYS = ("weight", "family", "force")


class RulesetRefused(Refusal):
    """A refused ruleset operation: ``permission_denied``, ``not_found``,
    ``replay_required`` (approve after a replay), ``invalid_config``."""

    MESSAGES = {
        "permission_denied": "You may not do this.",
        "not_found": "No such ruleset version.",
        "replay_required": "Run the replay first: approve a version after seeing what it changes.",
        "invalid_config": "The configuration is not a fraud configuration (detectors, half-lives, bands).",
    }


APPROVE = "fraud.approve_fraudruleset"


def may_approve_rulesets(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(APPROVE))


# --- which versions ------------------------------------------------------------------------------


def ruleset_baseline(candidate_sha: str) -> FraudRuleset | None:
    """What a candidate is compared with: the newest approved version other than it, else
    the newest other version, else None."""
    others = FraudRuleset.objects.exclude(sha256=candidate_sha).order_by("-version")
    return others.filter(approved_at__isnull=False).first() or others.first()


def config_load(path: str) -> dict[str, Any]:
    """A candidate configuration from a JSON file (a whole ``settings.FRAUD``). Raises
    ``RulesetRefused("invalid_config")``."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise RulesetRefused("invalid_config") from None
    if not isinstance(config, dict) or any(not isinstance(config.get(key), dict) for key in SCORE_KEYS):
        raise RulesetRefused("invalid_config")
    return config


# --- what changed --------------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key in sorted(value):
            found.update(_flat(value[key], f"{prefix}{key}."))
        return found
    return {prefix[:-1]: value}


def _is_weight_key(key: str) -> bool:
    return key == "weight" or key.endswith("_weight")


def config_changes(baseline: dict[str, Any], candidate: dict[str, Any]) -> dict[str, list[str]]:
    """The differences, sorted into what the replay scores (``weights``, ``scoring``:
    families, forced outcomes, half-lives, bands), what it cannot (``not_replayable``:
    detector thresholds) and what is not part of the score (``not_scoring``). Each
    entry reads ``path: old → new``."""
    old, new = _flat(baseline), _flat(candidate)
    changes: dict[str, list[str]] = {"weights": [], "scoring": [], "not_replayable": [], "not_scoring": []}
    for path in sorted(set(old) | set(new)):
        if old.get(path) == new.get(path):
            continue
        line = f"{path}: {old.get(path, '—')} → {new.get(path, '—')}"
        parts = path.split(".")
        if parts[0] == "detectors" and len(parts) == 3:
            group = (
                "weights"
                if _is_weight_key(parts[2])
                else "scoring"
                if parts[2] in DETECTOR_SCORE_KEYS
                else "not_replayable"
            )
        elif parts[0] in ("half_life_days", "outcome_bands"):
            group = "scoring"
        elif parts[0] == "detectors":
            group = "scoring"  # a detector added or removed: weight 0 / its weight
        else:
            group = "not_scoring"
        changes[group].append(line[:200])
    return changes


def _reweigh(signal: RiskSignal, baseline: dict[str, Any], candidate: dict[str, Any]) -> RiskSignal:
    """The signal as the candidate would have weighed it: a changed weight (or second
    weight) replaces the baseline's on a signal that carries it."""
    before = fraud_config.detector(signal.detector, baseline)
    after = fraud_config.detector(signal.detector, candidate)
    pairs = [(before.weight, after.weight)] + [
        (int(before.thresholds[key]), int(after.thresholds.get(key, before.thresholds[key])))
        for key in sorted(before.thresholds)
        if _is_weight_key(key) and isinstance(before.thresholds[key], int)
    ]
    for old, new in pairs:
        if old != new and signal.weight == old:
            changed = copy.copy(signal)
            changed.weight = max(0, min(100, new))
            return changed
    return signal


# --- the replay ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scored:
    outcome: str
    score: int
    counted: dict[str, int]
    forced_by: str


def _score(signals: list[RiskSignal], as_of: datetime, config: dict[str, Any]) -> _Scored:
    score, contributions, forced, forced_by = score_signals(signals, as_of, config)
    outcome = fraud_config.outcome_for_score(score, config)
    if forced and OUTCOME_RANK[forced] > OUTCOME_RANK[outcome]:
        outcome = forced
    else:
        forced_by = ""
    counted: dict[str, int] = defaultdict(int)
    for row in contributions:
        counted[row.detector] += row.counted
    return _Scored(outcome, score, dict(counted), forced_by)


def _lookback_days(*configs: dict[str, Any]) -> int:
    longest = max(int(days) for config in configs for days in (config.get("half_life_days") or {"-": 30}).values())
    return HALVINGS_TO_ZERO * max(1, longest) + 1


def ruleset_replay(
    *,
    candidate: dict[str, Any],
    baseline: dict[str, Any],
    days: int = 30,
    now: datetime | None = None,
    samples: int = 20,
) -> dict[str, Any]:
    """Score the last ``days`` again under ``baseline`` and ``candidate`` (module
    docstring) and return the diff as JSON-ready data: counts (``subjects``,
    ``undecided_subjects``, ``decisions``, ``changed``, ``stored_differs``: decisions
    whose baseline replay differs from what was stored, e.g. made under another
    version), ``transitions`` ("a → b": n), ``by_detector`` (detector: {changed,
    transitions}), ``changes`` (``config_changes``) and the first ``samples`` changed
    decisions (ids and outcomes only). Reads only."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    lookback = timedelta(days=_lookback_days(baseline, candidate))
    subject_keys = list(
        RiskSignal.objects.filter(occurred_at__gt=since, occurred_at__lte=now)
        .order_by("subject_key")
        .values_list("subject_key", flat=True)
        .distinct()
    )
    transitions: Counter[str] = Counter()
    by_detector: dict[str, Counter[str]] = defaultdict(Counter)
    found: list[dict[str, Any]] = []
    decided: set[str] = set()
    replayed = changed = stored_differs = 0
    for start in range(0, len(subject_keys), SUBJECTS_PER_QUERY):
        keys = subject_keys[start : start + SUBJECTS_PER_QUERY]
        signals: dict[str, list[RiskSignal]] = defaultdict(list)
        for signal in RiskSignal.objects.filter(
            subject_key__in=keys, occurred_at__gt=since - lookback, occurred_at__lte=now
        ).order_by("subject_key", "occurred_at", "pk"):
            signals[signal.subject_key].append(signal)
        decisions = RiskDecision.objects.filter(subject_key__in=keys, as_of__gt=since, as_of__lte=now).order_by(
            "subject_key", "as_of", "pk"
        )
        for decision in decisions.only("pk", "subject_key", "as_of", "outcome", "created_at"):
            decided.add(decision.subject_key)
            known = [
                s
                for s in signals[decision.subject_key]
                if s.occurred_at <= decision.as_of and s.created_at <= decision.created_at
            ]
            before = _score(known, decision.as_of, baseline)
            after = _score([_reweigh(s, baseline, candidate) for s in known], decision.as_of, candidate)
            replayed += 1
            stored_differs += before.outcome != decision.outcome
            if after.outcome == before.outcome:
                continue
            changed += 1
            move = f"{before.outcome} → {after.outcome}"
            transitions[move] += 1
            detectors = {
                code
                for code in set(before.counted) | set(after.counted)
                if before.counted.get(code, 0) != after.counted.get(code, 0)
            } | ({before.forced_by, after.forced_by} - {""} if before.forced_by != after.forced_by else set())
            for code in sorted(detectors) or ["(outcome bands)"]:
                by_detector[code][move] += 1
            if len(found) < samples:
                found.append(
                    {
                        "decision": decision.pk,
                        "subject": decision.subject_key,
                        "as_of": decision.as_of.isoformat(),
                        "before": before.outcome,
                        "after": after.outcome,
                        "score_before": before.score,
                        "score_after": after.score,
                    }
                )
    return {
        "days": days,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "subjects": len(subject_keys),
        "undecided_subjects": len(subject_keys) - len(decided),
        "decisions": replayed,
        "changed": changed,
        "stored_differs": stored_differs,
        "transitions": dict(sorted(transitions.items(), key=lambda item: (-item[1], item[0]))),
        "by_detector": {
            code: {"changed": sum(moves.values()), "transitions": dict(sorted(moves.items()))}
            for code, moves in sorted(by_detector.items(), key=lambda item: (-sum(item[1].values()), item[0]))
        },
        "changes": config_changes(baseline, candidate),
        "samples": found,
    }


def ruleset_replay_version(*, ruleset: FraudRuleset, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Replay stored version ``ruleset`` against its baseline (``ruleset_baseline``)
    and keep the result on it (``replay``, ``replayed_at``: the latest replay). Without
    a baseline the candidate is compared with itself (nothing changes)."""
    now = now or timezone.now()
    base = ruleset_baseline(ruleset.sha256)
    result = ruleset_replay(
        candidate=ruleset.config, baseline=base.config if base else ruleset.config, days=days, now=now
    )
    result.update(
        candidate_version=ruleset.version,
        candidate_sha256=ruleset.sha256,
        baseline_version=base.version if base else None,
        baseline_approved=bool(base and base.approved),
    )
    FraudRuleset.objects.filter(pk=ruleset.pk).update(replay=result, replayed_at=now)
    ruleset.replay, ruleset.replayed_at = result, now
    return result


def ruleset_approve(*, ruleset_id: int, actor: Any, now: datetime | None = None) -> FraudRuleset:
    """A Program Administrator (``fraud.approve_fraudruleset``) approves a version after
    its replay: ``approved_by`` and ``approved_at`` are set once (a repeat returns it
    unchanged; the database refuses a second approver). Raises ``RulesetRefused``
    (``permission_denied``, ``not_found``, ``replay_required``)."""
    if not may_approve_rulesets(actor):
        raise RulesetRefused("permission_denied")
    ruleset = FraudRuleset.objects.filter(pk=ruleset_id).first()
    if ruleset is None:
        raise RulesetRefused("not_found")
    if ruleset.approved:
        return ruleset
    if ruleset.replayed_at is None:
        raise RulesetRefused("replay_required")
    now = now or timezone.now()
    FraudRuleset.objects.filter(pk=ruleset.pk, approved_at__isnull=True).update(approved_by=actor, approved_at=now)
    return FraudRuleset.objects.get(pk=ruleset.pk)


def replay_text(result: dict[str, Any]) -> list[str]:
    """The replay as lines of text (the management command's and the admin page's)."""
    lines = []
    changes = result["changes"]
    lines.append(
        "Replayed: signal weights (stored at raise time; a changed weight replaces the baseline's on the "
        "signals that carry it), families, half-lives, outcome bands, forced outcomes."
    )
    for title, key in (
        ("Weights changed", "weights"),
        ("Scoring changed", "scoring"),
        ("Not replayable (thresholds decide which signals exist: run the detectors again)", "not_replayable"),
        ("Outside the score", "not_scoring"),
    ):
        if changes[key]:
            lines.append(f"{title}:")
            lines += [f"  {line}" for line in changes[key]]
    lines.append(
        f"Subjects with signals: {result['subjects']} ({result['undecided_subjects']} without a stored decision); "
        f"decisions replayed: {result['decisions']}; would change: {result['changed']}"
    )
    if result["stored_differs"]:
        lines.append(f"Stored decisions the baseline replay scores differently: {result['stored_differs']}")
    if result["transitions"]:
        lines.append("By outcome:")
        lines += [f"  {move}: {count}" for move, count in result["transitions"].items()]
        lines.append("By detector:")
        for code, row in result["by_detector"].items():
            moves = ", ".join(f"{move}: {count}" for move, count in row["transitions"].items())
            lines.append(f"  {code}: {row['changed']} ({moves})")
    return lines
