"""Who may do what with fraud alerts: the one place that says so.

The codenames are Django's model permissions on ``fraud.FraudAlert`` (the roles in
``staffauth.roles`` grant them by name: the Fraud Analyst holds both). Which alerts a
user sees is a store question, answered by ``fraud.selectors.fraud_alerts_visible_to``
(``loyalty.kernel.scoping``: headquarters roles every store, store-scoped roles their own).
"""

from __future__ import annotations

from typing import Any

VIEW_ALERT = "fraud.view_fraudalert"
# Closing is the only change an alert ever takes (status, closed_at, closed_by).
CLOSE_ALERT = "fraud.change_fraudalert"


def may_close_alerts(user: Any) -> bool:
    """True when ``user`` may close alerts after an investigation."""
    return bool(user is not None and user.is_active and user.has_perm(CLOSE_ALERT))


VIEW_CASE = "fraud.view_fraudcase"
# Working a case: assign, investigate, snooze, note, close, reopen (moves no points).
WORK_CASE = "fraud.work_fraudcase"
VIEW_SIGNAL = "fraud.view_risksignal"
VIEW_DECISION = "fraud.view_riskdecision"


def may_work_cases(user: Any) -> bool:
    """True when ``user`` may work fraud cases (the Fraud Analyst)."""
    return bool(user is not None and user.is_active and user.has_perm(WORK_CASE))


def may_view_cases(user: Any) -> bool:
    """True when ``user`` may read fraud cases (Fraud Analyst, Program Administrator)."""
    return bool(user is not None and user.is_active and user.has_perm(VIEW_CASE))
