"""The explainable risk score (``fraud.scoring``): arithmetic, bands, determinism,
signals (dedupe, snooze, facts), the ruleset, and append-only records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from fraud import config as fraud_config
from fraud.models import DetectorSnooze, FraudRuleset, RiskDecision, RiskSignal
from fraud.scoring import (
    SignalRefused,
    Subject,
    decay,
    outcome_of,
    risk_decide,
    risk_score,
    ruleset_current,
    score_signals,
    signal_raise,
)
from members.models import Member

NOW = timezone.now().replace(microsecond=0)


def _signal(pk, detector, weight, age_days, facts=None):
    return RiskSignal(
        pk=pk, detector=detector, weight=weight, occurred_at=NOW - timedelta(days=age_days), facts=facts or {}
    )


@pytest.mark.parametrize(
    ("weight", "age", "half_life", "expected"),
    [(40, 0, 7, 40), (40, 6, 7, 40), (40, 7, 7, 20), (40, 13, 7, 20), (40, 14, 7, 10), (41, 7, 7, 20),
     (1, 7, 7, 0), (100, 3 * 70, 3, 0), (50, 10**6, 1, 0)],
)  # fmt: skip
def test_decay_halves_per_whole_half_life(weight, age, half_life, expected):
    assert decay(weight, age, half_life) == expected


def test_each_detector_is_capped_at_twice_its_weight_and_the_total_at_100():
    config = fraud_config.fraud_config()
    # earn_above_baseline W=20 (velocity, half-life 7): 20 + 20 + 20 = 60, capped at 40.
    score, contributions, forced, _ = score_signals([_signal(i, "earn_above_baseline", 20, 0) for i in (1, 2, 3)],
                                                    NOW, config)  # fmt: skip
    assert (score, forced) == (40, None)
    assert [c.counted for c in contributions] == [20, 20, 0]
    # Age 7 days: 10 each, 30 under the cap of 40.
    score, _, _, _ = score_signals([_signal(i, "earn_above_baseline", 20, 7) for i in (1, 2, 3)], NOW, config)
    assert score == 30
    many = [_signal(i, detector, 50, 0) for i, detector in enumerate(["pii_reveal_volume", "refresh_token_reuse",
                                                                     "enumeration_404"])]  # fmt: skip
    assert score_signals(many, NOW, config)[0] == 100


def test_contributions_are_listed_largest_first_with_age_and_counted():
    config = fraud_config.fraud_config()
    signals = [_signal(1, "return_rate", 10, 0), _signal(2, "devices_rapid_change", 30, 3, {"devices": 3})]
    score, contributions, _, _ = score_signals(signals, NOW, config)
    assert score == 25  # 30 >> (3 // 3) = 15, plus 10
    first = contributions[0].as_json()
    assert first == {"signal": 2, "detector": "devices_rapid_change", "weight": 30, "age_days": 3,
                     "half_life_days": 3, "decayed": 15, "counted": 15, "facts": {"devices": 3}}  # fmt: skip


@pytest.mark.parametrize(
    ("score", "outcome"),
    [(0, "allow"), (29, "allow"), (30, "review"), (59, "review"), (60, "step_up"), (79, "step_up"),
     (80, "block_and_review"), (100, "block_and_review")],
)  # fmt: skip
def test_outcome_bands(score, outcome):
    assert fraud_config.outcome_for_score(score) == outcome


pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture
def member(store_a):
    return Member.objects.create(home_store=store_a)


def _raise(member, detector="earn_above_baseline", key="k1", age_days=0, **kw):
    return signal_raise(
        detector=detector, subject=Subject.member(member.pk), facts=kw.pop("facts", {"points": 900}),
        occurred_at=NOW - timedelta(days=age_days), dedupe_key=key, **kw,
    )  # fmt: skip


def test_the_score_is_reproducible_from_the_records(member):
    _raise(member, key="a")
    _raise(member, "devices_rapid_change", key="b", age_days=4)
    first = risk_score(Subject.member(member.pk), NOW)
    again = risk_score(Subject.member(member.pk), NOW)
    assert first == again and first.score == 20 + 15
    # A signal after as_of does not count.
    _raise(member, "return_rate", key="c", age_days=-1)
    assert risk_score(Subject.member(member.pk), NOW).score == 35


def test_a_decision_stores_the_outcome_and_its_contributions(member):
    _raise(member, key="a", weight=30)
    decision = risk_decide(Subject.member(member.pk), NOW)
    assert (decision.score, decision.outcome, decision.forced_by) == (30, "review", "")
    assert decision.subject_key == f"member:{member.pk}" and decision.member_id == member.pk
    assert decision.contributions[0]["detector"] == "earn_above_baseline"
    assert decision.ruleset_version == ruleset_current().version


def test_a_forcing_detector_bypasses_the_score_while_young(member):
    _raise(member, "impossible_travel", key="t", facts={"km": 900, "minutes": 30})
    decision = risk_decide(Subject.member(member.pk), NOW)
    assert (decision.score, decision.outcome, decision.forced_by) == (40, "block_and_review", "impossible_travel")
    later = risk_score(Subject.member(member.pk), NOW + timedelta(days=3))
    assert later.forced_outcome is None and outcome_of(later) == "allow"  # 40 >> 1 = 20


def test_a_signal_is_recorded_once_per_dedupe_key(member):
    first = _raise(member)
    again = _raise(member, facts={"points": 5})
    assert first.created and not again.created and again.signal.pk == first.signal.pk
    assert RiskSignal.objects.count() == 1
    assert first.signal.weight == 20 and first.signal.ruleset_version == ruleset_current().version


@pytest.mark.parametrize(
    "facts",
    [{"email": "someone@example.com"}, {"phone": "+60 12 345 6789"}, {"note": "4111111111111111"}, {"ref": "till-4111111111111111"},
     {"name": "Jane Doe"}, {"nested": {"deep": {"deeper": {"deepest": {"x": 1}}}}}, {"obj": object()}],
)  # fmt: skip
def test_facts_with_personal_data_or_a_card_number_are_refused(member, facts):
    with pytest.raises(SignalRefused) as caught:
        _raise(member, facts=facts)
    assert caught.value.code == "invalid_facts"
    assert not RiskSignal.objects.exists()


def test_facts_may_hold_ids_counts_codes_and_times(member):
    facts = {"voucher_id": "0b7c1f3e-0000-4000-8000-000000000001", "count": 3, "at": NOW.isoformat(),
             "day": "2026-12-05", "ratio": 1.5, "kind": "earn", "stores": [1, 2]}  # fmt: skip
    assert _raise(member, facts=facts).created


def test_a_uuid_holding_a_card_like_digit_run_is_an_id_not_a_card(member):
    # Random hex holds a Luhn-valid 16-digit run about once in 500 uuids: glued to
    # letters, it is part of the id (a refused signal would lose the detection).
    assert _raise(member, facts={"session_id": "e4111111-1111-4111-8111-e4111111111111111f"}).created


def test_a_subject_is_exactly_one_of_its_kinds():
    with pytest.raises(SignalRefused):
        Subject("nobody", 1)
    with pytest.raises(SignalRefused):
        Subject.client("")


def test_the_database_refuses_a_signal_with_two_subjects(member, store_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        RiskSignal.objects.create(
            detector="x", ruleset_version=1, weight=1, occurred_at=NOW, dedupe_key="two",
            member=member, store=store_a, subject_key="member:1",
        )  # fmt: skip


def test_a_snoozed_detector_records_nothing_until_the_snooze_ends(member, staff_by_role):
    DetectorSnooze.objects.create(
        detector="earn_above_baseline", until=NOW + timedelta(days=1), reason="test",
        by=staff_by_role["fraud_analyst"], **Subject.member(member.pk).fields(),
    )  # fmt: skip
    snoozed = _raise(member)
    assert (snoozed.signal, snoozed.snoozed) == (None, True)
    assert _raise(member, "return_rate", key="other").created  # other detectors still count
    assert _raise(member, key="later", age_days=-2).created  # after the snooze


def test_a_configuration_change_writes_a_new_ruleset_version():
    first = ruleset_current()
    assert ruleset_current().pk == first.pk
    changed = {**fraud_config.fraud_config(), "storm_alerts_per_hour": 7}
    with override_settings(FRAUD=changed):
        second = ruleset_current()
    assert second.version == first.version + 1 and second.config["storm_alerts_per_hour"] == 7
    assert ruleset_current().pk == first.pk  # the old configuration again: its version
    assert FraudRuleset.objects.count() == 2


def test_signals_and_decisions_are_append_only_in_python(member):
    signal = _raise(member).signal
    decision = risk_decide(Subject.member(member.pk), NOW)
    for model in (RiskSignal, RiskDecision):
        with pytest.raises(TypeError):
            model.objects.update(created_at=NOW)
        with pytest.raises(TypeError):
            model.objects.all().delete()
    with pytest.raises(TypeError):
        signal.save()
    with pytest.raises(TypeError):
        decision.delete()


@pytest.mark.parametrize("table", ["fraud_risksignal", "fraud_riskdecision", "fraud_caseevent"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET id = id", "DELETE FROM {t}"])
def test_the_triggers_refuse_changes_to_append_only_tables_even_for_the_owner(member, table, statement, owner_role):
    _fill(member, table)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(t=table))


@pytest.mark.parametrize("table", ["fraud_risksignal", "fraud_riskdecision", "fraud_caseevent"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET id = id", "DELETE FROM {t}"])
def test_the_application_role_may_not_change_append_only_tables(member, table, statement):
    _fill(member, table)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(t=table))


def _fill(member, table):
    _raise(member)
    risk_decide(Subject.member(member.pk), NOW)
    if table == "fraud_caseevent":
        from fraud.services import alert_raise

        alert_raise(detector="devices_rapid_change", subjects=[Subject.member(member.pk)], facts={"devices": 3},
                    occurred_at=NOW, dedupe_key="ev")  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_of_one_signal_record_it_once(member):
    from tests.concurrency import race

    results = race(*[lambda: _raise(member, key="race")] * 6)

    assert sum(result.created for result in results) == 1
    assert {result.signal.pk for result in results} == {RiskSignal.objects.get().pk}
    assert FraudRuleset.objects.count() == 1
