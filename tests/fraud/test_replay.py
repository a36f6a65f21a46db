"""Ruleset replay ("phantom decisions", FRAUD.md §2 "Reproducible"; ``fraud.replay``) and
approval: the last days' decisions scored again under a candidate configuration with a
changed weight give the expected diff per outcome and per detector; what cannot be
replayed is named; the command prints and stores it; a Program Administrator approves a
replayed version, once."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from fraud import config as fraud_config
from fraud.models import FraudRuleset, RiskSignal
from fraud.replay import RulesetRefused, config_changes, ruleset_approve, ruleset_replay, ruleset_replay_version
from fraud.scoring import Subject, risk_decide, ruleset_current, signal_raise
from members.models import Member

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DEVICES = "devices_rapid_change"  # weight 30 in the shipped configuration (ato: half-life 3 days)


@pytest.fixture
def admin(staff_by_role):
    return staff_by_role["program_admin"]


@pytest.fixture
def baseline(admin):
    """The configuration in force, approved."""
    ruleset = ruleset_current()
    FraudRuleset.objects.filter(pk=ruleset.pk).update(approved_by=admin, approved_at=NOW - timedelta(days=40))
    ruleset.refresh_from_db()
    return ruleset


def candidate_with(**weights: int) -> dict:
    config = copy.deepcopy(fraud_config.fraud_config())
    for code, weight in weights.items():
        config["detectors"][code]["weight"] = weight
    return config


def member_with(store, *detectors: str, hours_ago: int = 2) -> Member:
    """A member with one signal per detector (each at its configured weight) and a decision."""
    member = Member.objects.create(home_store=store)
    at = NOW - timedelta(hours=hours_ago)
    for index, code in enumerate(detectors):
        signal_raise(
            detector=code, subject=Subject.member(member.pk), facts={"n": index}, occurred_at=at,
            dedupe_key=f"replay:{member.pk}:{index}",
        )  # fmt: skip
    risk_decide(Subject.member(member.pk), at + timedelta(minutes=1))
    return member


@pytest.fixture
def history(baseline, store_a):
    """Three members decided under the baseline: devices twice (60: step_up); devices, an
    earn spike and a cap streak (30 + 20 + 30 = 80: block); an earn spike and a return rate
    (20 + 10 = 30: review, no device signal)."""
    return {
        "step_up": member_with(store_a, DEVICES, DEVICES),
        "block": member_with(store_a, DEVICES, "earn_above_baseline", "velocity_cap_streak"),
        "review": member_with(store_a, "earn_above_baseline", "return_rate"),
    }


def test_a_lower_weight_moves_the_decisions_it_counted_in(history, baseline):
    result = ruleset_replay(candidate=candidate_with(**{DEVICES: 15}), baseline=baseline.config, now=NOW)

    assert (result["subjects"], result["decisions"], result["changed"], result["stored_differs"]) == (3, 3, 2, 0)
    assert result["transitions"] == {"block_and_review → step_up": 1, "step_up → review": 1}
    assert result["by_detector"] == {
        DEVICES: {"changed": 2, "transitions": {"block_and_review → step_up": 1, "step_up → review": 1}}
    }
    assert result["changes"]["weights"] == [f"detectors.{DEVICES}.weight: 30 → 15"]
    sample = {row["subject"]: (row["score_before"], row["score_after"]) for row in result["samples"]}
    assert sample == {f"member:{history['step_up'].pk}": (60, 30), f"member:{history['block'].pk}": (80, 65)}


def test_the_same_configuration_changes_nothing(history, baseline):
    result = ruleset_replay(candidate=baseline.config, baseline=baseline.config, now=NOW)
    assert (result["decisions"], result["changed"], result["stored_differs"], result["transitions"]) == (3, 0, 0, {})


def test_a_band_change_is_replayed_and_said_to_be_the_bands(history, baseline):
    candidate = copy.deepcopy(baseline.config)
    candidate["outcome_bands"]["block_and_review"] = 81
    result = ruleset_replay(candidate=candidate, baseline=baseline.config, now=NOW)
    assert result["transitions"] == {"block_and_review → step_up": 1}
    assert list(result["by_detector"]) == ["(outcome bands)"]
    assert result["changes"]["scoring"] == ["outcome_bands.block_and_review: 80 → 81"]


def test_a_second_weight_replaces_itself_on_the_signals_that_carry_it(baseline, store_a):
    member = Member.objects.create(home_store=store_a)
    signal_raise(
        detector="many_ips", subject=Subject.member(member.pk), facts={"n": 1}, occurred_at=NOW - timedelta(hours=1),
        dedupe_key="ips-high", weight=fraud_config.threshold("many_ips", "high_weight"),  # 40
    )  # fmt: skip
    risk_decide(Subject.member(member.pk), NOW - timedelta(minutes=30))  # 40, forced step_up
    candidate = copy.deepcopy(baseline.config)
    candidate["detectors"]["many_ips"]["high_weight"] = 80
    candidate["detectors"]["many_ips"]["networks"] = 6

    result = ruleset_replay(candidate=candidate, baseline=baseline.config, now=NOW)

    assert result["transitions"] == {"step_up → block_and_review": 1}
    assert result["changes"]["weights"] == ["detectors.many_ips.high_weight: 40 → 80"]
    assert result["changes"]["not_replayable"] == ["detectors.many_ips.networks: 5 → 6"]


def test_each_decision_sees_the_signals_recorded_when_it_was_made(history, baseline):
    late = history["review"]
    signal_raise(  # recorded now, about a time before the decision: the decision did not see it
        detector=DEVICES, subject=Subject.member(late.pk), facts={"n": 9}, occurred_at=NOW - timedelta(hours=3),
        dedupe_key="late",
    )  # fmt: skip
    result = ruleset_replay(candidate=candidate_with(**{DEVICES: 15}), baseline=baseline.config, now=NOW)
    assert result["stored_differs"] == 0 and result["changed"] == 2


def test_only_the_window_is_replayed_and_undecided_subjects_are_counted(history, baseline, store_a):
    old = member_with(store_a, DEVICES, DEVICES, hours_ago=24 * 40)
    undecided = Member.objects.create(home_store=store_a)
    signal_raise(
        detector=DEVICES, subject=Subject.member(undecided.pk), facts={"n": 1}, occurred_at=NOW - timedelta(hours=1),
        dedupe_key="undecided",
    )  # fmt: skip
    result = ruleset_replay(candidate=candidate_with(**{DEVICES: 15}), baseline=baseline.config, now=NOW)
    assert (result["subjects"], result["undecided_subjects"], result["decisions"]) == (4, 1, 3)
    assert f"member:{old.pk}" not in str(result["samples"])


def test_config_changes_sort_what_is_replayable_from_what_is_not(baseline):
    candidate = copy.deepcopy(baseline.config)
    candidate["detectors"][DEVICES]["weight"] = 31
    candidate["detectors"][DEVICES]["per_day"] = 4
    candidate["half_life_days"]["ato"] = 5
    candidate["case_due_hours"]["high"] = 2
    changes = config_changes(baseline.config, candidate)
    assert changes == {
        "weights": [f"detectors.{DEVICES}.weight: 30 → 31"],
        "scoring": ["half_life_days.ato: 3 → 5"],
        "not_replayable": [f"detectors.{DEVICES}.per_day: 3 → 4"],
        "not_scoring": ["case_due_hours.high: 4 → 2"],
    }


# --- the command ----------------------------------------------------------------------------------


def test_the_command_replays_the_configuration_in_force_against_the_approved_version(history, baseline):
    out = StringIO()
    with override_settings(FRAUD=candidate_with(**{DEVICES: 15})):
        call_command("fraud_ruleset_replay", "--days", "30", stdout=out)
        candidate = ruleset_current()

    text = out.getvalue()
    assert f"candidate v{candidate.version}" in text and f"against v{baseline.version} (approved)" in text
    assert "block_and_review → step_up: 1" in text and "step_up → review: 1" in text
    assert f"{DEVICES}: 2 (" in text and f"detectors.{DEVICES}.weight: 30 → 15" in text
    candidate.refresh_from_db()
    assert candidate.replay["changed"] == 2 and candidate.replayed_at is not None and not candidate.approved


def test_the_command_prints_json_and_reads_a_config_file(history, baseline, tmp_path):
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(candidate_with(**{DEVICES: 15})))
    out = StringIO()
    call_command("fraud_ruleset_replay", "--config", str(path), "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["transitions"] == {"block_and_review → step_up": 1, "step_up → review": 1}
    assert result["candidate_version"] is None and result["baseline_version"] == baseline.version
    assert FraudRuleset.objects.count() == 1  # a file's candidate is not stored


def test_the_command_says_when_there_is_nothing_to_replay(baseline):
    out = StringIO()
    call_command("fraud_ruleset_replay", stdout=out)
    assert "approved: nothing to replay" in out.getvalue()


# --- approval -------------------------------------------------------------------------------------


@pytest.fixture
def pending(history):
    with override_settings(FRAUD=candidate_with(**{DEVICES: 15})):
        return ruleset_current()


def test_a_program_administrator_approves_a_replayed_version_once(pending, admin, staff_by_role):
    with pytest.raises(RulesetRefused) as refused:
        ruleset_approve(ruleset_id=pending.pk, actor=admin)
    assert refused.value.code == "replay_required"

    ruleset_replay_version(ruleset=pending, now=NOW)
    approved = ruleset_approve(ruleset_id=pending.pk, actor=admin)

    assert approved.approved_by == admin and approved.approved_at is not None
    other = type(admin).objects.create(username="admin2")
    other.groups.set(admin.groups.all())
    assert ruleset_approve(ruleset_id=pending.pk, actor=other).approved_by == admin


@pytest.mark.parametrize("role", ["fraud_analyst", "store_manager", "system_admin", "cashier"])
def test_only_program_administrators_approve(pending, staff_by_role, role):
    ruleset_replay_version(ruleset=pending, now=NOW)
    with pytest.raises(RulesetRefused) as refused:
        ruleset_approve(ruleset_id=pending.pk, actor=staff_by_role[role])
    assert refused.value.code == "permission_denied"
    pending.refresh_from_db()
    assert not pending.approved


def test_the_database_keeps_the_first_approver(pending, admin, staff_by_role, owner_role):
    ruleset_replay_version(ruleset=pending, now=NOW)
    ruleset_approve(ruleset_id=pending.pk, actor=admin)
    with pytest.raises(IntegrityError, match="set once"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE fraud_fraudruleset SET approved_by_id = %s WHERE id = %s",
            [staff_by_role["fraud_analyst"].pk, pending.pk],
        )
    assert RiskSignal.objects.exists()


# --- the version page -----------------------------------------------------------------------------


def test_the_version_page_shows_the_replay_and_approves(pending, baseline, admin, client):
    from django.urls import reverse

    from tests.conftest import login_verified

    login_verified(client, admin)
    page = reverse("admin:fraud_fraudruleset_change", args=[pending.pk])
    body = client.get(page).content.decode()
    assert "Pending" in body and f"v{baseline.version} (approved)" in body
    assert f"detectors.{DEVICES}.weight: 30 → 15" in body and "Not replayed yet" in body

    client.post(reverse("admin:fraud_fraudruleset_replay", args=[pending.pk]))
    body = client.get(page).content.decode()
    assert 'id="ruleset-transitions"' in body and "step_up → review" in body and "block_and_review → step_up" in body
    assert "2 of 3 decisions" in body and 'id="action-approve"' in body

    client.post(reverse("admin:fraud_fraudruleset_approve", args=[pending.pk]))
    pending.refresh_from_db()
    assert pending.approved_by == admin
    body = client.get(page).content.decode()
    assert "Approved by" in body and 'id="action-approve"' not in body
    listing = client.get(reverse("admin:fraud_fraudruleset_changelist")).content.decode()
    assert f"v{pending.version}" in listing and "2 of 3 decisions change" in listing


def test_an_analyst_replays_but_sees_no_approve_button(pending, staff_by_role, client):
    from django.urls import reverse

    from tests.conftest import login_verified

    login_verified(client, staff_by_role["fraud_analyst"])
    client.post(reverse("admin:fraud_fraudruleset_replay", args=[pending.pk]))
    body = client.get(reverse("admin:fraud_fraudruleset_change", args=[pending.pk])).content.decode()
    assert "step_up → review" in body and 'id="action-approve"' not in body and 'id="action-replay"' in body


def test_the_command_takes_a_stored_version(history, baseline, pending):
    out = StringIO()
    call_command("fraud_ruleset_replay", "--ruleset", str(pending.version), stdout=out)
    assert "step_up → review: 1" in out.getvalue()
    pending.refresh_from_db()
    assert pending.replay["changed"] == 2
