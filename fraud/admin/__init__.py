"""The fraud app's admin: alerts (``alerts``) and cases (``cases``, with the subject's
timeline in ``timeline``)."""

from fraud.admin import alerts, cases

__all__ = ["alerts", "cases"]
