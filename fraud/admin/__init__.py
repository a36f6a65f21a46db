"""The fraud app's admin: alerts (``alerts``), cases (``cases``, with the subject's
timeline in ``timeline``), the monthly rationale audit (``audits``) and ruleset versions
with their replay and approval (``rulesets``)."""

from fraud.admin import alerts, audits, cases, rulesets

__all__ = ["alerts", "audits", "cases", "rulesets"]
