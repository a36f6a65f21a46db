"""The fraud drill (``fraud.drill``, FRAUD.md §5) on its ci profile: every scenario whose
detectors exist is caught (recall 100 %) with precision at least 95 %; scenarios whose
detectors do not exist yet are reported ``pending`` (never passed silently); the plan is
the same for the same seed (compared with a golden file); a batch detector from the
registry is run at its cadence, and a failing one is a figure, not a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db.models import Count

from fraud.drill import PROFILES, SCENARIOS, Profile, drill_json, drill_run, drill_table
from fraud.services import Subject, alert_raise

GOLDEN = Path(__file__).parent / "golden" / "drill_ci_seed1_plan.json"
# The scenarios whose detectors exist on this branch (the till's alert kinds, the
# ledger's refusal events): they must pass, not be pending.
JUDGED_NOW = {"voucher_rescan", "cashier_frequency", "earn_spike", "tender_mismatch"}


def plan(result: dict) -> list[dict]:
    """What the seed decides: scenarios, their subjects (drill labels), moments, expectations."""
    keys = ("scenario", "subjects", "start_offset_hours", "duration_minutes", "expected")
    return [{k: row[k] for k in keys} for row in result["scenarios"]]


@pytest.mark.django_db(transaction=True)
def test_ci_profile_catches_every_scenario_whose_detector_exists():
    result = drill_run(seed=1, profile="ci")
    table = "\n".join(drill_table(result))
    rows = {row["scenario"]: row for row in result["scenarios"]}

    assert set(rows) == set(SCENARIOS)
    assert result["population"]["members"] == PROFILES["ci"].members
    assert not result["population"]["errors"], table
    assert result["floors"] == [], table
    for name, row in rows.items():
        if row["status"] == "pending":  # no detector of its own yet: said so, per detector
            assert all(d["detail"] == "detector missing" for d in row["detectors"].values()), table
            assert row["recall"] is None and name not in JUDGED_NOW, table
        else:
            assert row["status"] == "pass" and row["recall"] == 1.0, table
            assert row["precision"] is None or row["precision"] >= 0.95, table
    assert {name for name, row in rows.items() if row["status"] == "pass"} >= JUDGED_NOW, table
    # Normal members, families and businesses apart; nothing flags the innocent today.
    assert set(result["false_positives"]) == {"normal", "family", "business"}
    assert all(fp["members"] > 0 for fp in result["false_positives"].values())
    # Time to first signal and to case, for the till's scenarios (signals open cases at once).
    assert rows["voucher_rescan"]["first_case_seconds"] is not None
    assert rows["cashier_frequency"]["first_signal_seconds"] <= 3600
    # The same seed, the same plan (labels, not ids; offsets, not moments).
    golden = json.loads(GOLDEN.read_text())
    assert plan(result) == golden, "regenerate tests/fraud/golden with the drill's plan if it changed on purpose"
    golden_form = drill_json(result, timings=False)
    assert "timings" not in json.loads(golden_form) and golden_form == drill_json(json.loads(golden_form))


MINI = Profile(name="mini", members=90, days=20, live_members=90, live_days=20, stores=3, cashiers_per_store=2,
               visits_per_week=0.6, mb_step_hours=12)  # fmt: skip


@pytest.fixture
def registry(monkeypatch):
    """A ``fraud.detectors`` registry of two: one detector that finds the salami (direct
    credits at 450-499 by one staff member) and one that fails."""
    from loyalty.ledger.models import LedgerOperation

    calls: list = []

    def adjust_salami(as_of):
        calls.append(as_of)
        rows = (
            LedgerOperation.objects.filter(kind="adjust", created_at__lte=as_of, points__gte=450, points__lte=499)
            .exclude(actor_staff=None)
            .values("actor_staff")
            .annotate(n=Count("pk"))
            .filter(n__gte=5)
        )
        for row in rows:
            alert_raise(
                detector="adjust_salami", subjects=[Subject.staff(row["actor_staff"])], facts={"count": row["n"]},
                occurred_at=as_of, dedupe_key=f"adjust_salami:staff:{row['actor_staff']}",
            )  # fmt: skip

    def broken(as_of):
        raise RuntimeError("a detector with a bug")

    import fraud.detectors

    # The scheduler's view only: the detectors the services call after commit keep theirs.
    monkeypatch.setattr(fraud.detectors, "REGISTRY", {"adjust_salami": adjust_salami, "return_cycle": broken})
    monkeypatch.setattr(fraud.detectors, "CADENCE", {"adjust_salami": "NB", "return_cycle": "MB"})
    return calls


@pytest.mark.django_db(transaction=True)
def test_registered_batch_detectors_run_at_their_cadence_and_are_scored(registry):
    result = drill_run(seed=7, profile=MINI)
    rows = {row["scenario"]: row for row in result["scenarios"]}
    table = "\n".join(drill_table(result))

    assert result["registry"] == {"adjust_salami": "NB", "return_cycle": "MB"}
    assert len(registry) >= MINI.live_days  # nightly, plus the run after the period
    assert rows["salami"]["status"] == "pass", table
    assert rows["salami"]["detectors"]["adjust_salami"]["first_signal_seconds"] > 0
    assert rows["salami"]["first_case_seconds"] is not None
    # A registered detector that fails is a drill figure: its scenario is missed, not pending.
    assert result["population"]["errors"]["detector:return_cycle"] >= MINI.live_days
    assert rows["return_cycle"]["status"] == "fail"
    assert rows["return_cycle"]["detectors"]["return_cycle"]["status"] == "missed"
    assert any(line.startswith("return_cycle: recall 0%") for line in result["floors"])
    assert "adjust_salami" in result["timings"]["batch_detector_seconds"]
