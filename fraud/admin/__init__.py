"""The fraud app's admin: alerts (``alerts``), cases (``cases``, with the subject's
timeline in ``timeline``) and ruleset versions with their replay and approval
(``rulesets``)."""

from fraud.admin import alerts, cases, rulesets

__all__ = ["alerts", "cases", "rulesets"]
