"""Fraud detection, explainable risk scores and the fraud analyst's cases (issue 14).

The pipeline: detector → signal → score/decision → outcome applied → alert → case.

- ``fraud.config``: the ``settings.FRAUD`` catalogue (weights, thresholds, half-lives,
  outcome bands, case due times, storm limit), typed accessors.
- ``fraud.scoring``: ``FraudRuleset`` versions, ``signal_raise`` (one ``RiskSignal`` per
  dedupe key, no PII in facts, snoozes honoured), ``risk_score`` / ``risk_decide``.
- ``fraud.outcomes``: after a subject's signals commit, decide it once and apply the
  outcome (alert; case; a member's step-up or automatic spending freeze), escalating only.
- ``fraud.replay``: a ruleset's last 30 days replayed ("phantom decisions") and its
  approval by a Program Administrator.
- ``fraud.cases``: one open ``FraudCase`` per (inbox, subject), its state machine and
  timeline (``CaseEvent``), auto-assignment, overdue escalation.
- ``fraud.services``: the public entry (``alert_raise`` and the till's alert kinds;
  re-exports the scoring and case services). Details: its module docstring.
"""
