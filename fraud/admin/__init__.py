"""The fraud app's admin: alerts (``alerts``), cases (``cases``, with the subject's
timeline in ``timeline``) and the monthly rationale audit (``audits``)."""

from fraud.admin import alerts, audits, cases

__all__ = ["alerts", "audits", "cases"]
