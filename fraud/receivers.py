"""Fraud's receivers of other apps' domain signals (connected in ``FraudConfig.ready``).

They only enqueue: the detectors run in a task, so a member's login never waits on (or
fails with) fraud's checks.
"""

from __future__ import annotations

from typing import Any

from fraud.tasks import security_event_assess_task

# The member security event kinds the account detectors read (fraud.detectors.accounts).
ASSESSED_KINDS = frozenset({"login", "devices_rapid_change", "impossible_travel", "refresh_token_reused"})


def member_security_event_received(sender: Any, *, event_id: int, kind: str, **_: Any) -> None:
    """``members.signals.security_event_recorded``: assess the kinds fraud reads."""
    if kind in ASSESSED_KINDS:
        security_event_assess_task.delay(event_id)
